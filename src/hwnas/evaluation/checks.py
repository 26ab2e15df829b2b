"""Reading CSV files cell by cell, for data that is checked before it is trusted.

The NB201 loader (:mod:`hwnas.evaluation.data`) and the ``table`` evaluator read CSVs through
:func:`read_csv_rows`, which keeps every row's line number (as a text editor shows it: the header
is line 1) and the raw text of every cell, so a bad cell can be named exactly, and hashes the bytes
for :meth:`~hwnas.evaluation.base.Evaluator.provenance`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.errors import DataError

# Cells that mean "no value" rather than text, so a column of numbers with gaps is still numeric.
NA_TOKENS = frozenset({"", "na", "n/a", "null", "none", "-", "?"})


@dataclass(frozen=True)
class CsvRows:
    """A CSV file as text: the header, the non-blank rows and where each row is in the file."""

    path: Path
    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]  # 1-based line number of each row (header = line 1 in a plain file)
    sha256: str  # of the file's bytes


def read_csv_rows(path: Path, *, prefix: str = "", fix: str) -> CsvRows:
    """Read ``path`` as UTF-8 CSV, else a one-line :class:`DataError` (``prefix`` ... ``fix``).

    Blank lines hold no data and are skipped; an empty header name becomes ``Unnamed: <i>`` (as
    pandas names it); a header naming one column twice is an error.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{prefix}cannot read {path}: {exc.strerror or exc}; {fix}") from None
    digest = hashlib.sha256(data).hexdigest()
    nul = data.find(b"\x00")  # text has no NUL bytes; spreadsheets and archives do
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        raise DataError(
            f"{prefix}cannot parse {path} as CSV: line {line} holds a NUL byte, so it is not "
            f"UTF-8 text (a UTF-16 export, a spreadsheet or another binary file); {fix}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{prefix}cannot parse {path} as CSV: line {line} is not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x}); {fix}"
        ) from None
    if not text.strip():
        raise DataError(f"{prefix}{path} is empty; {fix}")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 1
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row:
                continue
            if header is None:
                header, header_line = row, reader.line_num
            else:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(
            f"{prefix}cannot parse {path} as CSV: line {reader.line_num}: {exc}; {fix}"
        ) from None
    assert header is not None  # the text is not blank
    names = [h if h else f"Unnamed: {i}" for i, h in enumerate(header)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{prefix}{path} line {header_line}: the header names column {name!r} twice; "
                "rename one of them"
            )
        seen.add(name)
    return CsvRows(path, names, header_line, rows, lines, digest)


def column(rows: Sequence[Sequence[str]], j: int) -> list[str]:
    """The cells of column ``j`` (``""`` where a short row lacks it)."""
    return [r[j] if j < len(r) else "" for r in rows]


def to_floats(cells: Sequence[str]) -> np.ndarray:
    """``cells`` as float64: NaN where a cell is not a number; ``nan``/``inf`` stay as written."""
    try:
        return np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    except ValueError:
        pass  # some cell is text: convert one by one (only for columns that hold text)
    out = np.empty(len(cells), dtype=np.float64)
    for i, c in enumerate(cells):
        try:
            out[i] = float(c)
        except ValueError:
            out[i] = np.nan
    return out


def is_text(cell: str) -> bool:
    """Whether ``cell`` is text: not a number and not a usual way to write "no value"."""
    s = cell.strip()
    if s.lower() in NA_TOKENS:
        return False
    try:
        float(s)
    except ValueError:
        return True
    return False


def describe_cell(cell: str) -> str:
    """A short, one-line description of a cell that is not a finite number."""
    s = cell.strip()
    if not s:
        return "empty"
    try:
        float(s)
        return s  # nan, inf, -inf: written as is
    except ValueError:
        return repr(s if len(s) <= 40 else s[:37] + "...")


def summarize(items: Sequence[str], limit: int = 5) -> str:
    """``items`` joined by ``"; "``, the first ``limit`` of them plus a count of the rest."""
    shown = "; ".join(items[:limit])
    rest = len(items) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")
