"""A retraining run whose worker dies goes on from its last epoch, as search trials do (issue 13)."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

import search

EPOCHS = 10


def test_a_retrain_run_whose_worker_is_killed_goes_on_from_its_last_epoch(tmp_path, tiny):
    tiny["budget"] = {"trials": 1, "max_epochs": 2}
    tiny["concurrency"] = 1
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    search.run(path, results_dir=tmp_path / "results", progress=lambda line: None)
    run_dir = tmp_path / "results" / "tiny"

    command = [sys.executable, "-m", "search.cli", "retrain", str(run_dir), "--top-k", "1", "--seeds", "7",
               "--epochs", str(EPOCHS), "--patience", str(EPOCHS)]  # no early stop: every epoch trains
    log = tmp_path / "retrain.txt"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # Decided on what the run records (its saved epochs and the worker that trained them), not on timing.
        seen, deadline = None, time.time() + 300
        while seen is None and time.time() < deadline and process.poll() is None:
            for state in (run_dir / "retrain").glob("*-seed7/resume/state.json"):
                try:
                    rows = json.loads(state.read_text())["rows"]
                except (OSError, ValueError, KeyError):
                    continue
                if len(rows) >= 2:
                    seen = rows
            time.sleep(0.2)
        assert seen is not None, log.read_text()[-3000:]
        victim = seen[-1]["worker"]
        os.kill(victim, signal.SIGKILL)
        assert process.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    output = log.read_text()
    assert "lost its worker" in output and "retrying it from its last epoch" in output, output[-3000:]
    (run,) = (run_dir / "retrain").glob("*-seed7")
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed"
    history = result["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    # The killed worker's epochs (at least those seen before the kill) come first, then only the new worker's:
    # none trained twice, none from epoch 1 again.
    workers = [row["worker"] for row in history]
    cut = next(i for i, w in enumerate(workers) if w != victim)
    assert cut >= len(seen) and set(workers[:cut]) == {victim}, workers
    assert len(set(workers[cut:])) == 1, workers
    assert history[:len(seen)] == seen
    assert not (run / "resume").exists()
    assert (run / "model.keras").is_file() and result["test_metrics"]
