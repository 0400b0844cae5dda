"""Training throughput: a trial against a bare ``model.fit`` (run by hand, not in CI).

    python bench/throughput.py                   # ~14 minutes on a 2-core machine
    python bench/throughput.py --ratio-only      # the ratio at 1 CPU alone (~4 minutes)
    python bench/throughput.py --epochs 6 --out /tmp/throughput

One architecture and batch size (configs/shapes.yaml's fixed model, batch 64) on the same
training split, measured these ways, each in its own process:

* the throughput ratio at 1 CPU: the search's trainable and a bare ``model.fit`` taking turns, epoch
  by epoch, in one process with one thread (:func:`interleaved`). This machine's speed drifts more
  from minute to minute than the machinery costs, and an epoch now and then takes twice as long; turn
  by turn, both see the same drift;
* bare, 1 thread: ``model.fit`` in a plain Python process, TensorFlow and OpenMP limited to one
  thread (what a trial with ``cpus: 1`` gets);
* trial, 1 CPU: the same model as the only trial of a real search (``mtl-search run``);
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

PAIRS = 16  # turns of a trial epoch and a bare epoch for the ratio at 1 CPU (after one that traces the graphs)
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


def interleaved(pairs: int) -> dict:
    """A trial's epochs and bare ``model.fit`` epochs taking turns in this one process, one thread; called in a
    child process by :func:`main`.

    The trial is the search's own trainable (search/engines/trainable.py: its ``train()``, as Ray Tune calls it
    in a worker, then its ``save()`` to a Ray Tune storage context, as Tune checkpoints every epoch), on the
    same model and data as the bare one: once as shipped, and once without weight averaging (a training feature
    of the default, search/engines/averaging.py; without it, what is left is what the search machinery costs).
    Turn by turn, a drift of the machine's speed (it runs some minutes at half speed) slows all alike, which no
    comparison of separate processes escapes. The bare epoch is timed from its ``on_epoch_begin`` to its
    ``on_epoch_end`` (validation included), so it pays nothing for the ``fit`` call around it; a trial's turn
    is timed whole: what a worker spends per epoch."""
    import keras
    import ray
    from ray.train._internal.storage import StorageContext

    from mtl_models import build_model
    from search.engines.trainable import TrialTrainable
    from search.engines.worker import configure_tensorflow
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare

    configure_tensorflow(1)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # the trial asks its node
    storage_dir = tempfile.mkdtemp()

    def trial(name: str, **override):
        prepared = prepare(parse_experiment({**shapes_experiment(name, epochs=pairs, cpus=1, trials=1), **override}))

        class Trial(TrialTrainable):
            def setup(self, config):  # what tune.with_parameters passes in a real search
                super().setup(config, prepared=prepared, run_dir=None, cooldown=None)

        storage = StorageContext(storage_path=storage_dir, experiment_dir_name=name, trial_dir_name="trial")
        return prepared, Trial({"batch_size": prepared.experiment.batch_size}, storage=storage)

    prepared, shipped = trial("shipped")
    _, machinery = trial("machinery", weight_average=0)
    spec, batch_size = prepared.spec_for({"batch_size": prepared.experiment.batch_size})
    keras.utils.set_random_seed(prepared.experiment.seed)
    model = build_model(spec)
    train, val = prepared.splits.train, prepared.splits.val
    seconds: dict[str, list[float]] = {"bare": [], "trial": [], "machinery": []}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds["bare"].append(time.perf_counter() - self.start)

    for epoch in range(pairs + 1):  # the first of each traces its graphs and is left out
        model.fit(dict(train.inputs), dict(train.targets), batch_size=batch_size, initial_epoch=epoch,
                  epochs=epoch + 1, validation_data=(dict(val.inputs), dict(val.targets)), callbacks=[Clock()],
                  verbose=0)
        for key, trainable in (("trial", shipped), ("machinery", machinery)):
            start = time.perf_counter()
            trainable.train()
            trainable.save()
            seconds[key].append(time.perf_counter() - start)
    ray.shutdown()
    shutil.rmtree(storage_dir, ignore_errors=True)
    bare_s, trial_s, machinery_s = (seconds[k][1:] for k in ("bare", "trial", "machinery"))
    paired = [b / t for b, t in zip(bare_s, trial_s)]
    return {"bare_epoch_s": bare_s, "trial_epoch_s": trial_s, "machinery_epoch_s": machinery_s,
            "paired_ratios": paired, "ratio": statistics.median(bare_s) / statistics.median(trial_s),
            "ratio_paired": statistics.median(paired),
            "ratio_machinery": statistics.median(bare_s) / statistics.median(machinery_s),
            "ratio_machinery_paired": statistics.median(b / t for b, t in zip(bare_s, machinery_s))}


def _in_child(flag: str, value: int, threads: int, epochs: int = 0) -> dict:
    # OMP_NUM_THREADS as Ray sets it for a worker with this many CPUs: oneDNN's OpenMP pool would
    # otherwise use every core, and "1 thread" would not be one core.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, flag, str(value), "--epochs", str(epochs)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per measurement (default 8)")
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"turns for the ratio at 1 CPU (default {PAIRS})")
    parser.add_argument("--ratio-only", action="store_true",
                        help="measure only the ratio at 1 CPU, keeping the other figures of <out>/throughput.json")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--bare", type=int, metavar="THREADS", help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--interleaved", type=int, metavar="PAIRS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(args.epochs, args.bare)))
        return
    if args.interleaved:
        print(json.dumps(interleaved(args.interleaved)))
        return
    path = args.out / "throughput.json"
    result: dict = json.loads(path.read_text()) if args.ratio_only and path.exists() else {"epochs": args.epochs}
    result.pop("side_by_side", None)  # the earlier estimate, from separate processes
    result["interleaved"] = _in_child("--interleaved", args.pairs, 1)
    result["throughput_ratio"] = result["interleaved"]["ratio"]
    if not args.ratio_only:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            result["bare_1_thread"] = _in_child("--bare", 1, 1, args.epochs)
            (work / "bare-samples.json").write_text(json.dumps(result["bare_1_thread"]["train_samples"]))
            result["trial_1_cpu"] = trials(args.epochs, 1, 1, work)
            result["trials_2_concurrent"] = trials(args.epochs, 1, 2, work)
            # One trial of a 2-slot search, running alone (as at a search's end): its threads span both slots' CPUs.
            result["trial_alone_of_2"] = trials(args.epochs, 1, 1, work, concurrency=2)
            result["bare_2_threads"] = _in_child("--bare", 2, 2, args.epochs)
            result["trial_2_cpus"] = trials(args.epochs, 2, 1, work)
        bare_1 = result["bare_1_thread"]["samples_per_s"]
        alone = result["trial_1_cpu"]["samples_per_s"][0]
        result["throughput_ratio_sequential"] = alone / bare_1
        result["throughput_ratio_2_cpus"] = (result["trial_2_cpus"]["samples_per_s"][0]
                                             / result["bare_2_threads"]["samples_per_s"])
        result["concurrent_vs_alone"] = statistics.mean(result["trials_2_concurrent"]["samples_per_s"]) / alone
        result["concurrent_total_vs_alone"] = result["trials_2_concurrent"]["total_samples_per_s"] / alone
        result["alone_of_2_vs_alone"] = result["trial_alone_of_2"]["samples_per_s"][0] / alone
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=1))


if __name__ == "__main__":
    main()
