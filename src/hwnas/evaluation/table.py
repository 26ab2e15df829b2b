"""The generic ``table`` evaluator: any CSV keyed by canonical architecture strings.

Every numeric column other than the key becomes a metric named by its header. This is how a user
brings numbers measured on their own devices, and how a tabular task is defined without code.

The file is checked before it is trusted. A column is numeric when it holds at least one finite
number and no more text cells than number cells (empty cells and ``n/a``, ``NA``, ``null``,
``none``, ``-``, ``?`` count as neither). In a metric column, a cell that is not a finite number
(empty, ``nan``, ``inf``, text) excludes its row, and so does a row with fewer fields than the
header (the sign of a truncated file); excluded rows are logged as a warning and listed by
:meth:`TableEvaluator.notes`, and looking up such an architecture says why it is missing. A row
with more fields than the header, an empty or header-only file, a file that is not UTF-8 CSV, a
malformed or repeated architecture, and a table whose every row is excluded are errors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.evaluation.base import Evaluator, EvaluatorContext, MissingArchError
from hwnas.evaluation.checks import (
    CsvRows,
    column,
    describe_cell,
    is_text,
    read_csv_rows,
    summarize,
    to_floats,
)
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

log = logging.getLogger(__name__)

FIX = "fix the file or export it again as UTF-8 CSV"


class TableEvaluator(Evaluator):
    """Look metrics up in a CSV.

    Args:
        path: the CSV; a relative path is resolved against the config file's folder.
        key: the column holding canonical architecture strings (default ``arch``).
        metrics: keep only these columns (default: every numeric column).
        context: the space and folders (given by the study builder).

    Example (config)::

        evaluators:
          - table: {path: my_device.csv, key: arch}
    """

    expensive = True
    cacheable = False

    def __init__(
        self,
        *,
        path: str,
        key: str = "arch",
        metrics: list[str] | None = None,
        context: EvaluatorContext,
    ) -> None:
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = context.base_dir / p
        if p.is_dir():
            raise DataError(f"table: {p} is a folder; set 'path' to the CSV file in it")
        if not p.is_file():
            raise DataError(
                f"table: file {p} does not exist; fix 'path' (relative paths are "
                "resolved against the config file's folder)"
            )
        t = read_csv_rows(p, prefix="table: ", fix=FIX)
        if key not in t.header:
            seps = [c for c in ("\t", ";", "|") if len(t.header) == 1 and c in t.header[0]]
            if seps:
                raise DataError(
                    f"table: {p} line {t.header_line} is one column holding {seps[0]!r}: the file "
                    "is not comma-separated; save it as CSV with commas"
                )
            raise DataError(f"table: {p} has no key column {key!r}; {closest(key, t.header)}")
        if not t.rows:
            raise DataError(
                f"table: {p} has a header (line {t.header_line}) but no rows; "
                "add one row per architecture"
            )
        width = len(t.header)
        for row, line in zip(t.rows, t.lines):
            if len(row) > width:
                raise DataError(
                    f"table: {p} line {line} has {len(row)} fields but the header has {width}; "
                    "remove the extra fields or quote cells that hold commas"
                )
        self.space = context.space
        self.path = p
        archs = _archs(t, key, context.space)
        names, self._notes = _metric_columns(t, key, metrics)
        why: dict[int, list[str]] = {}  # row position -> reasons it is excluded
        for i, row in enumerate(t.rows):
            if len(row) < width:
                why[i] = [f"{len(row)} of {width} fields, the file may be truncated"]
        values = {}
        for name in names:
            cells = column(t.rows, t.header.index(name))
            values[name] = to_floats(cells)
            for i in np.flatnonzero(~np.isfinite(values[name])).tolist():
                if len(t.rows[i]) == width:  # a short row is reported as such
                    why.setdefault(i, []).append(f"{name} is {describe_cell(cells[i])}")
        reasons = {i: f"line {t.lines[i]}: {', '.join(why[i])}" for i in sorted(why)}
        keep = np.asarray([i for i in range(len(t.rows)) if i not in why], dtype=np.int64)
        if not keep.size:
            raise DataError(
                f"table: {p}: every row is excluded ({summarize(list(reasons.values()))}); {FIX}"
            )
        if reasons:
            rows = "1 row" if len(reasons) == 1 else f"{len(reasons)} rows"
            body = f"{rows} excluded ({summarize(list(reasons.values()))})"
            log.warning("table %s: %s", p, body)
            self._notes.insert(0, f"table {p.name}: {body}")
        self._excluded = {a: reasons[i] for i, a in enumerate(archs) if a is not None and i in why}
        kept = [archs[i] for i in keep.tolist()]  # a kept row is a full row: its arch parsed
        self._frame = pd.DataFrame(
            {n: values[n][keep] for n in names}, index=pd.Index(kept, name="arch")
        )
        self._index = {k: i for i, k in enumerate(kept)}
        self._values = self._frame.to_numpy()
        self._names = tuple(names)
        self._provenance = {f"table {p.name}": {"path": str(p.resolve()), "sha256": t.sha256}}
        self._key = f"table:{p.name}:{t.sha256[:12]}"

    def metrics(self) -> tuple[str, ...]:
        return self._names

    def evaluate(self, arch: Arch) -> dict[str, float]:
        s = self.space.to_string(arch)
        try:
            row = self._values[self._index[s]]
        except KeyError:
            if s in self._excluded:
                raise MissingArchError(
                    f"table: {s!r} is excluded from {self.path.name} ({self._excluded[s]})"
                ) from None
            raise MissingArchError(f"table: {s!r} is not in {self.path.name}") from None
        return {n: float(v) for n, v in zip(self._names, row)}

    def key(self) -> str:
        return self._key

    def table(self) -> pd.DataFrame:
        return self._frame

    def provenance(self) -> dict[str, dict[str, str]]:
        """``{"table <file name>": {"path": ..., "sha256": ...}}`` of the bytes that were read."""
        return {label: dict(entry) for label, entry in self._provenance.items()}

    def notes(self) -> list[str]:
        """Excluded rows (one line, the first few with their reason) and ignored mixed columns."""
        return list(self._notes)


def _archs(t: CsvRows, key: str, space: SearchSpace) -> list[str | None]:
    """Canonical string of every row (None for a short row whose key does not parse)."""
    j = t.header.index(key)
    out: list[str | None] = []
    first: dict[str, int] = {}
    for row, line in zip(t.rows, t.lines):
        try:
            s = space.canonical(row[j] if j < len(row) else "")
        except HwnasError as exc:
            if len(row) < len(t.header):
                out.append(None)  # cut off mid-row: excluded and reported as truncated
                continue
            raise DataError(f"table: {t.path} line {line}: {exc}") from None
        if s in first:
            raise DataError(
                f"table: {t.path} lists {s!r} more than once (lines {first[s]} and {line}); "
                "keep one row per arch"
            )
        first[s] = line
        out.append(s)
    return out


def _metric_columns(t: CsvRows, key: str, wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """The metric columns, and notes about columns left out although they hold some numbers."""
    full = [i for i, r in enumerate(t.rows) if len(r) == len(t.header)] or list(range(len(t.rows)))
    numeric: list[str] = []
    why_not: dict[str, str] = {}  # non-numeric column -> what it holds
    notes = []
    for j, name in enumerate(t.header):
        if name == key:
            continue
        cells = [t.rows[i][j] if j < len(t.rows[i]) else "" for i in full]
        values = to_floats(cells)
        texts = [full[k] for k in np.flatnonzero(np.isnan(values)).tolist() if is_text(cells[k])]
        finite = int(np.isfinite(values).sum())
        if finite and len(texts) <= finite:
            numeric.append(name)
            continue
        first = f"line {t.lines[texts[0]]}: {describe_cell(t.rows[texts[0]][j])}" if texts else ""
        why_not[name] = (
            f"text in {len(texts)} of {len(cells)} cells ({first}), numbers in {finite}"
            if texts
            else "no cell is a finite number"
        )
        if finite and wanted is None:
            notes.append(f"table {t.path.name}: column {name!r} is not a metric: {why_not[name]}")
    if wanted is not None:
        for m in wanted:
            if m in why_not:
                raise ConfigError(
                    f"table: {t.path} column {m!r} is not numeric ({why_not[m]}); fix the column "
                    "or remove it from 'metrics'"
                )
            if m not in numeric:
                raise ConfigError(
                    f"table: {t.path} has no numeric column {m!r}; {closest(m, numeric)}"
                )
        numeric = list(wanted)
    if not numeric:
        raise DataError(
            f"table: {t.path} has no numeric column besides the key {key!r}; add a column of "
            "finite numbers (one metric per column, named by its header)"
        )
    return numeric, notes
