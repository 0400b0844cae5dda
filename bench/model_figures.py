"""Model figures for the README: parameter counts of network (e), training speed of network (b).

Run: python bench/model_figures.py   (writes results/bench/model_figures.json)
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mtl_models  # noqa: E402
from mtl_models.data import split  # noqa: E402


def parameter_counts() -> dict[str, int]:
    spec = mtl_models.reference("e")
    return {
        "hard_sharing": mtl_models.build_model(spec).count_params(),
        "separate_branches": mtl_models.build_model(spec.replace(sharing="separate")).count_params(),
    }


def training_speed_b(n_samples: int = 2000, epochs: int = 3) -> dict[str, float]:
    """Samples/s of network (b) training (batch 32), epochs after the first (tracing) one."""
    data = mtl_models.reference_data("b", n_samples=n_samples, seed=0)
    splits = split(data, val_fraction=0.2, test_fraction=0.0, seed=0, stratify="A")
    model = mtl_models.build_model(mtl_models.reference("b", train=splits.train))
    x, y = dict(splits.train.inputs), dict(splits.train.targets)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # warm-up: graph tracing
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    return {"samples_per_s": round(len(splits.train) * epochs / seconds, 1), "train_samples": len(splits.train),
            "epochs_timed": epochs, "seconds": round(seconds, 2), "parameters": model.count_params()}


def main() -> None:
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "network_e_parameters": parameter_counts(),
        "network_b_training": training_speed_b(),
    }
    out = Path("results/bench/model_figures.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
