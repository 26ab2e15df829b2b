"""Pareto fronts and hypervolume in minimisation form (pymoo does the sorting and the HV)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hwnas.problem import Constraint, Objective
    from hwnas.trial import Trial


def _nds():
    from pymoo.config import Config

    Config.warnings["not_compiled"] = False
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    return NonDominatedSorting()


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``F`` (minimisation) that no other row dominates."""
    F = np.asarray(F, dtype=float)
    mask = np.zeros(len(F), dtype=bool)
    if len(F) == 0:
        return mask
    if F.shape[1] == 1:
        mask[F[:, 0] == F[:, 0].min()] = True
        return mask
    idx = _nds().do(F, only_non_dominated_front=True)
    mask[np.asarray(idx, dtype=int)] = True
    return mask


def fronts(F: np.ndarray) -> list[np.ndarray]:
    """Indices of the non-dominated fronts of ``F``, best first."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return []
    if F.shape[1] == 1:
        values = np.unique(F[:, 0])
        return [np.flatnonzero(F[:, 0] == v) for v in values]
    return [np.asarray(f, dtype=int) for f in _nds().do(F)]


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of one front (inf at the extremes)."""
    F = np.asarray(F, dtype=float)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        span = F[order[-1], j] - F[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (F[order[2:], j] - F[order[:-2], j]) / span
    return dist


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume dominated by the rows of ``F`` (minimisation) up to ``reference``."""
    F = np.asarray(F, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if len(F) == 0:
        return 0.0
    F = F[np.all(ref > F, axis=1)]
    if len(F) == 0:
        return 0.0
    if F.shape[1] == 1:
        return float(ref[0] - F[:, 0].min())
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=ref)(F))


def pareto_trials(
    trials: Sequence[Trial], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[Trial]:
    """The feasible, non-dominated trials among ``trials``, in trial-number order."""
    from hwnas.problem import objective_matrix, total_violation

    feasible = sorted(
        (t for t in trials if t.ok and total_violation(constraints, t.metrics) <= 0.0),
        key=lambda t: t.number,
    )
    if not feasible:
        return []
    F = objective_matrix(objectives, [t.metrics for t in feasible])
    return [t for t, keep in zip(feasible, non_dominated_mask(F)) if keep]
