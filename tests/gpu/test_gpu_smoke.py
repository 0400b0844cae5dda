"""GPU smoke test: four trials each ask for 0.25 of one GPU and share the card, memory growth on.

Runs where TensorFlow sees a GPU; elsewhere it is skipped with the reason printed (pytest -rs).
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.search.conftest import TINY


def _machine_env() -> dict[str, str]:
    """The environment with the machine's own CUDA_VISIBLE_DEVICES (tests/conftest.py hides GPUs from the rest)."""
    env = dict(os.environ)
    original = env.pop("MTL_TESTS_CUDA_VISIBLE_DEVICES", "<unset>")
    if original == "<unset>":
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = original
    return env


def _gpus() -> int:
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_machine_env())
    return int(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else 0


@pytest.fixture(scope="module")
def gpu():
    count = _gpus()
    if not count:
        pytest.skip("no GPU visible to TensorFlow on this machine: the fractional-GPU smoke test needs one")
    return count


def test_four_quarter_gpu_trials_share_one_card(gpu, tmp_path):
    data = json.loads(json.dumps(TINY))
    data.update(budget={"trials": 4, "max_epochs": 4}, concurrency=4, resources={"cpus": 1, "gpus": 0.25},
                scheduler={"grace_period": 4})
    data["data"]["options"] = {"n_samples": 2000, "image_size": 32}
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--results-dir", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=900, env=_machine_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "r" / "tiny" / "trials").glob("*.json")]
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    spans = [(r["started_at"], r["started_at"] + r["wall_s"]) for r in records]
    overlap = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    print(f"{overlap} trials ran at once on {gpu} GPU(s)")
    assert overlap == 4
