"""Search progress over evaluations: hypervolume, and regret / HV gap against a reference table.

The x axis counts charged evaluations (the budget's unit) in tell order; a trial served without
an expensive evaluation (a repeat) shares the x of the evaluation before it. Each series holds
the value after the last trial told at that x.

Example:
    >>> c = study_curves(trials, objectives, constraints, reference=table)  # doctest: +SKIP
    >>> c.evaluations[-1], c.hv_gap[-1]  # doctest: +SKIP
    (300, 0.012)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwnas.errors import DataError
from hwnas.problem import Constraint, Objective, objective_vector, total_violation
from hwnas.report.scoring import HypervolumeGap, LatencyBands, hypervolume_curve
from hwnas.trial import Trial

# Reference point of the observed-range hypervolume (the CLI summary's figure uses the same).
OBSERVED_REF = 1.1
CHECKPOINTS = (10, 25, 50, 100, 200, 300, 500, 1000, 2000, 5000)


@dataclass(frozen=True)
class Curves:
    """Figures after each number of charged evaluations.

    Attributes:
        evaluations: the x values (charged evaluations so far), increasing.
        hypervolume: hypervolume of the feasible front so far, each objective scaled to the
            range of all feasible trials of the run, reference point ``OBSERVED_REF``.
        regret: mean latency-band regret against the reference table (units of
            ``regret_metric``), or ``None`` without a reference or when the problem is not one
            maximised objective against minimised ones.
        hv_gap: ``1 - HV / HV*`` against the reference table's front, or ``None``.
        regret_metric: the maximised metric the regret is in.
        reference_rows: rows of the reference table that meet the constraints (scored against).
    """

    evaluations: tuple[int, ...]
    hypervolume: tuple[float, ...]
    regret: tuple[float, ...] | None = None
    hv_gap: tuple[float, ...] | None = None
    regret_metric: str | None = None
    reference_rows: int = 0

    def at(self, evaluations: int) -> int | None:
        """Index of the last point at or before ``evaluations`` (``None`` before the first)."""
        pos = int(np.searchsorted(np.asarray(self.evaluations), evaluations, side="right")) - 1
        return pos if pos >= 0 else None

    def checkpoints(self) -> list[int]:
        """Round numbers of evaluations the run passed, plus its last x (for a summary table)."""
        if not self.evaluations:
            return []
        last = self.evaluations[-1]
        marks = [c for c in CHECKPOINTS if c < last and self.at(c) is not None]
        return [*marks, last]


def band_regret_shape(objectives: Sequence[Objective]) -> tuple[Objective, list[Objective]] | None:
    """``(maximised, minimised)`` when exactly one objective is maximised and the rest (at least
    one) minimised: the shape band regret is defined for; else ``None``."""
    up = [o for o in objectives if o.direction == "maximize"]
    down = [o for o in objectives if o.direction == "minimize"]
    if len(up) == 1 and down:
        return up[0], down
    return None


def study_curves(
    trials: Sequence[Trial],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    reference: pd.DataFrame | None = None,
) -> Curves:
    """Hypervolume (and, with a reference table, regret and HV gap) over charged evaluations.

    Only complete trials that meet every constraint count. The reference table is restricted
    to its rows that meet the constraints before it is scored against.

    Raises:
        DataError: when the reference lacks an objective or constraint column, or no row of it
            meets the constraints.
    """
    ordered = sorted(trials, key=lambda t: (t.tell_seq, t.number))
    x = np.cumsum([1 if t.charged else 0 for t in ordered]).astype(int)
    F = np.full((len(ordered), len(objectives)), np.nan)
    for j, t in enumerate(ordered):
        if t.ok and total_violation(constraints, t.metrics) <= 0.0:
            F[j] = objective_vector(objectives, t.metrics)
    F[~np.isfinite(F).all(axis=1)] = np.nan
    hv = hypervolume_curve(_observed_scale(F), np.full(len(objectives), OBSERVED_REF))
    last = _last_per_x(x)
    curves = Curves(evaluations=tuple(int(v) for v in x[last]), hypervolume=_tup(hv[last]))
    if reference is None or not len(ordered):
        return curves

    table = _feasible_reference(reference, objectives, constraints)
    gap = HypervolumeGap.of_table(
        np.column_stack([o.sign * table[o.metric].to_numpy(dtype=float) for o in objectives])
    ).gap_curve(F)
    regret = None
    shape = band_regret_shape(objectives)
    if shape is not None:
        up, down = shape
        cols = [objectives.index(o) for o in down]
        bands = LatencyBands.of_table(
            table[up.metric].to_numpy(dtype=float), table[[o.metric for o in down]].to_numpy()
        )
        # F holds the maximised metric negated; rows that do not count are NaN (never within).
        acc = np.where(np.isnan(F[:, objectives.index(up)]), -np.inf, -F[:, objectives.index(up)])
        regret = _tup(bands.regret_curve(acc, F[:, cols])[last])
    return Curves(
        evaluations=curves.evaluations,
        hypervolume=curves.hypervolume,
        regret=regret,
        hv_gap=_tup(gap[last]),
        regret_metric=shape[0].metric if shape is not None else None,
        reference_rows=len(table),
    )


def _feasible_reference(
    reference: pd.DataFrame, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> pd.DataFrame:
    needed = list(dict.fromkeys([o.metric for o in objectives] + [c.metric for c in constraints]))
    missing = [m for m in needed if m not in reference.columns]
    if missing:
        raise DataError(
            f"reference table lacks column(s) {missing}; it has {list(map(str, reference.columns))}"
        )
    table = reference[needed].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = ~np.isfinite(table.to_numpy()).all(axis=1)
    if bad.any():
        raise DataError(
            f"reference table has {int(bad.sum())} row(s) with a missing or non-finite value "
            f"(first {str(table.index[bad][0])!r}); give a complete table"
        )
    ok = np.ones(len(table), dtype=bool)
    for c in constraints:
        ok &= np.array([c.g(v) <= 0.0 for v in table[c.metric].to_numpy()], dtype=bool)
    if not ok.any():
        raise DataError(
            f"no row of the reference table ({len(table)} rows) meets the constraints "
            f"{[str(c) for c in constraints]}"
        )
    return table[ok]


def _observed_scale(F: np.ndarray) -> np.ndarray:
    rows = F[np.isfinite(F).all(axis=1)]
    if len(rows) == 0:
        return F
    ideal, nadir = rows.min(axis=0), rows.max(axis=0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (F - ideal) / span


def _last_per_x(x: np.ndarray) -> np.ndarray:
    """Indices of the last trial at each distinct x."""
    if len(x) == 0:
        return np.empty(0, dtype=int)
    return np.flatnonzero(np.r_[x[1:] != x[:-1], True])


def _tup(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


__all__ = ["OBSERVED_REF", "Curves", "band_regret_shape", "study_curves"]
