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

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwnas.errors import ConfigError, DataError
from hwnas.problem import Constraint, Objective
from hwnas.report.panels import (
    MAX_PANEL_COLS,
    View,
    axis_label,
    draw_empty,
    draw_grid,
    draw_pair,
    draw_single,
)
from hwnas.report.ranges import AxisRange, axis_ranges

__all__ = ["DPI", "axis_label", "pareto_png_figure", "write_pareto_png"]

log = logging.getLogger(__name__)

DPI = 120


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
    view = View(ranges, list(constraints))

    m = len(objectives)
    if len(trials) == 0 or m <= 2:
        fig = Figure(figsize=(7.0, 5.0) if m >= 2 else (7.0, 4.5), dpi=DPI)
    else:
        n_pairs = m * (m - 1) // 2
        cols = min(MAX_PANEL_COLS, n_pairs)
        rows = math.ceil(n_pairs / cols)
        fig = Figure(figsize=(4.3 * cols, 3.8 * rows + 0.4), dpi=DPI)
    FigureCanvasAgg(fig)

    if len(trials) == 0:
        draw_empty(fig, objectives)
    elif m == 1:
        draw_single(fig.add_subplot(), trials, ok, pareto, objectives[0], view)
    elif m == 2:
        ax = fig.add_subplot()
        draw_pair(ax, trials, ok, pareto, objectives[0], objectives[1], view, staircase=True)
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    else:
        draw_grid(fig, trials, ok, pareto, objectives, view)

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
