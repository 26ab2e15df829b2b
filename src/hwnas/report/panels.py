"""The panels of the Pareto PNG: one objective over trials, a pair of objectives with the front's
staircase, or a grid of pairs; values outside the axis ranges drawn at the edge."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hwnas.problem import Constraint, Objective
from hwnas.report.ranges import AxisRange

_FEASIBLE = "tab:blue"
_INFEASIBLE = "0.6"
_FRONT = "tab:red"
_BOUND = "#9a6700"
MAX_PANEL_COLS = 3
_EDGE_MARKER = {("x", -1): "<", ("x", 1): ">", ("y", -1): "v", ("y", 1): "^"}


def axis_label(objective: Objective) -> str:
    """Metric name with an arrow and the direction in words, e.g. ``accuracy ↑ (higher is better)``.

    Example:
        >>> axis_label(Objective("latency_ms", "minimize"))
        'latency_ms ↓ (lower is better)'
    """
    if objective.direction == "maximize":
        return f"{objective.metric} ↑ (higher is better)"
    return f"{objective.metric} ↓ (lower is better)"


@dataclass(frozen=True)
class View:
    """Axis ranges and constraints shared by every panel."""

    ranges: Mapping[str, AxisRange]
    constraints: list[Constraint]

    def place(self, metric: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values clamped into the metric's range, and the side each one was off (-1, 0, +1)."""
        rng = self.ranges.get(metric)
        if rng is None:
            return values, np.zeros(len(values), dtype=int)
        return rng.clamp(values), rng.side(values)

    def finish(self, ax: Axes, axis: str, metric: str) -> None:
        """Set the axis limits and draw constraint bounds on ``metric`` that are in range."""
        rng = self.ranges.get(metric)
        if rng is not None:
            (ax.set_xlim if axis == "x" else ax.set_ylim)(rng.lo, rng.hi)
        for c in self.constraints:
            bound = c.le if c.le is not None else c.ge
            if c.metric != metric or bound is None or (rng is not None and not rng.contains(bound)):
                continue
            line = ax.axvline if axis == "x" else ax.axhline
            line(bound, color=_BOUND, linestyle="--", linewidth=1.2, zorder=1, label=str(c))
            if rng is not None:
                lo, hi = (bound, rng.hi) if c.le is not None else (rng.lo, bound)
                span = ax.axvspan if axis == "x" else ax.axhspan
                span(lo, hi, color=_BOUND, alpha=0.07, linewidth=0, zorder=0)


def _values(table: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in table.columns:
        return np.empty(0)
    return pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)


def draw_empty(fig: Figure, objectives: Sequence[Objective]) -> None:
    ax = fig.add_subplot()
    ax.set_xticks([])
    ax.set_yticks([])
    if len(objectives) == 1:
        ax.set_xlabel("trial")
        ax.set_ylabel(axis_label(objectives[0]))
    else:
        ax.set_xlabel(axis_label(objectives[0]))
        ax.set_ylabel(axis_label(objectives[1]))
    ax.text(0.5, 0.5, "no completed trials", ha="center", va="center", fontsize=14, color="0.4")


def _scatter_trials(
    ax: Axes, x: np.ndarray, y: np.ndarray, ok: np.ndarray, off: np.ndarray
) -> None:
    n_ok, n_bad = int(ok.sum()), int((~ok).sum())
    inside = off == ""
    if n_bad:
        ax.scatter(
            x[~ok & inside],
            y[~ok & inside],
            s=22,
            facecolors="none",
            edgecolors=_INFEASIBLE,
            linewidths=0.9,
            label=f"infeasible ({n_bad})",
            zorder=2,
        )
    if n_ok:
        ax.scatter(
            x[ok & inside],
            y[ok & inside],
            s=22,
            color=_FEASIBLE,
            alpha=0.75,
            edgecolors="none",
            label=f"feasible ({n_ok})",
            zorder=3,
        )
    _edge_scatter(ax, x[ok], y[ok], off[ok], _FEASIBLE, 30)
    _edge_scatter(ax, x[~ok], y[~ok], off[~ok], _INFEASIBLE, 30)


def _edge_scatter(
    ax: Axes, x: np.ndarray, y: np.ndarray, off: np.ndarray, colour: str, size: float
) -> None:
    """Off-scale points, at the axis edge, each with its triangle pointing off-scale."""
    for marker in sorted(set(off[off != ""])):
        pick = off == marker
        ax.scatter(x[pick], y[pick], s=size, marker=marker, color=colour, zorder=5, clip_on=False)


def _edge_markers(sx: np.ndarray | None, sy: np.ndarray) -> np.ndarray:
    """Per point: "" inside, else the matplotlib marker pointing to where it really is."""
    out = np.full(len(sy), "", dtype=object)
    for axis, side in (("x", sx), ("y", sy)):
        if side is None:
            continue
        for v in (-1, 1):
            out[side == v] = _EDGE_MARKER[(axis, v)]
    return out


