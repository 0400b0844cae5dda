"""Images on disk: the streaming pipeline against arrays in memory, a trial's memory as the folder grows, and
what the checks before a search cost (run by hand, not in CI).

    python bench/images.py pipeline     # samples/s from the folder vs the same images as arrays (~5 min)
    python bench/images.py memory       # a trial's peak RSS on 5,000 and on 50,000 images (~10 min)
    python bench/images.py checks       # reading and checking a 100,000-row label table (~1 min)
    python bench/images.py mobilenet    # a MobileNetV3Small search from a 96x96 folder, end to end (~5 min)
    python bench/images.py all

Folders are generated once under ``--work`` (default /tmp/mtl-bench-images): the shapes data set at 64x64 RGB,
5,000 images written as PNG; the 50,000- and 100,000-row folders repeat those files under new names (hard
links), which is what a pipeline and a check see as new files. Each measurement runs in its own process and
appends its record to ``results/bench/images/<kind>.jsonl``; ``results/bench/images.md`` is rewritten from the
latest record of each kind.

* pipeline: one model (configs/shapes.yaml's fixed model), batch 64, one thread per core as a 2-CPU trial
  has; the median samples/s of epochs 2-4 (epoch 1 traces the graph and fills the cache), validation
  included, side by side in time: arrays, folder, arrays, folder. Ratio = folder / arrays.
* memory: a process that prepares the experiment and trains one epoch from the folder, as a trial does,
  with ``cache: disk`` and with ``cache: none``; its peak RSS (``ru_maxrss``).
* checks: ``load_images`` (the table read, every path, header and file ending checked) on 100,000 rows.
* mobilenet: ``mtl-search run`` of a MobileNetV3Small backbone (weights none, one frozen epoch, then the top
  20 layers at a tenth of the learning rate) on 1,000 shapes at 96x96, two tasks (shape, colour), 2 trials of 4
  epochs; then, in one process, the same fixed model's epoch times from the folder (epoch 1 builds the graph
  and fills the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "results" / "bench" / "images"
BASE = 5000


def folder(work: Path, rows: int) -> Path:
    """The label table of a shapes folder at 64x64 with ``rows`` rows (written or linked once)."""
    import pandas as pd

    base = work / f"shapes64-{BASE}"
    if not (base / "labels.csv").exists():
        from mtl_models.data import load_shapes
        from mtl_models.data.folder import write_image_folder

        write_image_folder(load_shapes(n_samples=BASE, image_size=64, seed=0), base)
    if rows == BASE:
        return base / "labels.csv"
    grown = work / f"shapes64-{rows}"
    if not (grown / "labels.csv").exists():
        table = pd.read_csv(base / "labels.csv", dtype=str, keep_default_na=False)
        (grown / "images").mkdir(parents=True, exist_ok=True)
        copies = []
        for copy in range(-(-rows // BASE)):
            part = table.copy()
            part["file"] = [f"images/{copy}-{Path(f).name}" for f in table["file"]]
            for old, new in zip(table["file"], part["file"]):
                if not (grown / new).exists():
                    os.link(base / old, grown / new)
            copies.append(part)
        pd.concat(copies).iloc[:rows].to_csv(grown / "labels.csv", index=False)
    return grown / "labels.csv"


def mobilenet_folder(work: Path) -> Path:
    """The label table of 1,000 shapes at 96x96 (written once)."""
    out = work / "shapes96-1000"
    if not (out / "labels.csv").exists():
        from mtl_models.data import load_shapes
        from mtl_models.data.folder import write_image_folder

        write_image_folder(load_shapes(n_samples=1000, image_size=96, seed=0), out)
    return out / "labels.csv"


def data_options(table: Path, cache: str) -> dict:
    import yaml

    written = yaml.safe_load((ROOT / "configs" / "shapes_folder.yaml").read_text())["data"]["options"]
    return {**written, "path": str(table), "cache": cache}


def _measure_pipeline(table: Path, epochs: int) -> dict:
    """In a child process: the fixed model trained from arrays and from the folder, alternately."""
    import numpy as np

    from mtl_models import build_model
    from mtl_models.data import Dataset
    from mtl_models.streaming import feed, validation
    from search.engines.worker import configure_tensorflow
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare
    import keras
    import yaml

    configure_tensorflow(2)
    experiment = yaml.safe_load((ROOT / "configs" / "shapes_folder.yaml").read_text())
    experiment["data"]["options"] = data_options(table, "auto")
    experiment["space"] = {}  # the fixed model only
    prepared = prepare(parse_experiment(experiment))
    spec, batch = prepared.spec_for({})
    batch = 64

    def in_memory(part: Dataset) -> Dataset:
        return Dataset(part.name, {k: np.asarray(v) for k, v in part.inputs.items()}, part.targets, part.tasks)

    sources = {"folder": (prepared.splits.train, prepared.splits.val)}
    sources["arrays"] = tuple(in_memory(part) for part in sources["folder"])
    models = {}
    for name in sources:
        keras.utils.set_random_seed(0)
        models[name] = build_model(spec)
    seconds: dict[str, list[float]] = {name: [] for name in sources}
    for epoch in range(epochs):
        for name in ("arrays", "folder"):
            train, val = sources[name]
            started = time.perf_counter()
            models[name].fit(**feed(train, batch, shuffle=True, seed=0), validation_data=validation(val, batch),
                             initial_epoch=epoch, epochs=epoch + 1, verbose=0)
            seconds[name].append(time.perf_counter() - started)
    samples = len(prepared.splits.train) + len(prepared.splits.val)
    rate = {name: samples / statistics.median(s[1:]) for name, s in seconds.items()}
    return {"kind": "pipeline", "rows": len(prepared.splits.train), "image": [64, 64, 3], "batch": batch,
            "epoch_seconds": seconds, "samples_per_s": rate, "ratio": rate["folder"] / rate["arrays"]}


def _measure_memory(table: Path, cache: str) -> dict:
    """In a child process: prepare and train one epoch from the folder; the peak RSS."""
    import resource

    import keras
    import yaml

    from mtl_models import build_model
    from mtl_models.streaming import feed, validation
    from search.engines.worker import configure_tensorflow
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare

    configure_tensorflow(2)
    experiment = yaml.safe_load((ROOT / "configs" / "shapes_folder.yaml").read_text())
    experiment["data"]["options"] = data_options(table, cache)
    experiment["space"] = {}
    started = time.perf_counter()
    prepared = prepare(parse_experiment(experiment))
    prepare_s = time.perf_counter() - started
    spec, _ = prepared.spec_for({})
    keras.utils.set_random_seed(0)
    model = build_model(spec)
    started = time.perf_counter()
    model.fit(**feed(prepared.splits.train, 64, shuffle=True, seed=0),
              validation_data=validation(prepared.splits.val, 64), epochs=1, verbose=0)
    return {"kind": "memory", "rows": len(prepared.splits.train) + len(prepared.splits.val)
            + len(prepared.splits.test), "cache": cache, "prepare_s": round(prepare_s, 2),
            "epoch_s": round(time.perf_counter() - started, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _measure_checks(table: Path) -> dict:
    from mtl_models.data import load_dataset

    options = data_options(table, "auto")
    started = time.perf_counter()
    data = load_dataset("images", **options)
    return {"kind": "checks", "rows": len(data), "seconds": round(time.perf_counter() - started, 2)}


MOBILENET = {
    "backbone": {"kind": "keras_application", "name": "MobileNetV3Small", "weights": "none", "frozen_epochs": 1,
                 "unfreeze_layers": 20, "fine_tune_lr_factor": 0.1},
    "heads": {"shape": {"units": 32}, "colour": {"units": 16}},
    "optimizer": {"name": "adam", "learning_rate": 0.002},
}


def mobilenet_experiment(table: Path) -> dict:
    """The MobileNetV3Small experiment on the 96x96 folder at ``table``: two tasks, a tiny budget."""
    import yaml

    written = yaml.safe_load((ROOT / "configs" / "shapes_folder.yaml").read_text())["data"]
    options = {**written["options"], "path": str(table), "image_shape": [96, 96, 3], "cache": "auto"}
    options["tasks"] = [t for t in options["tasks"] if t["name"] in ("shape", "colour")]
    return {"name": "mobilenet", "seed": 0, "data": {**written, "options": options}, "model": MOBILENET,
            "batch_size": 32, "space": {"optimizer.learning_rate": {"float": [5.0e-4, 5.0e-3], "log": True},
                                        "heads.shape.units": {"choice": [16, 32, 64]}},
            "objective": {"weights": {"shape": 1.0, "colour": 1.0}},
            "budget": {"trials": 2, "max_epochs": 4}, "scheduler": {"grace_period": 4}}


def _measure_mobilenet(table: Path, epochs: int) -> dict:
    """In a child process: the search, end to end, by its command; then the fixed model's epoch times."""
    import tempfile

    import keras
    import yaml

    from mtl_models import build_model
    from mtl_models.streaming import feed, validation
    from search.engines.worker import configure_tensorflow
    from search.experiment.config import parse_experiment
    from search.experiment.prepared import prepare
    from search.rundir.records import load_records

    experiment = mobilenet_experiment(table)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "mobilenet.yaml"
        path.write_text(yaml.safe_dump(experiment, sort_keys=False))
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--results-dir",
                              str(Path(scratch) / "results")], cwd=ROOT, capture_output=True, text=True, check=False)
        search_s = time.perf_counter() - started
        if run.returncode:
            raise SystemExit(f"the search failed ({run.returncode}):\n{run.stderr[-3000:]}")
        records = load_records(Path(scratch) / "results" / "mobilenet")
    trials = [{"status": r.status, "epochs": r.epochs, "wall_s": round(r.wall_s or 0, 1),
               "val_objective": r.objective} for r in records]

    configure_tensorflow(2)
    experiment["space"] = {}
    prepared = prepare(parse_experiment(experiment))
    spec, batch = prepared.spec_for({})
    keras.utils.set_random_seed(0)
    model = build_model(spec)
    seconds = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.fit(**feed(prepared.splits.train, batch, shuffle=True, seed=0),
                  validation_data=validation(prepared.splits.val, batch), initial_epoch=epoch, epochs=epoch + 1,
                  verbose=0)
        seconds.append(round(time.perf_counter() - started, 2))
    samples = len(prepared.splits.train) + len(prepared.splits.val)
    return {"kind": "mobilenet", "rows": samples + len(prepared.splits.test), "image": [96, 96, 3], "batch": batch,
            "search_s": round(search_s, 1), "trials": trials, "epoch_seconds": seconds,
            "samples_per_s": round(samples / statistics.median(seconds[1:]), 1),
            "parameters": int(model.count_params())}


