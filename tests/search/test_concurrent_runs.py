"""Two `mtl-search run` of one experiment, started at the same moment into one results directory."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import yaml

from search.engines import ray_session
from search.rundir.records import FINISHED, load_records


def test_two_runs_started_together_each_search_in_their_own_directory_and_study(tmp_path, tiny):
    tiny["budget"] = {"trials": 3, "max_epochs": 2}
    tiny["concurrency"] = 1  # one core each
    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(yaml.safe_dump(tiny))
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "search.cli", "run", str(experiment), "--results-dir", str(results)]
    logs = [(tmp_path / f"out{i}.txt").open("w") for i in range(2)]
    processes = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env) for log in logs]
    sessions = _ray_sessions_while_running(processes)
    for log in logs:
        log.close()
    outputs = [(tmp_path / f"out{i}.txt").read_text() for i in range(2)]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    # Two local Rays side by side; neither left a process behind.
    assert len(sessions) == 2
    for record in sessions.values():
        assert not ray_session.session_processes(record)

    run_dirs = sorted(p for p in results.iterdir() if p.is_dir())
    assert [p.name for p in run_dirs] == ["tiny", "tiny-2"]
    for run_dir in run_dirs:
        # Each command said where it wrote, and each directory holds one whole search of its own.
        assert sum(f"{run_dir}/leaderboard.md" in output for output in outputs) == 1
        records = load_records(run_dir)
        assert len(records) == 3 and all(r.status in FINISHED for r in records)
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run_dir / 'study.db'}")
        trials = study.get_trials(deepcopy=False)
        assert [t.number for t in trials] == [0, 1, 2] and all(t.state.is_finished() for t in trials)
        assert "3 trials: " in (run_dir / "leaderboard.md").read_text()


def _ray_sessions_while_running(processes, timeout_s: float = 600.0) -> dict:
    """The Ray session records of ``processes`` (each command removes its own as it ends), read while they run."""
    from ray._common.utils import get_default_ray_temp_dir

    drivers, found = {p.pid for p in processes}, {}
    deadline = time.time() + timeout_s
    while any(p.poll() is None for p in processes) and time.time() < deadline:
        for path in Path(get_default_ray_temp_dir()).glob(f"session_*/{ray_session.RECORD}"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record["driver"][0] in drivers:
                found[record["driver"][0]] = record
        time.sleep(0.5)
    for p in processes:
        p.wait(timeout=max(1.0, deadline - time.time()))
    return found
