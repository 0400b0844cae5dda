"""One mapping of the experiment file, read key by key so that unknown keys are refused.

Every problem raises :class:`ConfigError` naming the field as a dotted path (``budget.trials``),
the rule and the value.
"""

from __future__ import annotations

import math
from typing import Any

from search.errors import ConfigError

__all__ = ["Section"]


class Section:
    """Reads one mapping of the file, tracking which keys were used, to reject unknown ones."""

    def __init__(self, data: Any, path: str, *, required: bool = False):
        if data is None and not required:
            data = {}
        if not isinstance(data, dict):
            if not path:  # the file itself
                raise ConfigError("experiment", "must be a YAML mapping of sections (name, data, model, space, ...)",
                                  type(data).__name__)
            raise ConfigError(path, "must be a mapping", data)
        self.data, self.path, self.used = data, path, set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise ConfigError(self.field(key), "is required", None)
            return default
        return self.data[key]

    def number(self, key: str, default: Any, *, low: float, high: float | None = None, integer: bool = False,
               low_open: bool = False, allow_none: bool = False) -> Any:
        value = self.get(key, default)
        if value is None and allow_none:
            return None
        ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
        ok = ok and math.isfinite(value) and (value > low if low_open else value >= low)
        ok = ok and (high is None or value <= high)
        if not ok:
            kind = "an integer" if integer else "a number"
            bounds = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and <= {high}")
            raise ConfigError(self.field(key), f"must be {kind} {bounds}", value)
        return value

    def choice(self, key: str, default: Any, choices: tuple) -> Any:
        value = self.get(key, default)
        if value not in choices:
            raise ConfigError(self.field(key), f"must be one of {list(choices)}", value)
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used, key=str)
        if unknown:
            raise ConfigError(self.field(str(unknown[0])), f"is not a known key; known keys are {sorted(self.used)}",
                              self.data[unknown[0]])
