"""Reading an experiment file as YAML, bounded: a file is small, repeats no key, and its aliases cannot multiply it.

``yaml.safe_load`` executes nothing, but it lets a 1-KB file of nested aliases (``&a`` / ``*a``) stand for billions
of values, which every later reader of the data (and an error message echoing it) would walk; and it keeps the last
of two equal keys without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from search.errors import ConfigError

__all__ = ["MAX_FILE_BYTES", "MAX_VALUES", "read_yaml"]

MAX_FILE_BYTES = 1 << 20  # an experiment file is a page or two
MAX_VALUES = 100_000  # mappings, lists and scalars after aliases are expanded; a real experiment has a few hundred
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (a ``<<`` merge may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                if key.value in seen:
                    raise ConfigError(key.value, f"must be given once in its mapping (again at line "
                                      f"{key.start_mark.line + 1}; YAML would keep the last silently)", key.value,
                                      show_value=False)
                seen.add(key.value)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML data of the experiment file ``path``; a :class:`ConfigError` for anything it must not be."""
    if not path.is_file():
        raise ConfigError("experiment", "must be an existing YAML file", str(path))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError("experiment", f"must be at most {MAX_FILE_BYTES:,} bytes (this one has {size:,})", str(path))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader: nothing is executed
    except UnicodeDecodeError:
        raise ConfigError("experiment", "must be a UTF-8 text file (this one is binary)", str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("experiment", f"must be valid YAML ({getattr(exc, 'problem', exc)}{where})",
                          str(path)) from None
    except RecursionError:
        raise ConfigError("experiment", "must not nest this deeply", str(path)) from None
    if _expands_past(data, MAX_VALUES):
        raise ConfigError("experiment", f"must not expand past {MAX_VALUES:,} values once its aliases (*name) are "
                          "replaced by what they stand for", str(path))
    if data is None:
        raise ConfigError("experiment", "must not be empty", str(path))
    return data


def _expands_past(data: Any, limit: int) -> bool:
    """Whether walking ``data``, a shared part once for every place it appears, visits more than ``limit`` values."""
    stack, visited = [data], 0
    while stack:
        value = stack.pop()
        visited += 1
        if visited > limit:
            return True
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False
