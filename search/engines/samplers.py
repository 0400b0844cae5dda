"""Searchers by the names an experiment file uses: Optuna samplers (engine ray-tune) and KerasTuner tuners
(engine keras-tuner). The names and the classes they stand for are written once, in
:mod:`search.experiment.config`; this module only builds them.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from search.errors import ConfigError
from search.experiment.config import KERAS_TUNER_SAMPLERS, SAMPLERS, SearcherConfig
from search.experiment.space import SearchSpace

__all__ = ["check_options", "keras_tuner_class", "make_sampler", "sampler_parameters", "try_sampler"]

# Without warn_independent_sampling, CMA-ES and QMC warn once per conditional parameter that they sample it
# independently. QMC's sequence ignores the seed unless it is scrambled: every seed would search alike.
_OPTIONS = {"cmaes": {"warn_independent_sampling": False},
            "qmc": {"warn_independent_sampling": False, "scramble": True}}


# Keyword arguments that take Python objects (callables, other samplers, strategies), which a YAML file cannot
# give, and the seed, which is the experiment's.
_NOT_FROM_YAML = {"seed", "gamma", "weights", "independent_sampler", "constraints_func", "crossover", "mutation",
                  "source_trials", "elite_population_selection_strategy", "child_generation_strategy",
                  "after_trial_strategy"}


def make_sampler(name: str, seed: int, options: Mapping[str, Any] | None = None) -> Any:
    """The Optuna sampler ``name`` stands for, seeded; ``options`` (``searcher.options``) are its keyword arguments."""
    import optuna

    if name not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(SAMPLERS)}, but got sampler={name!r}.")
    with warnings.catch_warnings():  # options such as multivariate are marked experimental; the user chose them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return getattr(optuna.samplers, SAMPLERS[name])(seed=seed, **{**_OPTIONS.get(name, {}), **(options or {})})


def sampler_parameters(name: str) -> dict[str, str | None]:
    """The keyword arguments of sampler ``name`` that ``searcher.options`` may set, each with its type where it is
    one of bool, int, float and str (from Optuna's annotations: ``bool | None`` is bool), else None."""
    import optuna

    signature = inspect.signature(getattr(optuna.samplers, SAMPLERS[name]))
    kinds = {}
    for p in signature.parameters.values():
        if p.name not in _NOT_FROM_YAML:
            types = {t.strip() for t in str(p.annotation).split("|")} - {"None"}
            kinds[p.name] = types.pop() if len(types) == 1 and types <= {"bool", "int", "float", "str"} else None
    return kinds


_KINDS = {"bool": (bool, "true or false"), "int": (int, "an integer"), "float": ((int, float), "a number"),
          "str": (str, "a string")}


def check_options(searcher: SearcherConfig, space: SearchSpace) -> None:
    """Raise ConfigError unless the sampler takes ``searcher.options`` and samples ``space`` with them: checked
    by name and type, then by sampling a few trials, before Ray starts."""
    if not searcher.options:
        return
    sampler, options = searcher.sampler, searcher.options
    known = sampler_parameters(sampler)
    for name, value in options.items():
        if name not in known:
            raise ConfigError(f"searcher.options.{name}", f"must be a keyword argument of Optuna's {SAMPLERS[sampler]} "
                              f"that a YAML value can give ({sorted(known)})", value)
        kind = _KINDS.get(known[name])  # Optuna checks few of them before it samples
        if kind and not (isinstance(value, kind[0]) and (kind[0] is bool or not isinstance(value, bool))):
            raise ConfigError(f"searcher.options.{name}", f"must be {kind[1]}", value)
    try:
        try_sampler(sampler, options, space.sample_optuna)
    except Exception as error:  # noqa: BLE001 - whatever Optuna raises, the user's options caused it
        raise ConfigError("searcher.options", f"were refused by Optuna's {SAMPLERS[sampler]} "
                          f"({type(error).__name__}: {error})", dict(options)) from None


def try_sampler(name: str, options: Mapping[str, Any], sample: Callable[[Any], Any]) -> None:
    """Sample a few trials past the start-up ones with ``sample`` (an Optuna define-by-run function): some options
    fail only when the sampler samples. Raises whatever Optuna raises."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(sampler=make_sampler(name, seed=0, options=options), direction="maximize")
        for number in range(min(options.get("n_startup_trials", 10), 20) + 3):
            trial = study.ask()
            sample(trial)
            study.tell(trial, float(number % 3))
    finally:
        optuna.logging.set_verbosity(verbosity)


def keras_tuner_class(name: str) -> type:
    """The KerasTuner tuner class ``name`` stands for."""
    import keras_tuner

    if name not in KERAS_TUNER_SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(KERAS_TUNER_SAMPLERS)}, but got sampler={name!r}.")
    return getattr(keras_tuner, KERAS_TUNER_SAMPLERS[name])