def _note(ax: Axes, text: str, *, bottom: bool = False) -> None:
    ax.text(
        0.02,
        0.03 if bottom else 0.98,
        text,
        transform=ax.transAxes,
        ha="left",
        va="bottom" if bottom else "top",
        fontsize="small",
        color=_FRONT,
    )


def _note_offscale(ax: Axes, off: np.ndarray) -> None:
    n = int(np.count_nonzero(off != ""))
    if n:
        _note(ax, f"{n} off-scale, drawn at the edge", bottom=True)


def draw_pair(
    ax: Axes,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    ox: Objective,
    oy: Objective,
    view: View,
    *,
    staircase: bool,
) -> None:
    x, sx = view.place(ox.metric, _values(trials, ox.metric))
    y, sy = view.place(oy.metric, _values(trials, oy.metric))
    off = _edge_markers(sx, sy)
    _scatter_trials(ax, x, y, ok.to_numpy(), off)
    fx, fy = _values(pareto, ox.metric), _values(pareto, oy.metric)
    keep = np.isfinite(fx) & np.isfinite(fy)
    fx, fsx = view.place(ox.metric, fx[keep])
    fy, fsy = view.place(oy.metric, fy[keep])
    if len(fx):
        if staircase and len(fx) > 1:
            order = np.argsort(fx, kind="stable")
            # The boundary of the dominated region holds each point's y until the next point
            # when x is minimised, and from the previous point when x is maximised.
            where: Literal["pre", "post"] = "post" if ox.direction == "minimize" else "pre"
            ax.step(fx[order], fy[order], where=where, color=_FRONT, linewidth=1.4, zorder=4)
        fm = _edge_markers(fsx, fsy)
        ax.scatter(
            fx[fm == ""],
            fy[fm == ""],
            s=60,
            marker="D",
            color=_FRONT,
            edgecolors="black",
            linewidths=0.6,
            label=f"Pareto front ({len(fx)})",
            zorder=5,
        )
        _edge_scatter(ax, fx, fy, fm, _FRONT, 60)
    else:
        _note(ax, "no feasible trial: Pareto front is empty")
    _note_offscale(ax, off)
    ax.set_xlabel(axis_label(ox))
    ax.set_ylabel(axis_label(oy))
    view.finish(ax, "x", ox.metric)
    view.finish(ax, "y", oy.metric)
    ax.grid(True, alpha=0.3)


def draw_grid(
    fig: Figure,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    objectives: Sequence[Objective],
    view: View,
) -> None:
    pairs = list(itertools.combinations(objectives, 2))
    cols = min(MAX_PANEL_COLS, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    for k, (ox, oy) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, k + 1)
        # A projected front is not a front in the plane, so no staircase joins its points.
        draw_pair(ax, trials, ok, pareto, ox, oy, view, staircase=False)
        ax.xaxis.label.set_fontsize("small")
        ax.yaxis.label.set_fontsize("small")
        if k == 0:
            ax.legend(loc="best", fontsize="x-small", framealpha=0.9)


def draw_single(
    ax: Axes,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    obj: Objective,
    view: View,
) -> None:
    if "trial" in trials.columns:
        x = pd.to_numeric(trials["trial"], errors="coerce").to_numpy(dtype=float)
    else:
        x = np.arange(len(trials), dtype=float)
    raw = _values(trials, obj.metric)
    y, sy = view.place(obj.metric, raw)
    okv = ok.to_numpy()
    off = _edge_markers(None, sy)
    _scatter_trials(ax, x, y, okv, off)

    order = np.argsort(x, kind="stable")
    xs, ys, oks = x[order], raw[order], okv[order]
    usable = oks & np.isfinite(ys)
    if usable.any():
        pick = np.fmax if obj.direction == "maximize" else np.fmin
        best, _ = view.place(obj.metric, pick.accumulate(np.where(usable, ys, np.nan)))
        ax.step(xs, best, where="post", color=_FRONT, linewidth=1.5, label="best so far", zorder=4)

    px = (
        pd.to_numeric(pareto["trial"], errors="coerce").to_numpy(dtype=float)
        if "trial" in pareto.columns
        else np.empty(0)
    )
    py, _ = view.place(obj.metric, _values(pareto, obj.metric))
    if len(px) and len(px) == len(py):
        ax.scatter(
            px,
            py,
            s=70,
            marker="*",
            color=_FRONT,
            edgecolors="black",
            linewidths=0.5,
            label=f"best ({len(px)})",
            zorder=5,
        )
    elif not len(pareto):
        _note(ax, "no feasible trial: Pareto front is empty")
    _note_offscale(ax, off)
    ax.set_xlabel("trial")
    ax.set_ylabel(axis_label(obj))
    view.finish(ax, "y", obj.metric)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small", framealpha=0.9)
