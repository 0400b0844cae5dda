"""The experiment file: one YAML document, validated in full before anything starts.

``load_experiment(path)`` returns a frozen :class:`Experiment`; every problem raises
:class:`ConfigError` naming the field (as a dotted path), the rule and the value. The
file is read by :mod:`search.experiment.yaml_file`: nothing in it is executed, and it is bounded.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from search.errors import ConfigError, redact
from search.experiment.section import Section
from search.experiment.space import SearchSpace, parse_space
from search.experiment.yaml_file import read_yaml

__all__ = ["Budget", "DataConfig", "Experiment", "ObjectiveConfig", "Resources", "SchedulerConfig", "SearcherConfig",
           "ENGINES", "KERAS_TUNER_SAMPLERS", "SAMPLERS", "load_experiment", "parse_experiment"]

# The searcher names an experiment may use, each with the class that implements it (the engines build
# them by these names): Optuna samplers for engine ray-tune, KerasTuner tuners for engine keras-tuner.
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "qmc": "QMCSampler",
            "gp": "GPSampler", "nsga2": "NSGAIISampler"}
KERAS_TUNER_SAMPLERS = {"hyperband": "Hyperband", "bayesian": "BayesianOptimization", "random": "RandomSearch"}
ENGINES = ("ray-tune", "keras-tuner")
COOLDOWN, MAX_COOLDOWN = 0.2, 0.5  # budget.cooldown with a time limit (WSD schedules decay over the last 10-20 %)
LEAD, MAX_LEAD = 0.5, 0.8  # budget.lead with a time limit: the first trial alone for at most half of it
WEIGHT_AVERAGE = 0.99  # Keras' default EMA momentum; search/engines/averaging.py measured it on both built-in tasks
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # matched whole: `$` would pass a final newline
MAX_NAME, MAX_BATCH = 100, 2**20  # a folder name (with room for a second run's -2); samples per training step


@dataclass(frozen=True)
class DataConfig:
    """Which data set, its loader options, and the train/val/test split.

    A relative ``options.path`` is resolved against the experiment file when it is read, so a
    config travels with its data and every later reader sees one absolute path.
    """

    dataset: str
    options: Mapping[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.2
    test_fraction: float = 0.15
    split_seed: int = 0
    stratify: str | None = None


@dataclass(frozen=True)
class ObjectiveConfig:
    """Single: a weighted mean of task scores, or one ``task.metric``; multi: a list of them."""

    weights: Mapping[str, float] = field(default_factory=dict)  # empty: every task weighs 1
    metric: str | None = None  # "task.metric" picks one task metric as the objective
    metrics: tuple[str, ...] = ()  # multi-objective

    @property
    def multi(self) -> bool:
        return bool(self.metrics)


@dataclass(frozen=True)
class Budget:
    """When the search ends. With a time limit, ``trials`` and ``max_epochs`` are optional caps (None: none):
    trials keep coming until the time is up, and a trial trains for as long as the scheduler keeps it.
    Without one, both are needed (defaults 12 trials, 10 epochs). ``cooldown``: the last fraction of the time
    limit, in which no trial starts and the leaders' learning rates anneal (search/engines/cooldown.py);
    ``lead``: the most of it the first trial may train alone while it learns fast (search/engines/lead.py)."""

    trials: int | None = 12
    max_epochs: int | None = 10
    time_limit_s: float | None = None
    cooldown: float = 0.0
    lead: float = 0.0

    def describe(self) -> str:
        """The budget in words, for the line a search starts with."""
        trials = f"{self.trials} trial{'s' * (self.trials != 1)}" if self.trials else "trials until the time limit"
        epochs = f"up to {self.max_epochs} epochs each" if self.max_epochs else "each trained for as long as it leads"
        limit = f" within {self.time_limit_s:g} s" if self.time_limit_s and self.trials else ""
        lead = f"; the first trial alone while it learns fast (at most {self.lead:.0%})" if self.lead else ""
        cooldown = f"; the last {self.cooldown:.0%} for the leaders alone" if self.cooldown else ""
        return f"{trials}{limit}, {epochs}{lead}{cooldown}"


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class SearcherConfig:
    """The sampler by name, and configurations to try first (e.g. a known good one).

    With ``engine: ray-tune`` an Optuna sampler (tpe by default); with ``engine: keras-tuner``
    one of KerasTuner's: hyperband (default), bayesian, random.
    """

    sampler: str = "tpe"
    # Keyword arguments of the Optuna sampler's constructor (engine ray-tune), e.g. {n_startup_trials: 3}.
    options: Mapping[str, Any] = field(default_factory=dict)
    initial_points: tuple[Mapping[str, Any], ...] = ()
    # Without initial points, the experiment's fixed model is tried first (engine ray-tune): the search
    # starts from the model the user would have trained without one.
    fixed_model_first: bool = True


@dataclass(frozen=True)
class SchedulerConfig:
    """Successive halving for single-objective searches (multi-objective ones run FIFO).

    ``adaptive`` (default): the first cut moves to a later rung where early rankings fail to predict
    later ones (search.engines.rungs); off, every rung from ``grace_period`` on cuts, as ASHA does.
    """

    grace_period: int = 2  # epochs every trial gets before it can be stopped
    reduction_factor: float = 3.0
    adaptive: bool = True


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file."""

    name: str
    data: DataConfig
    model: Mapping[str, Any]  # the fixed part of the model spec; heads keyed by task name
    space: SearchSpace
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    concurrency: int = 2
    seed: int = 0
    batch_size: int = 32
    weight_average: float = WEIGHT_AVERAGE  # momentum of the weights' moving average a run is judged by; 0: off
    searcher: SearcherConfig = field(default_factory=SearcherConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    study_storage: str | None = None  # an Optuna RDB URL; default: SQLite in the run directory
    engine: str = "ray-tune"  # or "keras-tuner": one process, no Ray
    source: str | None = None  # the file it came from
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as parsed, for the run copy

    def portable(self) -> dict[str, Any]:
        """The experiment as parsed, with its data path absolute: the copy a run directory keeps."""
        raw = copy.deepcopy(dict(self.raw))
        if isinstance(raw.get("data"), dict) and "options" in raw["data"]:
            raw["data"]["options"] = copy.deepcopy(dict(self.data.options))
        return raw


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    path = Path(path)
    data = read_yaml(path)
    return parse_experiment(data, source=str(path))


def parse_experiment(data: Any, *, source: str | None = None) -> Experiment:
    """Validate already-parsed YAML data into an :class:`Experiment`."""
    top = Section(data, "", required=True)
    name = top.get("name", required=True)
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise ConfigError("name", f"must be 1 to {MAX_NAME} letters, digits, '_', '-' or '.', starting with one", name)
    model = top.get("model", {})
    if not isinstance(model, dict):
        raise ConfigError("model", "must be a mapping", model)
    space = parse_space(top.get("space", {}))
    engine = top.choice("engine", "ray-tune", ENGINES)
    experiment = Experiment(
        name=name, data=_data(top.get("data", required=True), source), model=model, space=space,
        objective=_objective(top.get("objective")),
        budget=_budget(top.get("budget")),
        resources=_resources(top.get("resources")),
        concurrency=top.number("concurrency", 2, low=1, integer=True),
        seed=top.number("seed", 0, low=0, high=2**32 - 1, integer=True),  # NumPy's and Ray's seeds are 32-bit
        batch_size=top.number("batch_size", 32, low=1, high=MAX_BATCH, integer=True),
        weight_average=top.number("weight_average", WEIGHT_AVERAGE, low=0, high=0.9999),
        searcher=_searcher(top.get("searcher"), space, engine),
        scheduler=_scheduler(top.get("scheduler")),
        study_storage=_storage(top.get("study_storage")),
        engine=engine,
        source=source,
        raw=data,
    )
    top.done()
    if engine == "keras-tuner":
        if experiment.searcher.initial_points:
            raise ConfigError("searcher.initial_points", "work with engine ray-tune only", "engine: keras-tuner")
        if experiment.objective.multi:
            raise ConfigError("objective.metrics", "a multi-objective search needs engine ray-tune", "engine: keras-tuner")
        if experiment.budget.max_epochs is None:
            raise ConfigError("budget.max_epochs", "is needed with engine keras-tuner (its trials train to a fixed "
                              "epoch count); give one, or use engine ray-tune", None)
    return experiment


def _searcher(raw: Any, space: SearchSpace, engine: str) -> SearcherConfig:
    section = Section(raw, "searcher")
    if engine == "keras-tuner":
        sampler = section.choice("sampler", "hyperband", tuple(KERAS_TUNER_SAMPLERS))
    else:
        sampler = section.choice("sampler", "tpe", tuple(SAMPLERS))
    if sampler == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError("searcher.sampler", "gp needs PyTorch, which is not installed (`pip install torch`, the CPU "
                          "build is enough); or choose tpe, which needs nothing more", sampler)
    options = _sampler_options(section.get("options", {}), engine)
    points = section.get("initial_points", [])
    fixed_first = section.get("fixed_model_first", True)
    section.done()
    if not isinstance(fixed_first, bool):
        raise ConfigError("searcher.fixed_model_first", "must be true or false", fixed_first)
    if not isinstance(points, list):
        raise ConfigError("searcher.initial_points", "must be a list of {parameter: value} mappings", points)
    params = {p.name: p for p in space}
    for i, point in enumerate(points):
        where = f"searcher.initial_points[{i}]"
        if not isinstance(point, dict):
            raise ConfigError(where, "must be a mapping of search parameters to values", point)
        for name, value in point.items():
            if name not in params:
                raise ConfigError(where, f"must name parameters of the space {sorted(params)}", name)
            if not params[name].holds(value):
                raise ConfigError(f"{where}.{name}", "must be a value of that parameter's domain", value)
    return SearcherConfig(sampler=sampler, options=options, initial_points=tuple(points), fixed_model_first=fixed_first)


def _sampler_options(options: Any, engine: str) -> dict[str, Any]:
    """``searcher.options``; the sampler checks them before Ray starts (search.engines.samplers.check_options)."""
    if not isinstance(options, dict):
        raise ConfigError("searcher.options", "must be a mapping of the sampler's keyword arguments", options)
    if options and engine == "keras-tuner":
        raise ConfigError("searcher.options", "are passed to an Optuna sampler, which engine keras-tuner does not use; "
                          "remove them or use engine ray-tune", options)
    return dict(options)


def _data(raw: Any, source: str | None) -> DataConfig:
    section = Section(raw, "data", required=True)
    dataset = section.get("dataset", required=True)
    if not isinstance(dataset, str):
        raise ConfigError("data.dataset", "must be a data set name", dataset)
    options = section.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError("data.options", "must be a mapping of loader options", options)
    if isinstance(path := options.get("path"), str) and "\0" in path:  # no file system takes it
        raise ConfigError("data.options.path", "must not contain a NUL character", path)
    if isinstance(path, str) and source and not Path(path).is_absolute():
        options = {**options, "path": str((Path(source).parent / path).resolve())}
    split = Section(section.get("split"), "data.split")
    val = split.number("val_fraction", 0.2, low=0, high=1, low_open=True)
    test = split.number("test_fraction", 0.15, low=0, high=1)
    if val + test >= 1:
        raise ConfigError("data.split.test_fraction", f"plus val_fraction ({val}) must be < 1", test)
    config = DataConfig(
        dataset=dataset,
        options=options,
        val_fraction=float(val),
        test_fraction=float(test),
        split_seed=split.number("seed", 0, low=0, integer=True),
        stratify=split.get("stratify"),
    )
    split.done()
    section.done()
    return config


def _objective(raw: Any) -> ObjectiveConfig:
    section = Section(raw, "objective")
    weights = section.get("weights", {})
    metric = section.get("metric")
    metrics = section.get("metrics", [])
    section.done()
    if not isinstance(weights, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v) for v in weights.values()
    ):
        raise ConfigError("objective.weights", "must map task names to numbers >= 0", weights)
    if weights and sum(weights.values()) <= 0:
        raise ConfigError("objective.weights", "must hold at least one weight > 0", weights)
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise ConfigError("objective.metric", "must be a 'task' or 'task.metric' name", metric)
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise ConfigError("objective.metrics", "must be a list of 'task.metric' names", metrics)
    if len(metrics) == 1:
        raise ConfigError("objective.metrics", "must name at least two metrics (use objective.metric for one)", metrics)
    if sum(bool(x) for x in (weights, metric, metrics)) > 1:
        raise ConfigError("objective", "must give only one of weights, metric, metrics", raw)
    return ObjectiveConfig(weights={str(k): float(v) for k, v in weights.items()}, metric=metric,
                           metrics=tuple(metrics))


