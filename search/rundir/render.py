"""Text views of a leaderboard frame: the markdown file, the terminal table and the edge-of-range note.

Works on the frame :func:`search.rundir.leaderboard.build_leaderboard` returns; the frame's ``attrs[ROLES_KEY]`` says
which columns are sampled params, the only ones the terminal view may hide.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["ROLES_KEY", "edge_note", "format_cell", "format_number", "render_markdown", "render_table"]

ROLES_KEY = "leaderboard_columns"
_KEYS = ("rank", "trial")  # repeated in every block of a wrapped table
_NOT_SHOWN = ("at_edge",)  # summarised below the markdown table instead
# Status text (failure reasons) is shown up to _STATUS_CAP characters, cut down to _STATUS_SOFT before any
# param is hidden, then to _STATUS_MIN before the table wraps: "failed: ..." always keeps a few words.
_STATUS_CAP, _STATUS_SOFT, _STATUS_MIN = 40, 24, 12
_GAP = "  "
_ELLIPSIS = "…"


def format_number(value: float) -> str:
    """A number in at most 4 significant digits; integers as they are."""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):.4g}"


def format_cell(column: str, value: Any) -> str:
    """The text of one cell: empty for missing values, 4 significant digits, ``wall_s`` to 1 decimal."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_na(value):
        return ""
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real):
        return " ".join(str(value).split())  # one line: failure reasons may hold newlines
    if column == "wall_s" and not isinstance(value, numbers.Integral):
        return f"{float(value):.1f}"
    return format_number(value)


def _is_na(value: Any) -> bool:
    return value is pd.NA or value is pd.NaT


def _is_numeric(series) -> bool:
    """Whether a column holds numbers (right-aligned); an all-empty column goes by its dtype."""
    present = [v for v in series.tolist() if format_cell("", v) != ""]
    if not present:
        return pd.api.types.is_numeric_dtype(series)
    return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)


def _counts_line(statuses: Sequence[str]) -> str:
    kinds = [str(s).split(":", 1)[0] for s in statuses]
    parts = [f"{kinds.count(k)} {k}" for k in ("completed", "stopped early", "failed", "running")]
    for extra in ("out of time", "interrupted", "pending"):
        if kinds.count(extra):
            parts.append(f"{kinds.count(extra)} {extra}")
    return f"{len(kinds)} trial{'' if len(kinds) == 1 else 's'}: " + ", ".join(parts)


def edge_note(frame) -> str | None:
    """The line warning that the best trials' params sit at the edge of their search range; None if none do."""
    if "at_edge" not in frame.columns:
        return None
    items: list[str] = []
    for text in frame["at_edge"].tolist():
        for item in str(text).split("; ") if isinstance(text, str) else ():
            if item and item not in items:
                items.append(item)
    if not items:
        return None
    return f"Best parameters at the edge of their search range: {'; '.join(items)} — consider widening the range."


