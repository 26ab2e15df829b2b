"""Trials as tables: the rows of ``trials.csv`` / ``pareto.csv`` and the terminal Pareto table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hwnas.problem import Constraint, Objective, total_violation
from hwnas.trial import Trial


def metric_order(
    trials: Sequence[Trial], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[str]:
    """Objective metrics, then constraint metrics, then every other metric in first-seen order."""
    order: list[str] = []
    for name in [o.metric for o in objectives] + [c.metric for c in constraints]:
        if name not in order:
            order.append(name)
    for t in trials:
        for name in t.metrics:
            if name not in order:
                order.append(name)
    return order


def trials_frame(
    trials: Sequence[Trial], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> pd.DataFrame:
    """One row per completed trial: ``trial``, ``arch``, then one column per metric."""
    done = sorted((t for t in trials if t.ok), key=lambda t: t.number)
    columns = ["trial", "arch", *metric_order(done, objectives, constraints)]
    rows = [{"trial": t.number, "arch": t.arch, **t.metrics} for t in done]
    return pd.DataFrame(rows, columns=columns)


def feasible_mask(frame: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.Series:
    """Whether each row of a trials frame meets every constraint."""
    if frame.empty:
        return pd.Series([], dtype=bool)
    values = [
        total_violation(constraints, {c.metric: float(row[c.metric]) for c in constraints}) <= 0
        for _, row in frame.iterrows()
    ]
    return pd.Series(values, index=frame.index, dtype=bool)
