"""Training throughput: a trial on the embedded Ray against a bare ``model.fit`` (run by hand, not in CI).

    python bench/throughput.py                   # ~12 minutes on a 2-core machine
    python bench/throughput.py --epochs 6 --out /tmp/throughput

One architecture and batch size (configs/shapes.yaml's fixed model, batch 64) on the same
training split, measured these ways, each in its own process:

* bare, 1 thread: ``model.fit`` in a plain Python process, TensorFlow and OpenMP limited to one
  thread (what a trial with ``cpus: 1`` gets);
* trial, 1 CPU: the same model as the only trial of a real search (``mtl-search run``);
* side by side: the two above at once, one on each core, three times: the throughput ratio (the
  machine's speed drifts more from minute to minute than the machinery costs; at once, both drift);
* trials, 2 x 1 CPU: two such trials at once on the two cores (samples/s each, and summed);
* a trial alone in a 2-slot search: what a trial gets once the other slot is idle (its threads span
  both slots' CPUs, see search/engines/trainable.py);
* bare, 2 threads, and one trial with ``cpus: 2``: the whole machine for one model.

Samples/s are training samples per second of the median epoch after the first (the first traces
the graph), validation included. A trial's epochs also pay for its per-epoch checkpoint and report,
so the ratio trial / bare is what the search machinery costs. Results go to
``<out>/throughput.json``; ``bench/engines.py`` folds them into results/bench/latest.*.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROUNDS = 3  # side-by-side measurements of the ratio at 1 CPU (the median is kept)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the packages, also where the project is not pip-installed


def shapes_experiment(name: str, *, epochs: int, cpus: int, trials: int, concurrency: int | None = None) -> dict:
    """configs/shapes.yaml with its space pinned to the fixed model: every trial trains the same network."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "configs" / "shapes.yaml").read_text()))
    data.update(name=name, space={"batch_size": {"choice": [data["batch_size"]]}},
                budget={"trials": trials, "max_epochs": epochs}, resources={"cpus": cpus, "gpus": 0},
                concurrency=concurrency or trials)
    data["scheduler"] = {"grace_period": epochs, "reduction_factor": 3}  # no early stopping
    return data


def _epoch_seconds(ends: list[float]) -> list[float]:
    """Each epoch's seconds from the cumulative seconds at each epoch's end, leaving out the first (graph tracing)."""
    return [b - a for a, b in zip(ends, ends[1:])]


def _per_epoch_rate(samples: int, ends: list[float]) -> float:
    """Samples/s of the median epoch: this machine stalls an epoch now and then (5.5 s becomes 10.3 s), which
    a mean would charge to whichever process it hit."""
    return samples / statistics.median(_epoch_seconds(ends))


def bare(epochs: int, threads: int) -> dict:
    """``model.fit`` in this (plain) process; called in a child process by :func:`main`."""
    import keras

    from mtl_models import build_model
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare
    from search.engines.worker import configure_tensorflow

    configure_tensorflow(threads)
    prepared = prepare(parse_experiment(shapes_experiment("bare", epochs=epochs, cpus=threads, trials=1)))
    spec, batch_size = prepared.spec_for({"batch_size": prepared.experiment.batch_size})
    keras.utils.set_random_seed(prepared.experiment.seed)
    model = build_model(spec)
    train, val = prepared.splits.train, prepared.splits.val
    ends: list[float] = []
    ended_at: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.time() - self.start)
            ended_at.append(time.time())

    model.fit(dict(train.inputs), dict(train.targets), batch_size=batch_size, epochs=epochs,
              validation_data=(dict(val.inputs), dict(val.targets)), callbacks=[Clock()], verbose=0)
    samples = len(next(iter(train.targets.values())))
    return {"samples_per_s": _per_epoch_rate(samples, ends), "epoch_s": _epoch_seconds(ends), "ended_at": ended_at,
            "train_samples": samples}