def _child(kind: str, *args: str) -> dict:
    """Run one measurement in a fresh process (nothing cached, memory counted from zero)."""
    out = subprocess.run([sys.executable, __file__, "_child", kind, *args], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    if out.returncode:
        raise SystemExit(f"{kind} {args} failed:\n{out.stderr[-3000:]}")
    record = json.loads(out.stdout.strip().splitlines()[-1])
    record["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{record['kind']}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
    return record


def summary() -> str:
    """results/bench/images.md from the latest records."""
    def latest(kind: str) -> list[dict]:
        path = RESULTS / f"{kind}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    lines = ["# Images on disk (`python bench/images.py all`)", ""]
    if pipeline := latest("pipeline"):
        r = pipeline[-1]
        lines += ["## Input pipeline: folder against arrays (64x64 RGB, batch 64, 2 threads)", "",
                  f"Measured {r['at']}: arrays {r['samples_per_s']['arrays']:.0f} samples/s, folder "
                  f"{r['samples_per_s']['folder']:.0f} samples/s: **ratio {r['ratio']:.2f}** (median of epochs "
                  f"2-{len(r['epoch_seconds']['folder'])}; target >= 0.9).", ""]
    if memory := latest("memory"):
        lines += ["## A trial's peak RSS by folder size", "", "| rows | cache | peak RSS (MiB) | prepare (s) | "
                  "epoch (s) |", "|---:|---|---:|---:|---:|"]
        last = {(r["rows"], r["cache"]): r for r in memory}
        for (rows, cache), r in sorted(last.items()):
            lines.append(f"| {rows:,} | {cache} | {r['peak_rss_mib']:.0f} | {r['prepare_s']} | {r['epoch_s']} |")
        for cache in ("disk", "none"):
            small, large = last.get((BASE, cache)), last.get((10 * BASE, cache))
            if small and large:
                growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1
                lines.append(f"\n`cache: {cache}`: {growth:+.1%} from 5,000 to 50,000 images (target < +20 %).")
        lines.append("")
    if mobilenet := latest("mobilenet"):
        r = mobilenet[-1]
        done = sum(t["status"] == "completed" for t in r["trials"])
        best = max(t["val_objective"] for t in r["trials"] if t["val_objective"] is not None)
        lines += ["## A MobileNetV3Small search from a folder (96x96 RGB, weights none, 2 tasks)", "",
                  f"Measured {r['at']}: `mtl-search run` took {r['search_s']} s for {len(r['trials'])} trials of "
                  f"{max(t['epochs'] for t in r['trials'])} epochs ({done} completed, best val objective "
                  f"{best:.4f}) on {r['rows']:,} images. The fixed model ({r['parameters']:,} parameters, batch "
                  f"{r['batch']}) in one process: epoch 1 {r['epoch_seconds'][0]} s (graph built, cache filled), "
                  f"then {statistics.median(r['epoch_seconds'][1:])} s an epoch (median), "
                  f"{r['samples_per_s']} samples/s, training and validation.", ""]
    if checks := latest("checks"):
        r = checks[-1]
        lines += ["## Checks before a search", "", f"{r['rows']:,} rows: {r['seconds']} s (table, paths, every "
                  "file's header and ending).", ""]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        kind, table, *rest = sys.argv[2:]
        measure = {"pipeline": lambda: _measure_pipeline(Path(table), int(rest[0])),
                   "memory": lambda: _measure_memory(Path(table), rest[0]),
                   "checks": lambda: _measure_checks(Path(table)),
                   "mobilenet": lambda: _measure_mobilenet(Path(table), int(rest[0]))}[kind]
        print(json.dumps(measure()))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["pipeline", "memory", "checks", "mobilenet", "all", "summary"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mtl-bench-images"))
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    if args.what in ("pipeline", "all"):
        _child("pipeline", str(folder(args.work, BASE)), str(args.epochs))
    if args.what in ("memory", "all"):
        for rows in (BASE, 10 * BASE):
            for cache in ("disk", "none"):
                _child("memory", str(folder(args.work, rows)), cache)
    if args.what in ("checks", "all"):
        _child("checks", str(folder(args.work, 20 * BASE)))
    if args.what in ("mobilenet", "all"):
        _child("mobilenet", str(mobilenet_folder(args.work)), str(args.epochs))
    (ROOT / "results" / "bench" / "images.md").write_text(summary())
    print(summary())


if __name__ == "__main__":
    main()
