"""A label table (CSV or Parquet) read once and asked for its columns as checked arrays.

Every error names the table, the row (counted from 1, the header not counted, as a spreadsheet shows data
rows below its header) and the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_models.errors import DataError, shown

__all__ = ["Table", "read_table"]

_READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


def read_table(path: str | Path) -> Table:
    """The table at ``path`` (``.csv``, ``.parquet``); a :class:`DataError` if it is missing, unreadable or empty."""
    import pandas as pd

    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"Label table {shown(str(path))} must be a .csv or .parquet file.")
    if not path.is_file():
        raise DataError(f"Label table {shown(str(path))} does not exist (or is not a file).")
    try:
        # Labels are read as text first: a class named "01" stays "01", and the column checks convert.
        frame = pd.read_csv(path, dtype=str, keep_default_na=False) if reader == "read_csv" else pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"Label table '{path}' cannot be read ({type(exc).__name__}: {exc}).") from None
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet share no base with the above
        raise DataError(f"Label table '{path}' cannot be read ({type(exc).__name__}: {exc}).") from None
    if frame.empty:
        raise DataError(f"Label table '{path}' has no rows: it must have one row per image.")
    return Table(path, frame)


@dataclass(frozen=True, eq=False)
class Table:
    path: Path
    frame: Any  # a pandas DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def at(self, row: int, column: str, problem: str) -> str:
        """An error message for one cell."""
        return f"Label table '{self.path}', row {row}, column {column!r}: {problem}."

    def column(self, name: str) -> np.ndarray:
        if name not in self.frame.columns:
            raise DataError(f"Label table '{self.path}' has no column {name!r}; its columns are "
                            f"{[str(c) for c in self.frame.columns]}.")
        return self.frame[name].to_numpy()

    def strings(self, name: str) -> list[str]:
        """Non-empty text cells."""
        values = [("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)) for v in self.column(name)]
        for row, value in enumerate(values, start=1):
            if not value.strip():
                raise DataError(self.at(row, name, "is empty"))
        return values

    def numbers(self, name: str, *, where: str, low: float | None = None, high: float | None = None) -> np.ndarray:
        """Finite float32 cells (in ``[low, high]`` when given)."""
        def check(value: Any, number: float) -> str | None:
            if not np.isfinite(np.float32(number)):
                return f"must be a finite number ({where}), but holds {shown(value)}"
            if (low is not None and number < low) or (high is not None and number > high):
                return f"must lie in [{low}, {high}] ({where}: a sigmoid output), but holds {number}"
            return None

        return self._cells(name, np.float32, check, f"must be a number ({where})")

    def integers(self, name: str, low: int, high: int) -> np.ndarray:
        """Whole-number cells in ``[low, high)`` (class indices, 0/1 labels), as int32."""
        rule = f"must be a class index in [{low}, {high}) ({high - low} declared classes)"

        def check(value: Any, number: float) -> str | None:
            whole = np.isfinite(number) and number == int(number) and low <= number < high
            return None if whole else f"{rule}, but holds {shown(value)}"

        return self._cells(name, np.int32, check, rule)

    def _cells(self, name: str, dtype: type, check: Any, rule: str) -> np.ndarray:
        """The column's cells as numbers of ``dtype``; ``check(cell, number)`` says what is wrong with one."""
        values = self.column(name)
        out = np.empty(len(values), dtype)
        for row, value in enumerate(values, start=1):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DataError(self.at(row, name, f"{rule}, but holds {shown(value)}")) from None
            problem = check(value, number)
            if problem:
                raise DataError(self.at(row, name, problem))
            out[row - 1] = number
        return out

    def class_indices(self, name: str, classes: tuple[str, ...]) -> np.ndarray:
        """Cells that are class names, as their indices in ``classes``."""
        index = {c: i for i, c in enumerate(classes)}
        out = np.empty(len(self), np.int32)
        for row, value in enumerate(self.column(name), start=1):
            found = index.get(str(value))
            if found is None:
                raise DataError(self.at(row, name, f"holds {shown(value)}, which is not among the declared classes "
                                        f"{list(classes)}"))
            out[row - 1] = found
        return out

    def choices(self, name: str, allowed: tuple[str, ...]) -> np.ndarray:
        values = np.asarray([str(v) for v in self.column(name)])
        for row, value in enumerate(values, start=1):
            if value not in allowed:
                raise DataError(self.at(row, name, f"must be one of {list(allowed)}, but holds {shown(value)}"))
        return values
