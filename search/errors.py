"""Errors of the search package that mean "the user's input is wrong" (CLI exit status 2)."""

from __future__ import annotations

from mtl_models.errors import MtlError

__all__ = ["ConfigError", "SearchError"]


class ConfigError(MtlError):
    """An experiment file or command-line value is invalid: names the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: object, *, show_value: bool = True) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        message = f"Invalid `{field}`: {rule}"
        super().__init__(f"{message}. Received: {field}={value!r}" if show_value else message)


class SearchError(MtlError):
    """A search cannot start or go on for a reason the user can fix (message says how)."""