def _budget(raw: Any) -> Budget:
    section = Section(raw, "budget")
    time_limit_s = section.number("time_limit_s", None, low=0, low_open=True, allow_none=True)
    capped = time_limit_s is None  # without a time limit, trials and epochs must end the search
    budget = Budget(
        trials=section.number("trials", 12 if capped else None, low=1, integer=True, allow_none=not capped),
        max_epochs=section.number("max_epochs", 10 if capped else None, low=1, integer=True, allow_none=not capped),
        time_limit_s=time_limit_s,
        cooldown=section.number("cooldown", 0.0 if capped else COOLDOWN, low=0, high=MAX_COOLDOWN),
        lead=section.number("lead", 0.0 if capped else LEAD, low=0, high=MAX_LEAD),
    )
    for key in ("cooldown", "lead"):  # fractions of the time limit
        if capped and getattr(budget, key):
            raise ConfigError(section.field(key), "needs budget.time_limit_s", getattr(budget, key))
    section.done()
    return budget


def _resources(raw: Any) -> Resources:
    section = Section(raw, "resources")
    resources = Resources(
        cpus=float(section.number("cpus", 1, low=0, low_open=True)),
        gpus=float(section.number("gpus", 0, low=0)),
    )
    section.done()
    if resources.gpus > 1 and resources.gpus != int(resources.gpus):
        raise ConfigError("resources.gpus", "must be a fraction <= 1 or a whole number of GPUs", resources.gpus)
    return resources


def _scheduler(raw: Any) -> SchedulerConfig:
    section = Section(raw, "scheduler")
    scheduler = SchedulerConfig(
        grace_period=section.number("grace_period", 2, low=1, integer=True),
        # 2-4 in practice; near 1 a rung at nearly every epoch (1.00000001 built 10^8), past 100 only the first kept
        reduction_factor=float(section.number("reduction_factor", 3, low=1.5, high=100)),
        adaptive=section.get("adaptive", True),
    )
    if not isinstance(scheduler.adaptive, bool):
        raise ConfigError("scheduler.adaptive", "must be true or false", scheduler.adaptive)
    section.done()
    return scheduler


def _storage(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or "://" not in raw:
        raise ConfigError("study_storage", "must be an RDB URL such as postgresql://host/db or sqlite:///path.db",
                          redact(raw) if isinstance(raw, str) else raw)
    return raw