def trials(epochs: int, cpus: int, count: int, work: Path, concurrency: int | None = None) -> dict:
    """``count`` identical trials at once in a real search (``concurrency`` slots); samples/s per trial."""
    name = f"trial-{count}x{cpus}cpu-of-{concurrency or count}"
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(shapes_experiment(name, epochs=epochs, cpus=cpus, trials=count,
                                                     concurrency=concurrency), sort_keys=False))
    subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--results-dir", str(work)], check=True,
                   stdout=subprocess.DEVNULL)
    samples = json.loads((work / "bare-samples.json").read_text())
    rates, seconds, ended_at = [], [], []
    for record in (work / name / "trials").glob("*.json"):
        history = json.loads(record.read_text())["history"]
        ends = [h["train_s"] for h in history]
        rates.append(_per_epoch_rate(samples, ends))
        seconds.append(_epoch_seconds(ends))
        ended_at.append([h["first_step_at"] + h["train_s"] for h in history])
    shutil.rmtree(work / name)  # a later round runs the same experiment again
    return {"samples_per_s": rates, "total_samples_per_s": sum(rates), "epoch_s": seconds, "ended_at": ended_at}


def side_by_side(epochs: int, work: Path) -> dict:
    """A trial with 1 CPU and a bare 1-thread ``model.fit`` at the same time, one on each core.

    This machine's speed drifts by a fifth from one minute to the next (the same bare epoch took 7.0 s,
    then 5.1 s two minutes later), more than the search machinery costs; side by side, a drift slows both.
    The bare run starts first and trains on past the trial: its epochs that ended while the trial trained
    (after the trial's first) are compared with the trial's."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, __file__, "--bare", "1", "--epochs", str(2 * epochs + 4)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        trial = trials(epochs, 1, 1, work)
    finally:
        out, _ = child.communicate()
    plain = json.loads(out.strip().splitlines()[-1])
    start, end = trial["ended_at"][0][0], trial["ended_at"][0][-1]
    overlapped = [s for s, at in zip(plain["epoch_s"], plain["ended_at"][1:]) if start < at <= end]
    if len(overlapped) < 3:
        raise RuntimeError(f"the bare run overlapped only {len(overlapped)} of the trial's epochs; raise --epochs")
    return {"bare_epoch_s": overlapped, "trial_epoch_s": trial["epoch_s"][0],
            "ratio": statistics.median(overlapped) / statistics.median(trial["epoch_s"][0])}


def _child(epochs: int, threads: int) -> dict:
    # OMP_NUM_THREADS as Ray sets it for a worker with this many CPUs: oneDNN's OpenMP pool would
    # otherwise use every core, and "1 thread" would not be one core.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--bare", str(threads), "--epochs", str(epochs)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per measurement (default 8)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--bare", type=int, metavar="THREADS", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(args.epochs, args.bare)))
        return
    result: dict = {"epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result["bare_1_thread"] = _child(args.epochs, 1)
        (work / "bare-samples.json").write_text(json.dumps(result["bare_1_thread"]["train_samples"]))
        result["side_by_side"] = [side_by_side(args.epochs, work) for _ in range(ROUNDS)]
        result["trial_1_cpu"] = trials(args.epochs, 1, 1, work)
        result["trials_2_concurrent"] = trials(args.epochs, 1, 2, work)
        # One trial of a 2-slot search, running alone (as at a search's end): its threads span both slots' CPUs.
        result["trial_alone_of_2"] = trials(args.epochs, 1, 1, work, concurrency=2)
        result["bare_2_threads"] = _child(args.epochs, 2)
        result["trial_2_cpus"] = trials(args.epochs, 2, 1, work)
    bare_1 = result["bare_1_thread"]["samples_per_s"]
    alone = result["trial_1_cpu"]["samples_per_s"][0]
    result["throughput_ratio"] = statistics.median(r["ratio"] for r in result["side_by_side"])
    result["throughput_ratio_sequential"] = alone / bare_1
    result["throughput_ratio_2_cpus"] = result["trial_2_cpus"]["samples_per_s"][0] / result["bare_2_threads"]["samples_per_s"]
    result["concurrent_vs_alone"] = statistics.mean(result["trials_2_concurrent"]["samples_per_s"]) / alone
    result["concurrent_total_vs_alone"] = result["trials_2_concurrent"]["total_samples_per_s"] / alone
    result["alone_of_2_vs_alone"] = result["trial_alone_of_2"]["samples_per_s"][0] / alone
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=1))


if __name__ == "__main__":
    main()
