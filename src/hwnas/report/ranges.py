"""Axis ranges that ignore degenerate networks, shared by the Plotly view and ``pareto.png``.

A 10 %-accuracy cell (a network whose cell is all ``none``) lies far below the 80-95 %
architectures a search is about, yet it is on the Pareto front because it is the fastest, and a
search that explores the fast end can evaluate dozens of them. Min-max ranges squeeze every useful
point into a sliver of the plot. Here the *better* end of an objective's axis always shows the
best value; the *worse* end stops at the furthest of

* every plotted value within ``CORE_FENCE`` interquartile ranges (IQR) of the quartiles of the
  feasible values (of all values when fewer than ``MIN_CORE`` are feasible),
* every Pareto-front value within ``FRONT_FENCE`` IQRs, and every front value further out that
  no wide gap separates from the other values (a front split by a constraint stays whole),
* every constraint bound within ``FRONT_FENCE`` IQRs,

where the quartiles leave out an isolated minority cluster at the worse end: fewer than half of
the values, beyond a gap wider than ``GAP_OF_REST`` of the others' span and ``GAP_OF_ALL`` of the
whole span (a quarter of the trials can be 10 % cells when a search explores the fast end). The
range is padded by ``PAD`` of its span. Values outside are drawn clamped at the edge with a
marker pointing off-scale, and the report says how many.

Example:
    >>> import numpy as np
    >>> acc = np.r_[np.linspace(80.0, 95.0, 40), [10.0] * 12]
    >>> r = robust_range(acc, direction="maximize", keep=[10.0, 95.0])
    >>> r.lo > 75.0, r.count_outside(acc)
    (True, 12)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwnas.problem import Constraint, Direction, Objective

CORE_FENCE = 3.0
FRONT_FENCE = 8.0
GAP_OF_REST = 0.5
GAP_OF_ALL = 0.25
MIN_CORE = 4
PAD = 0.05


@dataclass(frozen=True)
class AxisRange:
    """The shown interval of one axis; values outside it are drawn at its edge."""

    lo: float
    hi: float

    def side(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """-1 below the range, +1 above, 0 inside (and for NaN)."""
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(v < self.lo, -1, np.where(v > self.hi, 1, 0))

    def clamp(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Values moved onto the nearest edge when outside (NaN stays NaN)."""
        return np.clip(np.asarray(values, dtype=float), self.lo, self.hi)

    def count_outside(self, values: Sequence[float] | np.ndarray) -> int:
        return int(np.count_nonzero(self.side(values)))

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


def robust_range(
    values: Sequence[float] | np.ndarray,
    *,
    direction: Direction = "minimize",
    core: Sequence[float] | np.ndarray | None = None,
    keep: Iterable[float] = (),
    bounds: Iterable[float] = (),
) -> AxisRange | None:
    """The range of one objective's axis (see the module docstring); ``None`` when no value is
    finite.

    Args:
        values: every value plotted on the axis.
        direction: the objective's direction: the worse end is the one trimmed.
        core: the values whose quartiles set the fence (the feasible ones); ``None`` or fewer
            than ``MIN_CORE`` finite values use ``values``.
        keep: values to show unless far out and isolated (the Pareto front's).
        bounds: constraint bounds on this axis, shown when within the wide fence.
    """
    # Work with "higher is worse": a maximised axis is mirrored and mirrored back at the end.
    sign = 1.0 if direction == "minimize" else -1.0
    v = sign * _finite(values)
    if len(v) == 0:
        return None
    c = sign * _finite(core) if core is not None else v
    if len(c) < MIN_CORE:
        c = v
    k = sign * _finite(list(keep))
    b = sign * _finite(list(bounds))

    # An isolated cluster at the worse end (the 10 % cells) must not set the quartiles.
    rest = c[c <= _isolation_cut(c)]
    q25, q75 = (float(q) for q in np.quantile(rest, [0.25, 0.75]))
    iqr = q75 - q25
    if iqr <= 0.0:
        # Most values tie: fall back to the spread, then to the magnitude.
        iqr = float(rest.max() - rest.min()) or max(abs(q75) * 0.05, 1e-9)
    inner = q75 + CORE_FENCE * iqr
    outer = (q25 - FRONT_FENCE * iqr, q75 + FRONT_FENCE * iqr)
    # A front value counts unless it is both far out and isolated from the other values.
    front = k[(k <= outer[1]) | (k <= _isolation_cut(np.r_[c, k]))]
    shown = [v[v <= inner], front, b[(b >= outer[0]) & (b <= outer[1])]]
    every = np.concatenate(shown)
    lo = min(float(every.min()), float(v.min()))  # the better end shows the best value
    hi = float(every.max())
    span = hi - lo
    pad = PAD * span if span > 0 else max(abs(hi) * PAD, 0.5)
    lo, hi = lo - pad, hi + pad
    return AxisRange(lo, hi) if sign > 0 else AxisRange(-hi, -lo)


