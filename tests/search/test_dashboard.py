"""`mtl-search dashboard`: optuna-dashboard on a run's study, on 127.0.0.1 only, each trial carrying its leaderboard
row; bad input exits 2 with one line."""

import copy
import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

import search
from search.cli import main
from search.engines.worker import FAIL_ENV
from search.rundir.directory import create_run_dir

ROOT = Path(__file__).resolve().parents[2]
FAILING = {"backbone.filters": 4, "optimizer.learning_rate": 0.005}
URL = re.compile(r"^Optuna dashboard of (?P<run>\S+): (?P<url>http://127\.0\.0\.1:(?P<port>\d+)/dashboard/studies/"
                 r"(?P<study>\d+))  \(Ctrl-C stops it\)$")
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy between the test and 127.0.0.1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_template):
    """4 trials of up to 3 epochs, 2 at a time, plain halving; the first (enqueued) configuration raises at epoch 1,
    so the study holds a failed trial beside completed and stopped ones."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    data = copy.deepcopy(tiny_template)
    data["budget"] = {"trials": 4, "max_epochs": 3}
    data["searcher"] = {"initial_points": [FAILING]}
    data["scheduler"] = {**data["scheduler"], "adaptive": False}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    patch = pytest.MonkeyPatch()
    patch.setenv(FAIL_ENV, json.dumps({"when": FAILING, "epoch": 1}))
    try:
        search.run(path, results_dir=tmp_path / "results", progress=lambda line: None)
    finally:
        patch.undo()
    return tmp_path / "results" / "tiny"


def _start(run_dir: Path) -> tuple[subprocess.Popen, re.Match]:
    """`mtl-search dashboard RUN_DIR` in a process of its own, and the line it printed once it listens."""
    process = subprocess.Popen([sys.executable, "-m", "search.cli", "dashboard", str(run_dir)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=60)
    line = process.stdout.readline().rstrip("\n") if ready else ""
    match = URL.match(line)
    if match is None:
        process.kill()
        pytest.fail(f"no URL line from the dashboard: {line!r}; stderr: {process.communicate()[1][-2000:]}")
    return process, match


def _stop(process: subprocess.Popen, how: int) -> None:
    """Send ``how``; the process stops cleanly (exit status 0: Ctrl-C is how it ends) without a traceback."""
    process.send_signal(how)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, (process.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]


def _get(url: str) -> dict:
    with _LOCAL.open(url, timeout=30) as response:
        return json.loads(response.read())


def test_the_dashboard_shows_the_study_with_each_trials_leaderboard_row_on_loopback_only(tiny_run):
    process, match = _start(tiny_run)
    try:
        assert match["run"] == str(tiny_run)
        base = f"http://127.0.0.1:{match['port']}"
        studies = _get(f"{base}/api/studies")["study_summaries"]
        assert [(s["study_id"], s["study_name"]) for s in studies] == [(int(match["study"]), "tiny")]
        trials = _get(f"{base}/api/studies/{match['study']}")["trials"]
        rows = pd.read_csv(tiny_run / "leaderboard.csv", dtype={"trial": str}).set_index("trial")
        assert len(trials) == len(rows) == 4
        tasks = [c for c in rows.columns if c.startswith("val_")]
        assert tasks == ["val_shape_accuracy", "val_colour_accuracy", "val_midpoint_mae"]
        for trial in trials:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}  # the API shows every value as text
            row = rows.loc[attrs["ray_trial_id"]]
            assert attrs["status"] == row["status"] and int(attrs["epochs"]) == row["epochs"], (attrs, dict(row))
            for column in tasks:
                assert float(attrs.get(column, "nan")) == pytest.approx(row[column], nan_ok=True), (column, attrs)
        statuses = {a["value"].split(":")[0] for t in trials for a in t["user_attrs"] if a["key"] == "status"}
        assert "failed" in statuses and statuses <= {"completed", "stopped early", "failed"}
        # Listening on the loopback address only, on the port it printed.
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(process.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", int(match["port"]))}
    finally:
        if process.poll() is None:
            _stop(process, signal.SIGINT)


def test_a_run_written_before_the_attributes_opens_and_sigterm_stops_it():
    """The committed reference run's study predates the user attributes (and holds a trial left running)."""
    process, match = _start(ROOT / "results" / "reference" / "shapes")
    try:
        study = _get(f"http://127.0.0.1:{match['port']}/api/studies/{match['study']}")
        assert study["name"] == "shapes" and len(study["trials"]) == 20
    finally:
        if process.poll() is None:
            _stop(process, signal.SIGTERM)


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1, captured
    return captured.err


def test_bad_input_exits_2_with_one_line_naming_the_field(tmp_path, tiny, tiny_run, capsys):
    err = _refused(["dashboard", str(tmp_path)], capsys)
    assert "Invalid `run_dir`: must be a search's run directory" in err and str(tmp_path) in err
    for port in ("0", "65536", "-1"):
        err = _refused(["dashboard", str(tiny_run), "--port", port], capsys)
        assert f"Invalid `--port`: must be a port number from 1 to 65535. Received: --port={port}" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _refused(["dashboard", str(tiny_run), "--port", str(port)], capsys)
        assert "Invalid `--port`: must be free on 127.0.0.1" in err and f"--port={port}" in err
    tiny["engine"] = "keras-tuner"
    run_dir, _ = create_run_dir(tmp_path / "results", "tiny", yaml.safe_dump(tiny), storage_path=None,
                                study_storage=None, address=None)
    err = _refused(["dashboard", str(run_dir)], capsys)
    assert "must hold a search with an Optuna study, but its engine is keras-tuner" in err
