"""The compose topology on loopback: a search runs across a head and a worker, and survives losing the worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mtl_models.data import load_dataset
from mtl_models.data.folder import write_image_folder
from search.engines.trainable import EPOCH_SLEEP_ENV
from tests.search.conftest import TINY


def _experiment(tmp_path: Path, **changes) -> Path:
    data = json.loads(json.dumps(TINY))
    data.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _search(cluster, experiment: Path, results: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli", "run", str(experiment), "--address", cluster.address,
         "--results-dir", str(results)],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _records(run_dir: Path) -> list[dict]:
    out = []
    for path in sorted((run_dir / "trials").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:  # being rewritten
            pass
    return out


def test_a_search_from_an_image_folder_runs_trials_on_the_head_and_the_worker(loopback_cluster, tmp_path):
    """The data streamed from a folder every node sees at the same path (checked on each node first)."""
    loopback_cluster.start("head", "head", cpus=1)
    loopback_cluster.start("worker", "cpu-worker", cpus=1)
    nodes = loopback_cluster.node_ids(expected=2)
    options = write_image_folder(load_dataset("shapes", **TINY["data"]["options"]), tmp_path / "shapes")
    data = {**TINY["data"], "dataset": "images", "options": {**options, "cache": "disk"}}
    experiment = _experiment(tmp_path, data=data, budget={"trials": 4, "max_epochs": 3})
    search = _search(loopback_cluster, experiment, tmp_path / "r")
    output, _ = search.communicate(timeout=600)
    assert search.returncode == 0, output[-3000:]
    assert f"Ray cluster at {loopback_cluster.address}: 2 node(s)" in output
    records = _records(tmp_path / "r" / "tiny")
    assert len(records) == 4 and all(r["status"] in ("completed", "stopped early") for r in records)
    used = {row["node"] for r in records for row in r["history"]}
    assert used == {nodes["head"], nodes["worker0"]}


# With trials as fast as they go and slowed by a wait after every epoch: decided on the recorded nodes, it must
# hold on both.
@pytest.mark.parametrize("epoch_sleep", ["0", "1"], ids=["fast", "slowed"])
def test_killing_a_worker_mid_search_retries_its_trial_from_the_last_checkpoint(loopback_cluster, tmp_path,
                                                                                 epoch_sleep):
    loopback_cluster.env[EPOCH_SLEEP_ENV] = epoch_sleep  # the nodes' workers inherit it
    loopback_cluster.start("head", "head", cpus=1)
    loopback_cluster.start("worker", "cpu-worker", cpus=1)
    nodes = loopback_cluster.node_ids(expected=2)
    experiment = _experiment(tmp_path, budget={"trials": 4, "max_epochs": 8}, scheduler={"grace_period": 8},
                             data={**TINY["data"], "options": {"n_samples": 600, "image_size": 16}})
    run_dir = tmp_path / "r" / "tiny"
    search = _search(loopback_cluster, experiment, tmp_path / "r")
    victim = None
    deadline = time.time() + 300
    while victim is None and time.time() < deadline and search.poll() is None:
        for record in _records(run_dir):
            history = record["history"]
            if record["status"] == "running" and len(history) >= 2 and history[-1]["node"] == nodes["worker0"]:
                victim = record
        time.sleep(0.5)
    assert victim is not None, "no trial reached epoch 2 on the worker"
    loopback_cluster.kill("worker")
    output, _ = search.communicate(timeout=600)
    assert search.returncode == 0, output[-3000:]
    records = {r["trial_id"]: r for r in _records(run_dir)}
    assert len(records) == 4 and all(r["status"] in ("completed", "stopped early") for r in records.values())
    retried = records[victim["trial_id"]]
    assert retried["retries"] >= 1 and "lost its worker" in output
    epochs = [row["epoch"] for row in retried["history"]]
    assert epochs == list(range(1, len(epochs) + 1)) and epochs[-1] == 8
    # It went on from its checkpoint on the head: the epochs it recorded on the worker (at least those seen before
    # the kill; more if the worker trained on before it died) come first, then only the head's, none repeated.
    # Decided on the recorded nodes alone, so the test holds however long an epoch takes on this machine.
    where = [row["node"] for row in retried["history"]]
    on_worker = where.index(nodes["head"]) if nodes["head"] in where else len(where)
    assert on_worker >= len(victim["history"]) and set(where[:on_worker]) == {nodes["worker0"]}, where
    assert on_worker < len(where) and set(where[on_worker:]) == {nodes["head"]}, where
    assert "4 trials" in (run_dir / "leaderboard.md").read_text()
