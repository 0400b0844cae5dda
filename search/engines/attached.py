"""What a search's driver shares with the objects Ray Tune holds for it.

The searcher and the scheduler are pickled with Ray Tune's state and unpickled by a resumed search, so
they cannot hold the run's :class:`~search.engines.cooldown.Cooldown` or :class:`~search.engines.lead.Lead`
themselves: they keep the run's key (its resolved directory) and ask :func:`attached` for the part of the
``fit`` or ``restore`` that runs now in this process.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = ["attach", "attached"]

_ATTACHED: dict[str, dict[str, Any]] = {}  # run directory -> its parts, while its fit or restore runs


@contextlib.contextmanager
def attach(key: str, **parts: Any) -> Iterator[dict[str, Any]]:
    """Make ``parts`` (name -> object, None for none) what the run ``key`` sees until the block ends."""
    _ATTACHED[key] = parts
    try:
        yield parts
    finally:
        _ATTACHED.pop(key, None)


def attached(key: str | None, part: str) -> Any:
    """The run ``key``'s ``part`` in this process (None: none, or no such run)."""
    return _ATTACHED.get(key, {}).get(part) if key else None
