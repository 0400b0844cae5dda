"""Summaries over seeds and tasks: mean and spread of a metric, and LibMTL's Δm%.

Pure Python and NumPy: the retrain table uses them, and they are tested on their own.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from search.experiment.metrics import higher_is_better

__all__ = ["delta_m", "mean_std"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def delta_m(multi: Mapping[str, float], single: Mapping[str, float]) -> float:
    """Δm% = 100/T · Σ_t (-1)^{l_t} (M_multi,t − M_single,t) / M_single,t  (LibMTL).

    ``multi`` and ``single`` map the same metric keys (e.g. ``test_shape_accuracy``) to values;
    ``l_t`` is 1 where lower is better. Positive means sharing helped.
    """
    keys = sorted(single)
    if not keys or set(keys) - set(multi):
        raise ValueError(f"delta_m needs the multi-task model's value of every key {keys}")
    gains = []
    for key in keys:
        base = single[key]
        if base == 0:
            continue
        sign = 1.0 if higher_is_better(key) else -1.0
        gains.append(sign * (multi[key] - base) / abs(base))
    return 100.0 * float(np.mean(gains)) if gains else math.nan