def render_markdown(frame, *, title: str, notes: Sequence[str] = ()) -> str:
    """The text of ``leaderboard.md``: title, trial counts, a GitHub table, the edge note if any, then ``notes``."""
    columns = [c for c in frame.columns if c not in _NOT_SHOWN]
    cells = {c: [format_cell(c, v).replace("|", "\\|") for v in frame[c].tolist()] for c in columns}
    lines = [f"# Leaderboard: {title}", ""]
    if "status" in frame.columns:
        lines += [_counts_line(frame["status"].tolist()), ""]
    lines.append("| " + " | ".join(str(c) for c in columns) + " |")
    lines.append("| " + " | ".join("---:" if _is_numeric(frame[c]) else "---" for c in columns) + " |")
    lines += ["| " + " | ".join(cells[c][i] for c in columns) + " |" for i in range(len(frame))]
    note = edge_note(frame)
    if note:
        lines += ["", note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _param_columns(frame, given: Sequence[str] | None) -> list[str]:
    if given is None:
        roles = frame.attrs.get(ROLES_KEY)
        # A frame read back from CSV has no roles; project params are dotted ("backbone.filters").
        given = roles["params"] if roles else [c for c in frame.columns if "." in str(c)]
    return [c for c in frame.columns if c in set(given)]


def _abbreviations(params: Sequence[str], others: Sequence[str]) -> dict[str, str]:
    """Each param name cut to its shortest dotted tail that still tells it apart from every other column."""
    names = [str(p) for p in params]
    short = {}
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            clashes = [n for n in names if n != name and (n == tail or n.endswith("." + tail))]
            if not clashes and tail not in others:
                break
        short[name] = tail
    return short


def _clip(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + _ELLIPSIS if width > 0 else ""


class _Table:
    """Column texts, headers and alignments, with the width each column needs."""

    def __init__(self, frame, columns: Sequence[str]):
        self.headers = {c: str(c) for c in columns}
        self.cells = {c: [format_cell(c, v) for v in frame[c].tolist()] for c in columns}
        self.full = dict(self.cells)  # so that a column cut once can be cut again to another width
        self.right = {c: _is_numeric(frame[c]) for c in columns}
        self.rows = len(frame)

    def width_of(self, column: str) -> int:
        return max([len(self.headers[column])] + [len(t) for t in self.cells[column]])

    def total(self, columns: Sequence[str]) -> int:
        return sum(self.width_of(c) for c in columns) + len(_GAP) * max(len(columns) - 1, 0)

    def clip(self, column: str, width: int) -> None:
        self.headers[column] = _clip(self.headers[column], width)
        self.cells[column] = [_clip(t, width) for t in self.full[column]]

    def lines(self, columns: Sequence[str]) -> list[str]:
        widths = {c: self.width_of(c) for c in columns}

        def line(texts: dict[str, str]) -> str:
            cells = [texts[c].rjust(widths[c]) if self.right[c] else texts[c].ljust(widths[c]) for c in columns]
            return _GAP.join(cells).rstrip()

        out = [line(self.headers), _GAP.join("-" * widths[c] for c in columns)]
        return out + [line({c: self.cells[c][i] for c in columns}) for i in range(self.rows)]


def render_table(frame, *, width: int = 100, param_columns: Sequence[str] | None = None) -> str:
    """The leaderboard as a plain-text table whose lines fit in ``width`` characters, for the terminal.

    Metric columns always show; status text is cut, then param columns are hidden from the right (a last
    line says how many); when the metric columns alone are too wide the table wraps into blocks of columns,
    each repeating rank and trial. ``param_columns`` overrides the params named in the frame's attrs.
    """
    if width < 30:
        raise ValueError(f"`width >= 30` must hold, but got width={width!r}.")
    # epochs and wall_s go first when room runs out: they describe the run, not the result.
    params = _param_columns(frame, param_columns) + [c for c in ("epochs", "wall_s") if c in frame.columns]
    columns = [c for c in frame.columns if c not in _NOT_SHOWN]
    core = [c for c in columns if c not in params]
    table = _Table(frame, columns)
    shown = list(params)
    if table.total(columns) > width and params:
        for name, short in _abbreviations(params, [str(c) for c in core]).items():
            table.headers[name] = short
    # Params are hidden only once the status text would have to be cut below _STATUS_SOFT for them.
    floor = min(_STATUS_SOFT, table.width_of("status")) if "status" in columns else 0
    while shown and _status_room(table, [c for c in columns if c in core or c in shown], width) < floor:
        shown.pop()
    visible = [c for c in columns if c in core or c in shown]
    if "status" in visible:
        table.clip("status", min(_STATUS_CAP, max(_status_room(table, visible, width), _STATUS_MIN)))
    if table.total(visible) <= width:
        lines = table.lines(visible)
    else:
        lines = _blocks(table, visible, width)
    hidden = len(params) - len(shown)
    if hidden:
        note = f"({hidden} column{'' if hidden == 1 else 's'} hidden; see leaderboard.csv)"
        lines.append(_clip(note, width))
    return "\n".join(_clip(line, width) for line in lines)


def _status_room(table: _Table, columns: Sequence[str], width: int) -> int:
    """How wide the status column may be for ``columns`` to fit in ``width`` (spare width if no status)."""
    if "status" not in columns:
        return width - table.total(columns)
    return width - (table.total(columns) - table.width_of("status"))


def _blocks(table: _Table, columns: Sequence[str], width: int) -> list[str]:
    """The table as blocks of columns that each fit in ``width``, every block led by rank and trial."""
    keys = [c for c in columns if c in _KEYS]
    room = width - table.total(keys) - (len(_GAP) if keys else 0)
    blocks: list[list[str]] = []
    for column in (c for c in columns if c not in keys):
        if table.width_of(column) > room:
            table.clip(column, max(room, 1))
        if blocks and table.total(keys + blocks[-1] + [column]) <= width:
            blocks[-1].append(column)
        else:
            blocks.append([column])
    lines: list[str] = []
    for block in blocks:
        if lines:
            lines.append("")
        lines += table.lines(keys + block)
    return lines
