"""The two kinds of user error this package raises."""

from __future__ import annotations

import reprlib

__all__ = ["MtlError", "SpecError", "DataError", "shown"]

SHOWN_CHARS = 200  # the most of a value an error message echoes
_REPR = reprlib.Repr()  # Python 3.11 takes its limits as attributes only
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 8, 8, 8, 8
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = SHOWN_CHARS, SHOWN_CHARS, 60


def shown(value: object) -> str:
    """``repr(value)`` for an error message: nested and long values are cut short (``...``), on one line."""
    text = _REPR.repr(value)
    if "..." not in text:  # nothing was cut: the value is small, and its plain repr keeps a mapping's key order
        text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


class MtlError(ValueError):
    """Base class of every user-facing error raised by ``mtl_models``."""


class SpecError(MtlError):
    """A model spec is invalid. The message names the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"Invalid `{field}`: {rule}. Received: {field}={shown(value)}")


class DataError(MtlError):
    """A data set or data file is invalid. The message names the array and the problem."""