def axis_ranges(
    trials: pd.DataFrame,
    *,
    objectives: Sequence[Objective],
    feasible: pd.Series | None = None,
    pareto: pd.DataFrame | None = None,
    constraints: Sequence[Constraint] = (),
) -> dict[str, AxisRange]:
    """A robust range for each objective that has a finite value in ``trials``.

    Args:
        trials: complete trials, one column per metric.
        objectives: the plotted objectives (their directions say which end is trimmed).
        feasible: boolean per row of ``trials``; ``None`` counts every row as feasible.
        pareto: the front's rows, kept in range unless far out and isolated.
        constraints: bounds on a plotted metric are kept in range when near the data.

    Example:
        >>> df = pd.DataFrame({"accuracy": [10.0, 85.0, 90.0, 91.0, 93.0, 94.0]})
        >>> acc = Objective("accuracy", "maximize")
        >>> axis_ranges(df, objectives=[acc])["accuracy"].contains(10.0)
        False
    """
    ok = (
        pd.Series(True, index=trials.index)
        if feasible is None
        else feasible.reindex(trials.index, fill_value=False).astype(bool)
    )
    out: dict[str, AxisRange] = {}
    for obj in objectives:
        metric = obj.metric
        if metric not in trials.columns:
            continue
        values = pd.to_numeric(trials[metric], errors="coerce").to_numpy(dtype=float)
        keep = (
            pd.to_numeric(pareto[metric], errors="coerce").to_numpy(dtype=float)
            if pareto is not None and metric in pareto.columns
            else np.empty(0)
        )
        bounds = [_bound(c) for c in constraints if c.metric == metric]
        r = robust_range(
            values, direction=obj.direction, core=values[ok.to_numpy()], keep=keep, bounds=bounds
        )
        if r is not None:
            out[metric] = r
    return out


def _isolation_cut(c: np.ndarray) -> float:
    """Where an isolated minority cluster at the high (worse) end begins; ``inf`` if none.

    The largest ``k < n / 2`` such that the gap below the ``k`` highest values is wider than
    ``GAP_OF_REST`` of the span of the others and ``GAP_OF_ALL`` of the whole span.
    """
    x = np.sort(c)
    n = len(x)
    whole = float(x[-1] - x[0]) if n else 0.0
    cut = math.inf
    for k in range(1, (n + 1) // 2):
        gap = float(x[n - k] - x[n - k - 1])
        rest = float(x[n - k - 1] - x[0])
        if gap > 0.0 and gap > GAP_OF_REST * rest and gap >= GAP_OF_ALL * whole:
            cut = float(x[n - k - 1] + x[n - k]) / 2.0
    return cut


def _bound(constraint: Constraint) -> float:
    bound = constraint.le if constraint.le is not None else constraint.ge
    return math.nan if bound is None else float(bound)


def _finite(values: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.empty(0)
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


__all__ = ["AxisRange", "axis_ranges", "robust_range"]
