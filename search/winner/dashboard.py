"""optuna-dashboard on a run's Optuna study, served on 127.0.0.1 only until Ctrl-C (or SIGTERM).

The study is the one ``resume`` reads (``run.json``: SQLite in the run directory, or the experiment's
``study_storage``). Each of its trials names its leaderboard row (user attribute ``ray_trial_id``) and, once
ended, carries that row's status, task metrics and epochs as user attributes (search.engines.ray_tune); runs
written before those were kept show the trials without them. A KerasTuner search keeps no study.

The dashboard can change the study (tell trials, set attributes, delete it): it binds the loopback address
only, so nothing beyond this machine reaches it. No Ray is imported here.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import optuna_dashboard
import sqlalchemy

from search.errors import ConfigError, redact, without_password
from search.experiment.config import load_experiment
from search.rundir.directory import RUN_FILE, check_study_storage, read_run_info

__all__ = ["HOST", "Dashboard", "open_dashboard"]

HOST = "127.0.0.1"  # the dashboard can change the study: nothing beyond this machine may reach it


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - one line per request would flood the terminal
        pass


class Dashboard:
    """A bound optuna-dashboard server (its port is known before it serves) on one run's study."""

    def __init__(self, server: WSGIServer, study_id: int, storage) -> None:
        self.server, self.study_id, self._storage = server, study_id, storage

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The study's page."""
        return f"http://{HOST}:{self.port}/dashboard/studies/{self.study_id}"

    def serve(self) -> None:
        """Serve until Ctrl-C (a KeyboardInterrupt; the CLI turns SIGTERM into one), then stop serving.

        The server runs in a thread of its own, so an interrupt (which the main thread gets) never lands in the
        middle of a request."""
        thread = threading.Thread(target=self.server.serve_forever, name="optuna-dashboard", daemon=True)
        try:
            thread.start()
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            if thread.ident is not None:  # it began serving (shutdown would wait for ever on a server that never did)
                self.server.shutdown()  # waits for the request being answered, if any

    def close(self) -> None:
        """Release the port and the study's database connections."""
        self.server.server_close()
        self._storage.engine.dispose()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dashboard(run_dir: str | Path, *, port: int | None = None) -> Dashboard:
    """optuna-dashboard on the study of ``run_dir``, bound to 127.0.0.1 on ``port`` (None: a free one, which the
    system picks as it binds); then call :meth:`Dashboard.serve`. Raises ConfigError for a directory that holds no
    search or no Optuna study, and for a port outside 1..65535 or one that cannot be bound (in use)."""
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise ConfigError("--port", "must be a port number from 1 to 65535", port)
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise ConfigError("run_dir", f"must be a search's run directory (one holding {RUN_FILE}); start a search "
                                     "with `mtl-search run EXPERIMENT.yaml`", str(run_dir))
    info = read_run_info(run_dir)
    experiment = load_experiment(run_dir / info.experiment_file)
    if experiment.engine != "ray-tune":
        raise ConfigError("run_dir", f"must hold a search with an Optuna study, but its engine is "
                                     f"{experiment.engine}, which keeps none (its state is in keras_tuner/)",
                          str(run_dir))
    storage, study_id = _study(info.study_storage, experiment.name)
    try:
        server = make_server(HOST, port or 0, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler)
    except OSError as exc:
        storage.engine.dispose()
        rule = "must be free" if exc.errno == errno.EADDRINUSE else "must be a port this user may listen on"
        raise ConfigError("--port", f"{rule} on {HOST} ({exc.strerror})", port) from None
    return Dashboard(server, study_id, storage)


def _study(url: str, name: str) -> tuple[optuna.storages.RDBStorage, int]:
    """The storage at ``url`` (as optuna-dashboard opens one: no tables created, no schema check) and the id of
    its study ``name``; ConfigError where there is none."""
    _check_sqlite_file(url)
    check_study_storage(url)
    try:  # the storage reads (and, where missing, writes) its schema version as it opens
        storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
        names = sorted(s.study_name for s in storage.get_all_studies())
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:  # e.g. no Optuna tables
        reason = without_password(str(exc.__cause__ or exc), url).splitlines()[0][:200]
        raise ConfigError("study_storage", f"must be an Optuna study's database, but reading it failed ({reason})",
                          redact(url)) from None
    if name not in names:
        storage.engine.dispose()
        raise ConfigError("study_storage", f"must hold the run's study {name!r}, but holds {names}", redact(url))
    return storage, storage.get_study_id_from_name(name)


def _check_sqlite_file(url: str) -> None:
    """SQLite creates a database it is asked to open: a run's study file must exist before it is read."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:  # noqa: BLE001 - not a URL: check_study_storage says why
        return
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or ":memory:").is_file():
        raise ConfigError("study_storage", "must be an existing Optuna study, but its SQLite file is missing (the "
                                           "search never started, or its study.db was moved)", redact(url))
