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


NOISE_PREFIXES = ("latency_cv@", "latency_iqr_ms@")


def iqr_column(metric: str) -> str | None:
    """The interquartile-range column that goes with a measured latency metric, if any.

    Example:
        >>> iqr_column("latency_ms@cpu"), iqr_column("accuracy")
        ('latency_iqr_ms@cpu', None)
    """
    if metric.startswith("latency_ms@"):
        return "latency_iqr_ms@" + metric.split("@", 1)[1]
    return None


def noise_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per device, the spread of repeated latency measurements over the trials that have it.

    Reads the ``latency_cv@<dev>`` (coefficient of variation) and ``latency_iqr_ms@<dev>``
    (interquartile range) columns the ``measured`` evaluator yields. One row per device, columns
    ``device``, ``trials``, ``median latency_ms``, ``median CV``, ``p90 CV``, ``median IQR ms``,
    ``p90 IQR ms`` (NaN where the device lacks that column); empty when no trial has them.

    Example:
        >>> df = pd.DataFrame({"latency_ms@cpu": [2.0, 4.0], "latency_cv@cpu": [0.01, 0.03]})
        >>> noise_summary(df)["median CV"].tolist()
        [0.02]
    """
    devices: list[str] = []
    for col in map(str, frame.columns):
        for prefix in NOISE_PREFIXES:
            if col.startswith(prefix) and col[len(prefix) :] not in devices:
                devices.append(col[len(prefix) :])
    rows = []
    for dev in devices:
        cols = {
            "latency": f"latency_ms@{dev}",
            "cv": f"latency_cv@{dev}",
            "iqr": f"latency_iqr_ms@{dev}",
        }
        values = {
            k: pd.to_numeric(frame[c], errors="coerce").dropna() if c in frame.columns else None
            for k, c in cols.items()
        }
        counts = [len(v) for k, v in values.items() if k != "latency" and v is not None]
        rows.append(
            {
                "device": dev,
                "trials": max(counts, default=0),
                "median latency_ms": _q(values["latency"], 0.5),
                "median CV": _q(values["cv"], 0.5),
                "p90 CV": _q(values["cv"], 0.9),
                "median IQR ms": _q(values["iqr"], 0.5),
                "p90 IQR ms": _q(values["iqr"], 0.9),
            }
        )
    columns = ["device", "trials", "median latency_ms", "median CV", "p90 CV"]
    return pd.DataFrame(rows, columns=[*columns, "median IQR ms", "p90 IQR ms"])


def _q(values: pd.Series | None, q: float) -> float:
    if values is None or values.empty:
        return float("nan")
    return float(values.quantile(q))
