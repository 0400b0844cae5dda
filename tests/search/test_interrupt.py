"""Ctrl-C stops a search cleanly and prints the command that resumes it; resume finishes the budget.

Each fault is run with trials as fast as they go and with trials slowed by a wait after every epoch
(``MTL_SEARCH_TEST_EPOCH_SLEEP``): the tests decide on what the search records, so both must hold.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from search.engines import ray_session
from search.engines.trainable import EPOCH_SLEEP_ENV
from search.rundir.records import FINISHED, load_records


def _finished(run_dir):
    return {r.trial_id: r for r in load_records(run_dir) if r.status in FINISHED}


PACES = pytest.mark.parametrize("epoch_sleep", ["0", "1"], ids=["fast", "slowed"])


@PACES
def test_ctrl_c_then_resume_keeps_finished_trials_and_completes_the_budget(tmp_path, tiny, epoch_sleep):
    tiny["name"] = "interrupted"
    tiny["budget"] = {"trials": 5, "max_epochs": 6}
    tiny["scheduler"] = {"grace_period": 6}  # nobody stops early: trials stay busy long enough to interrupt
    experiment = tmp_path / "interrupted.yaml"
    experiment.write_text(yaml.safe_dump(tiny))
    results = tmp_path / "results"
    run_dir = results / "interrupted"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", EPOCH_SLEEP_ENV: epoch_sleep}
    command = [sys.executable, "-m", "search.cli", "run", str(experiment), "--results-dir", str(results)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and len(_finished(run_dir)) < 1:
        time.sleep(1)
    assert _finished(run_dir), "no trial finished in time"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 130, output[-3000:]
    assert f"mtl-search resume {run_dir}" in output
    before = _finished(run_dir)
    assert 1 <= len(before) < 5

    resumed = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(run_dir)], capture_output=True,
                             text=True, env=env, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = _finished(run_dir)
    assert len(after) == 5
    for trial_id, record in before.items():  # kept, not re-run
        assert after[trial_id].epochs == record.epochs
        assert after[trial_id].history == record.history
    study = optuna.load_study(study_name="interrupted", storage=f"sqlite:///{run_dir / 'study.db'}")
    finished_states = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    assert len(finished_states) == 5


@PACES
def test_driver_killed_then_resume_keeps_finished_trials_and_completes_the_budget(tmp_path, tiny, epoch_sleep):
    """SIGKILL gives the driver no chance to clean up: the run directory and Tune's snapshot must suffice, and the
    next command ends the Ray processes the killed one left running."""
    tiny["name"] = "killed"
    tiny["budget"] = {"trials": 5, "max_epochs": 6}
    tiny["scheduler"] = {"grace_period": 6}
    experiment = tmp_path / "killed.yaml"
    experiment.write_text(yaml.safe_dump(tiny))
    results = tmp_path / "results"
    run_dir = results / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", EPOCH_SLEEP_ENV: epoch_sleep}
    command = [sys.executable, "-m", "search.cli", "run", str(experiment), "--results-dir", str(results)]
    # Its own process group, so that anything left can be cleaned up at the end even if the test fails.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(_finished(run_dir)) < 2:
            time.sleep(0.5)
        assert len(_finished(run_dir)) >= 2, "no trial finished in time"
        killed = _session_of(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        time.sleep(3)
        left = ray_session.session_processes(killed)  # what the kill left running (the agents, on this machine)
        before = _finished(run_dir)
        assert 2 <= len(before) < 5

        resumed = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(run_dir)], capture_output=True,
                                 text=True, env=env, timeout=400)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert not ray_session.session_processes(killed), f"left by the killed command: {left}"
        if left:  # ended by the resume as it started (the count may be lower: an agent may have exited on its own)
            assert "process(es) an earlier, killed command had left running" in resumed.stdout, resumed.stdout[-2000:]
        records = load_records(run_dir)
        # A trial begun after Ray Tune's last snapshot is unknown to the resumed search, which runs another in its
        # place: it is kept, as failed and lost, with the epochs it trained (the kill decides whether there is one).
        lost = {r.trial_id for r in records if r.status == "failed" and (r.failure or "").startswith("lost:")}
        assert len(lost) <= 2 and not lost & set(before)
        after = {t: r for t, r in _finished(run_dir).items() if t not in lost}
        assert len(after) == 5 and len(records) == 5 + len(lost)
        for trial_id, record in before.items():  # kept, not re-run
            assert after[trial_id].epochs == record.epochs
            assert after[trial_id].history == record.history
            assert after[trial_id].started_at == record.started_at
        assert f"{5 + len(lost)} trials: " in (run_dir / "leaderboard.md").read_text()
        study = optuna.load_study(study_name="killed", storage=f"sqlite:///{run_dir / 'study.db'}")
        assert len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]) >= 5
    finally:
        _kill_group(process.pid)


def _session_of(driver: int) -> dict:
    """The record of the Ray session that the command with process id ``driver`` started."""
    from ray._common.utils import get_default_ray_temp_dir

    for path in Path(get_default_ray_temp_dir()).glob(f"session_*/{ray_session.RECORD}"):
        record = json.loads(path.read_text())
        if record["driver"][0] == driver:
            return record
    raise AssertionError(f"no Ray session recorded for process {driver}")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
