"""The one declaration of the search space, consumed by every engine.

A space maps dotted spec keys (``backbone.filters``, ``heads.B.transfer_from``,
``optimizer.learning_rate``, ``batch_size``) to a domain: ``{choice: [...]}``,
``{int: [low, high]}`` or ``{float: [low, high]}``, with optional ``log``, ``step`` and
``when`` (sample this parameter only where other parameters took given values).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from mtl_models.spec import ModelSpec
from search.errors import ConfigError

__all__ = ["MODEL_KEYS", "Param", "SPACE_ROOTS", "SearchSpace", "parse_space"]

# The keys of an experiment's `model` section are the spec's own fields (its inputs come from the data).
MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelSpec) if f.name != "inputs")
# Top-level keys a space may address: the model's, but its name and freeze flag, and the batch size.
# Deeper keys are checked against the spec's fields (prepared.py).
SPACE_ROOTS = (*(key for key in MODEL_KEYS if key not in ("name", "freeze_backbone")), "batch_size")
_PRIMITIVE = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Param:
    """One searched parameter: its key, domain, and the condition under which it is sampled."""

    name: str
    kind: str  # "choice" | "int" | "float"
    values: tuple = ()  # choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    when: Mapping[str, tuple] = field(default_factory=dict)  # param -> accepted values

    def encoded_choices(self) -> list:
        """Choices as Optuna accepts them: primitives as they are, anything else as JSON text."""
        return [v if isinstance(v, _PRIMITIVE) else json.dumps(v) for v in self.values]

    def decode(self, value: Any) -> Any:
        """The user's value for a sampled (possibly JSON-encoded) value."""
        if self.kind == "choice" and isinstance(value, str) and value not in self.values:
            return json.loads(value)
        return value

    def applies(self, sampled: Mapping[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values sampled before it."""
        return all(name in sampled and sampled[name] in accepted for name, accepted in self.when.items())

    def holds(self, value: Any) -> bool:
        """Whether ``value`` lies in this parameter's domain (a choice of the same type, or within the range)."""
        if self.kind == "choice":
            return any(value == v and type(value) is type(v) for v in self.values)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low <= value <= self.high

    def corners(self) -> list:
        """Values that bound the domain: each choice, or low and high."""
        if self.kind == "choice":
            return list(self.values)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]


@dataclass(frozen=True)
class SearchSpace:
    """The ordered parameters of a search (conditions refer only to earlier parameters)."""

    params: tuple[Param, ...] = ()

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def sample_optuna(self, trial) -> dict[str, Any]:
        """Define-by-run sampling for Optuna: returns the sampled values, decoded.

        Conditional parameters are suggested only where they apply, so the study holds
        exactly the parameters each trial used.
        """
        sampled: dict[str, Any] = {}
        for param in self.params:
            if not param.applies(sampled):
                continue
            if param.kind == "choice":
                raw = trial.suggest_categorical(param.name, param.encoded_choices())
            elif param.kind == "int":
                raw = trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log,
                                        step=int(param.step or 1))
            else:
                raw = trial.suggest_float(param.name, param.low, param.high, log=param.log, step=param.step)
            sampled[param.name] = param.decode(raw)
        return sampled

    def sample_keras_tuner(self, hp) -> dict[str, Any]:
        """The same space for KerasTuner: one ``hp`` per parameter, conditions as conditional scopes.

        Returns the values sampled for this trial, decoded; a parameter whose condition does
        not hold is left out, as with Optuna.
        """
        sampled: dict[str, Any] = {}
        for param in self.params:
            with contextlib.ExitStack() as scopes:
                for other, accepted in param.when.items():
                    scopes.enter_context(hp.conditional_scope(other, [_kt_value(self.param(other), v) for v in accepted]))
                if param.kind == "choice":
                    raw = hp.Choice(param.name, [_kt_value(param, v) for v in param.values])
                elif param.kind == "int":
                    # On a log scale KerasTuner reads step as a ratio (> 1); None samples every integer.
                    raw = hp.Int(param.name, int(param.low), int(param.high),
                                 step=None if param.log else int(param.step or 1),
                                 sampling="log" if param.log else "linear")
                else:
                    raw = hp.Float(param.name, param.low, param.high, step=param.step,
                                   sampling="log" if param.log else "linear")
            if param.applies(sampled):
                sampled[param.name] = _kt_decode(param, raw) if param.kind == "choice" else raw
        return sampled

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def encode_point(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """A configuration as Optuna stores it (non-primitive choices as JSON text), for enqueueing."""
        params = {p.name: p for p in self.params}
        return {k: v if isinstance(v, _PRIMITIVE) or params[k].kind != "choice" else json.dumps(v)
                for k, v in point.items()}

    def ranges(self) -> dict[str, tuple[float, float, bool]]:
        """Numeric parameters' (low, high, log), for flagging best values at a range's edge."""
        return {p.name: (p.low, p.high, p.log) for p in self.params if p.kind != "choice"}


def _kt_value(param: Param, value: Any) -> Any:
    """A choice as KerasTuner takes it: one type per choice list, so mixed or non-primitive values go as JSON."""
    kinds = {type(v) for v in param.values}
    if len(kinds) == 1 and kinds <= {str, int, float, bool}:
        return value
    return json.dumps(value)


def _kt_decode(param: Param, raw: Any) -> Any:
    """The user's value for a KerasTuner choice (which may hand a bool back as 0 or 1)."""
    if _kt_value(param, param.values[0]) is param.values[0]:  # passed as they are
        return next((v for v in param.values if v == raw), raw)
    return json.loads(raw)


def parse_space(raw: Any) -> SearchSpace:
    """Validate the ``space`` section's shape (keys are checked against the spec later)."""
    if raw is None:
        return SearchSpace()
    if not isinstance(raw, dict):
        raise ConfigError("space", "must be a mapping of spec keys to domains", raw)
    params: list[Param] = []
    for name, domain in raw.items():
        params.append(_param(name, domain, seen={p.name: p for p in params}))
    return SearchSpace(tuple(params))


def _param(name: Any, domain: Any, *, seen: Mapping[str, Param]) -> Param:
    where = f"space.{name}"
    if not isinstance(name, str) or name.split(".")[0] not in SPACE_ROOTS:
        raise ConfigError(where, f"must be a spec key starting with one of {list(SPACE_ROOTS)}", name)
    if not isinstance(domain, dict):
        raise ConfigError(where, "must be a mapping such as {choice: [...]}, {int: [low, high]} or {float: [low, high]}",
                          domain)
    kinds = [k for k in ("choice", "int", "float") if k in domain]
    if len(kinds) != 1:
        raise ConfigError(where, "must give exactly one of choice, int, float", domain)
    unknown = sorted(set(domain) - {kinds[0], "log", "step", "when"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", "is not a known key; known keys are [choice|int|float, log, step, when]",
                          domain[unknown[0]])
    kind = kinds[0]
    log, step = domain.get("log", False), domain.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log", "must be true or false", log)
    when = _when(where, domain.get("when", {}), seen)
    if kind == "choice":
        values = domain["choice"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.choice", "must be a non-empty list", values)
        if log or step is not None:
            raise ConfigError(where, "log and step apply to int and float ranges, not to choice", domain)
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"{where}.choice", "must not repeat a value", values)
        return Param(name, "choice", values=tuple(values), when=when)
    bounds = domain[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{where}.{kind}", "must be [low, high]", bounds)
    low, high = (_number(f"{where}.{kind}", b, integer=kind == "int") for b in bounds)
    if not low < high:
        raise ConfigError(f"{where}.{kind}", "`low < high` must hold (for a fixed value, set it under `model` "
                          "and drop the search key)", bounds)
    if log and low <= 0:
        raise ConfigError(f"{where}.{kind}", "must have low > 0 on a log scale", bounds)
    if step is not None:
        step = _number(f"{where}.step", step, integer=kind == "int")
        if step <= 0 or log:
            raise ConfigError(f"{where}.step", "must be > 0, and cannot be combined with log", step)
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _when(where: str, raw: Any, seen: Mapping[str, Param]) -> dict[str, tuple]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.when", "must map earlier parameters to a value or a list of values", raw)
    when = {}
    for other, accepted in raw.items():
        if other not in seen:
            raise ConfigError(f"{where}.when", f"must name a parameter declared above it ({sorted(seen)})", other)
        accepted = tuple(accepted) if isinstance(accepted, list) else (accepted,)
        possible = seen[other].values if seen[other].kind == "choice" else None
        for value in accepted:
            if possible is not None and value not in possible:
                raise ConfigError(f"{where}.when.{other}", f"must be among that parameter's choices {list(possible)}",
                                  value)
        when[other] = accepted
    return when


def _number(where: str, value: Any, *, integer: bool) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(where, "must hold numbers", value) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, "must hold finite numbers", value)
    if integer:
        if value != int(value):
            raise ConfigError(where, "must hold integers", value)
        return int(value)
    return float(value)
