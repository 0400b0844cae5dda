"""The two kinds of user error this package raises."""

from __future__ import annotations

__all__ = ["MtlError", "SpecError", "DataError"]


class MtlError(ValueError):
    """Base class of every user-facing error raised by ``mtl_models``."""


class SpecError(MtlError):
    """A model spec is invalid. The message names the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"Invalid `{field}`: {rule}. Received: {field}={value!r}")


class DataError(MtlError):
    """A data set or data file is invalid. The message names the array and the problem."""
