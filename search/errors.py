"""Errors of the search package that mean "the user's input is wrong" (CLI exit status 2)."""

from __future__ import annotations

from mtl_models.errors import MtlError, shown

__all__ = ["REDACTED", "ConfigError", "SearchError", "redact", "without_password"]


class ConfigError(MtlError):
    """An experiment file or command-line value is invalid: names the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: object, *, show_value: bool = True) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        shown_field = field if field.isprintable() else repr(field)[1:-1]  # a key of the user's: "\n" as \\n
        message = f"Invalid `{shown_field}`: {rule}"
        super().__init__(f"{message}. Received: {shown_field}={shown(value)}" if show_value else message)


class SearchError(MtlError):
    """A search cannot start or go on for a reason the user can fix (message says how)."""


REDACTED = "***"


def _split(url: str) -> tuple[str, str, str]:
    """``(before, secret, after)`` with ``url == before + secret + after``: the password of ``scheme://user:pw@host``,
    or whatever may be one in a malformed URL (``scheme:user:pw@host``, ``scheme:pw@host``, ``pw@host``);
    ``secret`` is empty where there is none."""
    head, at, host = url.rpartition("@")
    if not at:
        return url, "", ""
    scheme, colon, userinfo = head.partition(":")
    if not colon:  # no scheme: not a URL, and all of it may be a secret
        return "", head, f"@{host}"
    slashes = "//" if userinfo.startswith("//") else ""
    user, has_password, password = userinfo[len(slashes):].partition(":")
    if has_password:
        return f"{scheme}:{slashes}{user}:", password, f"@{host}"
    return (url, "", "") if slashes else (f"{scheme}:", user, f"@{host}")  # //user@host holds no password


def redact(url: str) -> str:
    """``url`` with its password, if it holds one, replaced by ``***``: what may be printed or written to a file."""
    before, secret, after = _split(url)
    return f"{before}{REDACTED}{after}" if secret else url


def without_password(text: str, url: str) -> str:
    """``text`` (an error message that may quote ``url``) with the URL's password replaced by ``***``."""
    secret = _split(url)[1]
    return text.replace(secret, REDACTED) if secret else text
