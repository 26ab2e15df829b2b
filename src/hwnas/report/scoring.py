"""How a finished search scores against a full benchmark table: band regret and hypervolume gap.

The table is used only after a search, to score the architectures it evaluated; no search
strategy ever sees it. ``benchmarks/_scoring.py`` and the report both score with these functions,
so a benchmark figure and the report's figure for the same run are the same number.

* Band regret (one maximised accuracy-like objective, one or more minimised latency-like ones):
  mean over latency budgets (by default the 10 %, ..., 90 % deciles of each latency over the table;
  with several latencies, budget k bounds all of them at their k-th decile at once) of
  ``best accuracy of a table row within the budget - best accuracy of an evaluated one``. When no
  evaluated architecture meets a budget, the found value is the worst accuracy of the table rows
  within it (the search gets no credit: the regret is the full spread of that budget).
* Hypervolume gap (any number of objectives): ``1 - HV / HV*``, objectives in minimisation form,
  each normalised to [0, 1] by the table's min and max, reference point ``1 + REF_MARGIN`` in every
  objective; ``HV*`` is the hypervolume of the table's own front under the same normalisation.

Example:
    >>> import numpy as np
    >>> acc = np.array([90.0, 80.0, 70.0]); lat = np.array([[3.0], [2.0], [1.0]])
    >>> band_regret(acc, lat, acc[2:], lat[2:])  # only the fastest cell was evaluated
    5.555555555555555
    >>> F = np.column_stack([-acc, lat[:, 0]])
    >>> hv_gap(F, F)
    0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.errors import DataError
from hwnas.pareto import hypervolume, non_dominated_mask

DECILES = np.arange(1, 10) / 10.0
# Points on the nadir boundary still count (with ~zero volume) instead of being dropped.
REF_MARGIN = 1e-6


@dataclass(frozen=True)
class LatencyBands:
    """Latency budgets of a table and the best and worst accuracy within each.

    Attributes:
        bounds: ``(k, d)`` budget ``k`` of latency ``d``.
        best: ``(k,)`` best accuracy of a table row within budget ``k``.
        worst: ``(k,)`` worst accuracy of a table row within budget ``k``.
    """

    bounds: np.ndarray
    best: np.ndarray
    worst: np.ndarray

    @classmethod
    def of_table(
        cls,
        accuracy: np.ndarray,
        latency: np.ndarray,
        quantiles: Sequence[float] | np.ndarray = DECILES,
    ) -> LatencyBands:
        """Budgets at ``quantiles`` of each latency column of the table.

        Args:
            accuracy: ``(n,)`` accuracy of every table row.
            latency: ``(n, d)`` latencies of every table row (``(n,)`` for one).
            quantiles: where the budgets lie, as quantiles of each latency.

        Raises:
            DataError: when the table is empty or a budget admits no row.
        """
        acc = np.asarray(accuracy, dtype=float)
        lat = _as_2d(latency)
        if len(acc) == 0 or len(acc) != len(lat):
            raise DataError(
                f"latency bands need a non-empty table, got {len(acc)} accuracies and "
                f"{len(lat)} latency rows"
            )
        bounds = np.quantile(lat, np.asarray(quantiles, dtype=float), axis=0)
        within = _within(bounds, lat)
        if not within.any(axis=1).all():
            raise DataError("a latency budget admits no table row; give other quantiles")
        masked = np.where(within, acc[None, :], np.nan)
        return cls(bounds=bounds, best=np.nanmax(masked, axis=1), worst=np.nanmin(masked, axis=1))

    def regret(self, accuracy: np.ndarray, latency: np.ndarray) -> float:
        """Mean regret over the budgets of the evaluated ``accuracy`` / ``latency`` rows."""
        acc = np.asarray(accuracy, dtype=float)
        if len(acc) == 0:
            return float(np.mean(self.best - self.worst))
        return float(self.regret_curve(acc, latency)[-1])

    def regret_curve(self, accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
        """Regret after each prefix of the evaluated rows (element ``j``: rows ``0..j``)."""
        acc = np.asarray(accuracy, dtype=float)
        if len(acc) == 0:
            return np.empty(0)
        scored = np.where(_within(self.bounds, _as_2d(latency)), acc[None, :], -np.inf)
        found = np.maximum.accumulate(scored, axis=1)
        found = np.where(np.isfinite(found), found, self.worst[:, None])
        return np.mean(self.best[:, None] - found, axis=0)


@dataclass(frozen=True)
class HypervolumeGap:
    """A table's normalisation and true-front hypervolume, to score evaluated points against.

    Attributes:
        ideal: per-objective minimum over the table (minimisation form).
        nadir: per-objective maximum over the table.
        reference: reference point in normalised units (``1 + REF_MARGIN``).
        hv_star: hypervolume of the table's front, normalised.
    """

    ideal: np.ndarray
    nadir: np.ndarray
    reference: np.ndarray
    hv_star: float

    @classmethod
    def of_table(cls, F: np.ndarray) -> HypervolumeGap:
        """Normalisation and ``HV*`` of a table ``F`` (rows x objectives, minimisation form).

        Raises:
            DataError: when the table is empty or holds NaN.
        """
        F = np.asarray(F, dtype=float)
        if F.ndim != 2 or len(F) == 0 or not np.isfinite(F).all():
            raise DataError(f"hypervolume gap needs a finite, non-empty table; got shape {F.shape}")
        ideal, nadir = F.min(axis=0), F.max(axis=0)
        reference = np.full(F.shape[1], 1.0 + REF_MARGIN)
        partial = cls(ideal=ideal, nadir=nadir, reference=reference, hv_star=math.nan)
        return cls(ideal=ideal, nadir=nadir, reference=reference, hv_star=partial.hypervolume(F))

    def normalise(self, F: np.ndarray) -> np.ndarray:
        """``F`` scaled so that the table spans [0, 1] in every objective."""
        span = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)
        return (np.asarray(F, dtype=float) - self.ideal) / span

    def hypervolume(self, F: np.ndarray) -> float:
        """Normalised hypervolume of the rows of ``F`` (minimisation form)."""
        Z = self.normalise(F)
        if len(Z) == 0:
            return 0.0
        return hypervolume(Z[non_dominated_mask(Z)], self.reference)

    def gap(self, F: np.ndarray) -> float:
        """``1 - HV / HV*`` of the evaluated rows ``F`` (0: the true front was found)."""
        F = np.asarray(F, dtype=float)
        if len(F) == 0:
            return 1.0
        return self._gap(self.hypervolume(F))

    def gap_curve(self, F: np.ndarray) -> np.ndarray:
        """The gap after each prefix of the rows of ``F`` (element ``j``: rows ``0..j``)."""
        hv = hypervolume_curve(self.normalise(F), self.reference)
        return np.array([self._gap(h) for h in hv])

    def _gap(self, hv: float) -> float:
        if self.hv_star <= 0.0:
            return math.nan
        return float(1.0 - hv / self.hv_star)


def band_regret(
    table_accuracy: np.ndarray,
    table_latency: np.ndarray,
    accuracy: np.ndarray,
    latency: np.ndarray,
    *,
    quantiles: Sequence[float] | np.ndarray = DECILES,
) -> float:
    """Mean regret over latency budgets of the evaluated rows against the table (see module).

    Example:
        >>> band_regret(np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([1.0]),
        ...             np.array([1.0]), quantiles=[0.5, 1.0])
        0.5
    """
    bands = LatencyBands.of_table(table_accuracy, table_latency, quantiles)
    return bands.regret(accuracy, latency)


def hv_gap(table_F: np.ndarray, F: np.ndarray) -> float:
    """``1 - HV / HV*`` of the rows ``F`` against the table ``table_F`` (minimisation form)."""
    return HypervolumeGap.of_table(table_F).gap(F)


def hypervolume_curve(Z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hypervolume of the non-dominated rows among each prefix of ``Z`` (minimisation form).

    Rows with NaN count as absent. The hypervolume is recomputed only when a row enters the front.
    """
    Z = np.asarray(Z, dtype=float)
    out = np.zeros(len(Z))
    front = np.empty((0, Z.shape[1] if Z.ndim == 2 else 1))
    hv = 0.0
    for j, z in enumerate(Z):
        if np.isfinite(z).all() and not _dominated_or_equal(front, z):
            keep = ~(np.all(z <= front, axis=1) & np.any(z < front, axis=1))
            front = np.vstack([front[keep], z])
            hv = hypervolume(front, reference)
        out[j] = hv
    return out


def _dominated_or_equal(front: np.ndarray, z: np.ndarray) -> bool:
    return bool(len(front)) and bool(np.any(np.all(front <= z, axis=1)))


def _as_2d(latency: np.ndarray) -> np.ndarray:
    lat = np.asarray(latency, dtype=float)
    return lat[:, None] if lat.ndim == 1 else lat


def _within(bounds: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """``(k, n)``: row ``n`` meets budget ``k`` in every latency."""
    return np.all(latency[None, :, :] <= bounds[:, None, :], axis=2)


__all__ = [
    "DECILES",
    "REF_MARGIN",
    "HypervolumeGap",
    "LatencyBands",
    "band_regret",
    "hv_gap",
    "hypervolume_curve",
]
