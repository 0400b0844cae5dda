"""Searchers by the names an experiment file uses: Optuna samplers (engine ray-tune) and KerasTuner tuners
(engine keras-tuner). The names and the classes they stand for are written once, in
:mod:`search.experiment.config`; this module only builds them.
"""

from __future__ import annotations

from typing import Any

from search.experiment.config import KERAS_TUNER_SAMPLERS, SAMPLERS

__all__ = ["keras_tuner_class", "make_sampler"]

# Without warn_independent_sampling, CMA-ES and QMC warn once per conditional parameter that they sample it
# independently. QMC's sequence ignores the seed unless it is scrambled: every seed would search alike.
_OPTIONS = {"cmaes": {"warn_independent_sampling": False},
            "qmc": {"warn_independent_sampling": False, "scramble": True}}


def make_sampler(name: str, seed: int) -> Any:
    """The Optuna sampler ``name`` stands for, seeded."""
    import optuna

    if name not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(SAMPLERS)}, but got sampler={name!r}.")
    return getattr(optuna.samplers, SAMPLERS[name])(seed=seed, **_OPTIONS.get(name, {}))


def keras_tuner_class(name: str) -> type:
    """The KerasTuner tuner class ``name`` stands for."""
    import keras_tuner

    if name not in KERAS_TUNER_SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(KERAS_TUNER_SAMPLERS)}, but got sampler={name!r}.")
    return getattr(keras_tuner, KERAS_TUNER_SAMPLERS[name])
