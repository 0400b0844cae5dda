"""The run directory ``results/<name>/``: chosen without overwriting, checked before use, described by
``run.json`` (where its parts live, how each session went, and the format its files are written in)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from search.errors import REDACTED, ConfigError, SearchError, redact, without_password
from search.rundir.records import TRIALS_DIR, atomic_write

__all__ = ["FORMAT", "MIN_FREE_BYTES", "MODEL_FILE", "RETRAIN_DIR", "RUN_FILE", "RunInfo", "check_study_storage",
           "check_writable", "choose_run_dir", "create_run_dir", "default_study_storage", "migrate_command",
           "min_free_bytes", "needs_migration", "read_run_info", "record_session", "stored_format"]

# The vocabulary a run directory's files are written in. 2: every metric key names its split
# (val_shape_accuracy, test_shape_accuracy); 1 (no "format" in run.json): keys without a split.
FORMAT = 2
RUN_FILE = "run.json"
RETRAIN_DIR = "retrain"  # retrain's runs and tables
MODEL_FILE = "model.keras"  # a trained model, wherever one is kept: a checkpoint, a retrain run, an export

# Checkpoints of a small search need room: refuse to start below this much free space.
# MTL_SEARCH_MIN_FREE_MB raises it for big models (or lowers it on a small disk).
MIN_FREE_BYTES = 200 * 1024 * 1024
_MARKERS = (RUN_FILE, "leaderboard.csv", TRIALS_DIR, "study.db")


@dataclass(frozen=True)
class RunInfo:
    """What a run directory records about its search, so that it can be resumed."""

    name: str
    experiment_file: str  # the copy inside the run directory
    storage_path: str  # where Ray Tune keeps trial state and checkpoints
    study_storage: str  # the Optuna storage URL
    address: str | None  # the cluster, or None for an embedded Ray
    created: float
    sessions: tuple[dict, ...] = ()  # one entry per run or resume: when, how long, how the trials ended
    format: int = FORMAT


def holds_search(path: Path) -> bool:
    return path.is_dir() and any((path / m).exists() for m in _MARKERS)


def choose_run_dir(results_root: Path, name: str) -> Path:
    """``results_root/name``, or ``name-2``, ``name-3``... when that already holds a search."""
    return next(c for c in _candidates(results_root, name) if not holds_search(c))


def _candidates(results_root: Path, name: str):
    yield results_root / name
    n = 2
    while True:
        yield results_root / f"{name}-{n}"
        n += 1


def check_writable(path: Path, *, field: str = "results_dir", min_free: int | None = None) -> None:
    """Raise ConfigError unless ``path`` can be created and written, with room to spare."""
    if min_free is None:
        min_free = min_free_bytes()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(field, f"must be a directory, but {existing} is a file", str(path))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(field, f"must be writable, but {existing} is not; choose another with --results-dir",
                          str(path))
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(field, f"must be writable, but writing in {existing} failed ({exc.strerror})",
                          str(path)) from None
    free = shutil.disk_usage(existing).free
    if free < min_free:
        raise ConfigError(field, f"needs at least {min_free // 2**20} MiB free, but the disk holding {existing} has "
                          f"{free // 2**20} MiB", str(path))


def min_free_bytes() -> int:
    """The free space a run needs to start: MIN_FREE_BYTES, or MTL_SEARCH_MIN_FREE_MB."""
    value = os.environ.get("MTL_SEARCH_MIN_FREE_MB")
    if value is None:
        return MIN_FREE_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise ConfigError("MTL_SEARCH_MIN_FREE_MB", "must be a number of MiB >= 0", value)
    return int(megabytes * 2**20)


def create_run_dir(results_root: Path, name: str, experiment_text: str, *, storage_path: Path | None,
                   study_storage: str | None, address: str | None) -> tuple[Path, RunInfo]:
    """Claim the first directory :func:`choose_run_dir` would give, and write in it a copy of the experiment and
    ``run.json``. The claim is ``run.json`` created exclusively, so two commands started at the same moment get a
    directory each. ``storage_path`` and ``study_storage`` default to the run directory and its SQLite study."""
    for run_dir in _candidates(results_root, name):
        if holds_search(run_dir):
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(run_dir / RUN_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # another command claimed it since holds_search looked
            continue
        break
    storage_path = storage_path or run_dir
    study_storage = study_storage or default_study_storage(run_dir)
    (run_dir / "experiment.yaml").write_text(experiment_text, encoding="utf-8")
    info = RunInfo(name=name, experiment_file="experiment.yaml", storage_path=str(storage_path),
                   study_storage=study_storage, address=address, created=time.time())
    # Paths inside the run directory are stored relative to it, so a copied or cloned run still resumes.
    stored = dict(info.__dict__)
    if Path(storage_path).resolve() == run_dir.resolve():
        stored["storage_path"] = "."
    if study_storage == default_study_storage(run_dir):
        stored["study_storage"] = "sqlite:///study.db"
    else:  # a password stays in the experiment file the user wrote, and is read from its copy on resume
        stored["study_storage"] = redact(study_storage)
    atomic_write(run_dir / RUN_FILE, json.dumps(stored, indent=2) + "\n")
    return run_dir, info


def record_session(run_dir: Path, *, command: str, started: float, statuses: dict[str, int],
                   best_objective: float | None) -> dict:
    """Append a finished ``run`` or ``resume`` to ``run.json``: its wall time and how its trials ended."""
    path = run_dir / RUN_FILE
    stored = json.loads(path.read_text())
    ended = time.time()
    session = {"command": command, "started": round(started, 3), "ended": round(ended, 3),
               "wall_s": round(ended - started, 1), "trials": dict(statuses), "best_objective": best_objective}
    stored["sessions"] = [*stored.get("sessions", []), session]
    atomic_write(path, json.dumps(stored, indent=2) + "\n")
    return session


def check_study_storage(url: str) -> None:
    """Raise ConfigError unless the Optuna storage at ``url`` (an RDB URL) accepts a connection."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # a malformed URL, or a database driver that is not installed
        reason = without_password(f"{type(exc).__name__}: {exc}", url).splitlines()[0]
        raise ConfigError("study_storage", f"must be an RDB URL Optuna can open ({reason})", redact(url)) from None
    try:  # reading its tables, not only connecting: SQLite connects to any file, and fails on reading one that is not a database
        sqlalchemy.inspect(engine).get_table_names()
    except Exception as exc:
        reason = without_password(str(exc), url).splitlines()[0]
        raise ConfigError("study_storage", f"must be a database this machine can reach; connecting failed ({reason})",
                          redact(url)) from None
    finally:
        engine.dispose()


