"""Pareto plots of a study, drawn off-screen with matplotlib's Agg canvas.

Figures are built from :class:`matplotlib.figure.Figure` and :class:`FigureCanvasAgg` directly,
never through ``pyplot``: no global figure registry, no GUI backend, safe to call from threads.

Axis ranges ignore degenerate networks (see :mod:`hwnas.report.ranges`): values outside are
drawn at the axis edge with a triangle pointing off-scale, and the panel says how many.

Example:
    >>> from pathlib import Path
    >>> write_pareto_png(  # doctest: +SKIP
    ...     Path("study/pareto.png"),
    ...     trials=trials_df,
    ...     pareto=pareto_df,
    ...     feasible=feasible,
    ...     objectives=[Objective("accuracy", "maximize"), Objective("latency_ms@raspi4")],
    ...     title="nb201 / nsga2",
    ... )
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwnas.errors import ConfigError, DataError
from hwnas.problem import Constraint, Objective
from hwnas.report.ranges import AxisRange, axis_ranges

log = logging.getLogger(__name__)

DPI = 120
_FEASIBLE = "tab:blue"
_INFEASIBLE = "0.6"
_FRONT = "tab:red"
_BOUND = "#9a6700"
_MAX_PANEL_COLS = 3
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


def write_pareto_png(
    path: Path,
    *,
    trials: pd.DataFrame,
    pareto: pd.DataFrame,
    feasible: pd.Series | None = None,
    objectives: Sequence[Objective],
    title: str = "",
    constraints: Sequence[Constraint] = (),
    ranges: Mapping[str, AxisRange] | None = None,
) -> None:
    """Draw the trials and the Pareto front of a study into a PNG file.

    One objective gives value against trial number with the best-so-far line; two give a scatter
    with the front joined by its attainment staircase; three or more give one panel per pair.
    Constraint bounds on a plotted metric are drawn dashed with the infeasible side shaded.

    Args:
        path: PNG file to write (parent folders are created).
        trials: every complete trial: columns ``trial``, ``arch`` and one per metric.
        pareto: the feasible non-dominated rows, same columns (may be empty).
        feasible: boolean per row of ``trials`` (aligned on its index); missing rows count as
            infeasible; ``None`` treats every trial as feasible.
        objectives: the study's objectives, in order.
        title: figure title.
        constraints: the study's constraints; bounds on a plotted metric are drawn.
        ranges: axis range per metric; ``None`` computes the robust ranges (values outside are
            drawn at the edge).

    Raises:
        ConfigError: when no objective is given.
        DataError: when a non-empty table lacks an objective column.

    Example:
        >>> write_pareto_png(Path("pareto.png"), trials=df, pareto=front,  # doctest: +SKIP
        ...                  feasible=ok, objectives=[Objective("accuracy", "maximize")])
    """
    fig = pareto_png_figure(
        trials=trials,
        pareto=pareto,
        feasible=feasible,
        objectives=objectives,
        title=title,
        constraints=constraints,
        ranges=ranges,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    log.debug("wrote Pareto plot %s (%d trials, %d on the front)", path, len(trials), len(pareto))


def pareto_png_figure(
    *,
    trials: pd.DataFrame,
    pareto: pd.DataFrame,
    feasible: pd.Series | None = None,
    objectives: Sequence[Objective],
    title: str = "",
    constraints: Sequence[Constraint] = (),
    ranges: Mapping[str, AxisRange] | None = None,
) -> Figure:
    """The matplotlib figure :func:`write_pareto_png` saves (same arguments, no path)."""
    objectives = list(objectives)
    if not objectives:
        raise ConfigError("write_pareto_png needs at least one objective, got none")
    for name, table in (("trials", trials), ("pareto", pareto)):
        missing = [o.metric for o in objectives if o.metric not in table.columns]
        if missing and len(table):
            raise DataError(
                f"{name} table lacks objective column(s) {missing}; "
                f"it has {list(map(str, table.columns))}"
            )
    if feasible is None:
        ok = pd.Series(True, index=trials.index)
    else:
        ok = feasible.reindex(trials.index, fill_value=False).astype(bool)
    if ranges is None:
        ranges = axis_ranges(
            trials,
            objectives=objectives,
            feasible=ok,
            pareto=pareto,
            constraints=constraints,
        )
    view = _View(ranges, list(constraints))

    m = len(objectives)
    if len(trials) == 0 or m <= 2:
        fig = Figure(figsize=(7.0, 5.0) if m >= 2 else (7.0, 4.5), dpi=DPI)
    else:
        n_pairs = m * (m - 1) // 2
        cols = min(_MAX_PANEL_COLS, n_pairs)
        rows = math.ceil(n_pairs / cols)
        fig = Figure(figsize=(4.3 * cols, 3.8 * rows + 0.4), dpi=DPI)
    FigureCanvasAgg(fig)

    if len(trials) == 0:
        _draw_empty(fig, objectives)
    elif m == 1:
        _draw_single(fig.add_subplot(), trials, ok, pareto, objectives[0], view)
    elif m == 2:
        ax = fig.add_subplot()
        _draw_pair(ax, trials, ok, pareto, objectives[0], objectives[1], view, staircase=True)
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    else:
        _draw_grid(fig, trials, ok, pareto, objectives, view)

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class _View:
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


def _draw_empty(fig: Figure, objectives: Sequence[Objective]) -> None:
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


def _draw_pair(
    ax: Axes,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    ox: Objective,
    oy: Objective,
    view: _View,
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


def _draw_grid(
    fig: Figure,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    objectives: Sequence[Objective],
    view: _View,
) -> None:
    pairs = list(itertools.combinations(objectives, 2))
    cols = min(_MAX_PANEL_COLS, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    for k, (ox, oy) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, k + 1)
        # A projected front is not a front in the plane, so no staircase joins its points.
        _draw_pair(ax, trials, ok, pareto, ox, oy, view, staircase=False)
        ax.xaxis.label.set_fontsize("small")
        ax.yaxis.label.set_fontsize("small")
        if k == 0:
            ax.legend(loc="best", fontsize="x-small", framealpha=0.9)


def _draw_single(
    ax: Axes,
    trials: pd.DataFrame,
    ok: pd.Series,
    pareto: pd.DataFrame,
    obj: Objective,
    view: _View,
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
