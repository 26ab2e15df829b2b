"""The full benchmark table a finished run is scored against (regret, hypervolume gap).

It is read from the tabular evaluators of a study, after the search: no strategy ever sees it.

Example:
    >>> ref = reference_table(study_evaluators, ["accuracy", "latency_ms@raspi4"])  # doctest: +SKIP
    >>> write_outputs(out, trials=..., reference=ref)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hwnas.errors import DataError

if TYPE_CHECKING:
    from hwnas.evaluation.base import Evaluator

log = logging.getLogger(__name__)


def reference_table(
    evaluators: Iterable[Evaluator], metric_names: Sequence[str]
) -> pd.DataFrame | None:
    """Join the evaluators' full tables on the canonical arch string, for ``metric_names``.

    Each metric is taken from the first evaluator whose :meth:`~Evaluator.table` has it; the
    tables are inner-joined on their index (canonical arch strings).

    Args:
        evaluators: the study's evaluators; non-tabular ones (``table()`` is ``None``) are passed.
        metric_names: the metrics to score on (objectives and constraint metrics).

    Returns:
        A frame indexed by canonical arch string with one column per metric, in the given order;
        ``None`` when some metric is in no table, no metric is named, or no arch is in every
        table that contributes.

    Raises:
        DataError: when a contributed column holds a non-number, NaN or inf.

    Example:
        >>> reference_table([], ["accuracy"]) is None
        True
    """
    wanted = list(dict.fromkeys(metric_names))
    if not wanted:
        return None
    parts: list[pd.DataFrame] = []
    covered: list[str] = []
    for ev in evaluators:
        table = ev.table()
        if table is None:
            continue
        cols = [m for m in wanted if m in table.columns and m not in covered]
        if cols:
            parts.append(_checked(table[cols], type(ev).__name__))
            covered += cols
    missing = [m for m in wanted if m not in covered]
    if missing:
        log.debug("no reference table: metric(s) %s are in no evaluator's table", missing)
        return None
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, how="inner")
    if joined.empty:
        log.warning(
            "no reference table: the evaluators' tables share no architecture for %s", wanted
        )
        return None
    return joined[wanted]


def _checked(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    out = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    out.index = pd.Index([str(i) for i in frame.index], name="arch")
    if out.index.has_duplicates:
        dup = out.index[out.index.duplicated()][0]
        raise DataError(f"{source} table lists {dup!r} more than once; keep one row per arch")
    for col in out.columns:
        bad = ~np.isfinite(out[col].to_numpy())
        if bad.any():
            first = out.index[bad][0]
            raise DataError(
                f"{source} table: column {col!r} has {int(bad.sum())} value(s) that are not "
                f"finite numbers (first at {first!r}); a reference table must be complete"
            )
    return out


__all__ = ["reference_table"]