def _experiment_storage(path: Path) -> object:
    """The ``study_storage`` of the experiment copy that this package wrote at ``path`` (None if it has none)."""
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("study_storage")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def default_study_storage(run_dir: Path) -> str:
    """The Optuna study of a run: SQLite in the run directory."""
    return f"sqlite:///{run_dir.resolve() / 'study.db'}"


def migrate_command(path: Path) -> str:
    return f"mtl-search migrate {path}"


def stored_format(run_dir: Path) -> int:
    """The format ``run.json`` declares (1 where it declares none)."""
    return int(json.loads((run_dir / RUN_FILE).read_text()).get("format", 1))


def needs_migration(run_dir: Path) -> bool:
    """Whether the run directory holds results in an earlier format (a run.json of an older format, and trial
    records or retrain tables written in it); a directory with nothing written yet reads as it is."""
    if stored_format(run_dir) >= FORMAT:
        return False
    return any((run_dir / TRIALS_DIR).glob("*.json")) or (run_dir / RETRAIN_DIR).is_dir()


def read_run_info(run_dir: Path) -> RunInfo:
    """The :class:`RunInfo` of an existing run directory (SearchError naming the fix when it cannot be read)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise SearchError(f"{run_dir} is not a search run directory (it has no run.json); "
                          "start a search with `mtl-search run EXPERIMENT.yaml`.")
    try:
        info = RunInfo(**{"format": 1, **json.loads(path.read_text())})
    except (ValueError, TypeError) as exc:
        raise SearchError(f"{path} is damaged ({exc}); it cannot be resumed.") from None
    if needs_migration(run_dir):
        raise SearchError(f"{run_dir} was written by an earlier mtl-search (format {info.format}; this one reads "
                          f"format {FORMAT}, where every metric key names its split); convert it once with "
                          f"`{migrate_command(run_dir)}`")
    storage = info.storage_path if Path(info.storage_path).is_absolute() else str(run_dir / info.storage_path)
    study = default_study_storage(run_dir) if info.study_storage == "sqlite:///study.db" else info.study_storage
    if f":{REDACTED}@" in study:  # run.json keeps no password; the experiment's copy in the run directory has it
        copy = _experiment_storage(run_dir / info.experiment_file)
        if isinstance(copy, str) and redact(copy) == study:
            study = copy
    return RunInfo(**{**info.__dict__, "storage_path": storage, "study_storage": study,
                      "sessions": tuple(info.sessions)})
