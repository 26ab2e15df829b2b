"""Plotly figures of the HTML report: the Pareto view and progress over evaluations.

Every array is handed to Plotly as a plain list (Plotly writes numpy arrays as base64 blobs), so
the figure JSON in the page stays readable and testable.

Example:
    >>> fig = pareto_figure(trials_df, feasible=ok, pareto=front_df,  # doctest: +SKIP
    ...                     objectives=objs, constraints=cons, ranges=ranges)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hwnas.problem import Constraint, Objective
from hwnas.report.curves import OBSERVED_REF, Curves
from hwnas.report.panels import axis_label
from hwnas.report.ranges import AxisRange
from hwnas.report.sections import hover_texts
from hwnas.report.tables import iqr_column

FEASIBLE = "#1f6feb"
INFEASIBLE = "#8c959f"
FRONT = "#cf222e"
BOUND = "#9a6700"
_EDGE_SYMBOL = {
    ("x", -1): "triangle-left",
    ("x", 1): "triangle-right",
    ("y", -1): "triangle-down",
    ("y", 1): "triangle-up",
}
_MAX_COLS = 3
_FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", size=12)


def pareto_figure(
    trials: pd.DataFrame,
    *,
    feasible: pd.Series,
    pareto: pd.DataFrame,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    ranges: Mapping[str, AxisRange],
) -> go.Figure:
    """The interactive Pareto view: one scatter for 2 objectives, one panel per pair for 3+,
    the objective over trials for 1.

    Hover shows the trial's arch string and every metric. The front is drawn in red (joined by
    its attainment staircase for 2 objectives), infeasible trials as grey rings, constraint bounds
    on a plotted metric as a dashed line with the infeasible side shaded, and measured latency's
    interquartile range as error bars. Values outside ``ranges`` are drawn at the axis edge with a
    triangle pointing off-scale.
    """
    objectives = list(objectives)
    ok = feasible.reindex(trials.index, fill_value=False).astype(bool).to_numpy()
    on_front = trials["trial"].isin(set(pareto["trial"])).to_numpy() if len(trials) else ok
    groups: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
        "infeasible": (~ok, dict(color="rgba(0,0,0,0)", line=dict(color=INFEASIBLE, width=1.2))),
        "feasible": (ok & ~on_front, dict(color=FEASIBLE, opacity=0.7)),
        "Pareto front": (on_front, dict(color=FRONT, line=dict(color="black", width=0.8))),
    }
    hover = hover_texts(trials, ok, on_front, constraints)
    if len(objectives) == 1:
        return _single_figure(trials, ok, groups, hover, objectives[0], constraints, ranges)

    pairs = list(itertools.combinations(objectives, 2))
    cols = min(_MAX_COLS, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig = make_subplots(
        rows=rows, cols=cols, horizontal_spacing=0.09 if cols > 1 else 0.0, vertical_spacing=0.16
    )
    for k, (ox, oy) in enumerate(pairs):
        r, c = k // cols + 1, k % cols + 1
        for name, (mask, marker) in groups.items():
            if not mask.any():
                continue
            picked = _inside_first(trials, mask, [ox.metric, oy.metric], ranges)
            xs, ys = trials[ox.metric].iloc[picked], trials[oy.metric].iloc[picked]
            x, y, symbols = _placed(xs, ys, ranges.get(ox.metric), ranges.get(oy.metric))
            base = "diamond" if name == "Pareto front" else "circle"
            trace = go.Scatter(
                x=x,
                y=y,
                mode="markers",
                name=f"{name} ({int(mask.sum())})",
                legendgroup=name,
                showlegend=k == 0,
                marker=dict(
                    symbol=[s or base for s in symbols],
                    size=11 if name == "Pareto front" else 8,
                    **marker,
                ),
                text=[hover[i] for i in picked],
                hovertemplate="%{text}<extra></extra>",
                cliponaxis=False,
                error_x=_error_bars(trials, picked, ox.metric, symbols),
                error_y=_error_bars(trials, picked, oy.metric, symbols),
            )
            fig.add_trace(trace, row=r, col=c)
        if len(objectives) == 2 and on_front.sum() > 1:
            fig.add_trace(_staircase(trials[on_front], ox, oy, ranges), row=r, col=c)
        for axis, obj in (("x", ox), ("y", oy)):
            _bounds(fig, axis, obj.metric, constraints, ranges.get(obj.metric), r, c)
            update = fig.update_xaxes if axis == "x" else fig.update_yaxes
            rng = ranges.get(obj.metric)
            update(
                title_text=axis_label(obj),
                range=[rng.lo, rng.hi] if rng else None,
                row=r,
                col=c,
            )
    height = 540 if rows * cols == 1 else 380 * rows + 60
    return _layout(fig, height)


def progress_figure(curves: Curves) -> go.Figure:
    """Hypervolume of the feasible front over charged evaluations (observed-range scaling)."""
    fig = go.Figure(
        go.Scatter(
            x=list(curves.evaluations),
            y=list(curves.hypervolume),
            mode="lines+markers",
            line=dict(shape="hv", color=FEASIBLE, width=2),
            marker=dict(size=4),
            name="hypervolume",
            hovertemplate="%{x} evaluations<br>hypervolume %{y:.4f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="charged evaluations (tell order)", rangemode="tozero")
    fig.update_yaxes(
        title_text=f"hypervolume (observed scale, ref. {OBSERVED_REF})",
        rangemode="tozero",
    )
    return _layout(fig, 380, legend=False)


def reference_figure(curves: Curves) -> go.Figure:
    """Band regret (when defined) and HV gap against the reference table, over evaluations."""
    panels = []
    if curves.regret is not None:
        panels.append(
            (
                list(curves.regret),
                f"regret ({curves.regret_metric} points)",
                "%{x} evaluations<br>regret %{y:.4g}<extra></extra>",
            )
        )
    if curves.hv_gap is not None:
        panels.append(
            (
                list(curves.hv_gap),
                "HV gap (1 − HV/HV*)",
                "%{x} evaluations<br>HV gap %{y:.4g}<extra></extra>",
            )
        )
    fig = make_subplots(rows=1, cols=max(1, len(panels)), horizontal_spacing=0.12)
    for k, (values, title, template) in enumerate(panels):
        fig.add_trace(
            go.Scatter(
                x=list(curves.evaluations),
                y=values,
                mode="lines+markers",
                line=dict(shape="hv", color=FRONT, width=2),
                marker=dict(size=4),
                name=title,
                hovertemplate=template,
            ),
            row=1,
            col=k + 1,
        )
        fig.update_xaxes(title_text="charged evaluations (tell order)", row=1, col=k + 1)
        fig.update_yaxes(title_text=title, rangemode="tozero", row=1, col=k + 1)
    return _layout(fig, 380, legend=False)


def _single_figure(
    trials: pd.DataFrame,
    ok: np.ndarray,
    groups: Mapping[str, tuple[np.ndarray, dict[str, Any]]],
    hover: list[str],
    obj: Objective,
    constraints: Sequence[Constraint],
    ranges: Mapping[str, AxisRange],
) -> go.Figure:
    fig = make_subplots(rows=1, cols=1)
    rng = ranges.get(obj.metric)
    for name, (mask, marker) in groups.items():
        if not mask.any():
            continue
        picked = _inside_first(trials, mask, [obj.metric], ranges)
        x = trials["trial"].iloc[picked].astype(float).tolist()
        _, y, symbols = _placed(None, trials[obj.metric].iloc[picked], None, rng)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                name=f"{'best' if name == 'Pareto front' else name} ({int(mask.sum())})",
                marker=dict(
                    symbol=[s or ("star" if name == "Pareto front" else "circle") for s in symbols],
                    size=13 if name == "Pareto front" else 8,
                    **marker,
                ),
                text=[hover[i] for i in picked],
                hovertemplate="%{text}<extra></extra>",
                cliponaxis=False,
            )
        )
    order = np.argsort(trials["trial"].to_numpy(), kind="stable")
    values = pd.to_numeric(trials[obj.metric], errors="coerce").to_numpy(dtype=float)[order]
    usable = np.where(ok[order] & np.isfinite(values), values, np.nan)
    if np.isfinite(usable).any():
        pick = np.fmax if obj.direction == "maximize" else np.fmin
        best = pick.accumulate(usable)
        best = rng.clamp(best) if rng else best
        fig.add_trace(
            go.Scatter(
                x=trials["trial"].to_numpy()[order].astype(float).tolist(),
                y=_floats(best),
                mode="lines",
                line=dict(shape="hv", color=FRONT, width=2),
                name="best feasible so far",
                hoverinfo="skip",
            )
        )
    _bounds(fig, "y", obj.metric, constraints, rng, 1, 1)
    fig.update_xaxes(title_text="trial (ask order)")
    fig.update_yaxes(title_text=axis_label(obj), range=[rng.lo, rng.hi] if rng else None)
    return _layout(fig, 480)


def _placed(
    xs: pd.Series | None,
    ys: pd.Series,
    rx: AxisRange | None,
    ry: AxisRange | None,
) -> tuple[list[float | None], list[float | None], list[str | None]]:
    """Coordinates clamped into the ranges and, for clamped points, an edge symbol."""
    symbols: list[str | None] = [None] * len(ys)
    out: list[list[float | None]] = []
    for axis, values, rng in (("x", xs, rx), ("y", ys, ry)):
        if values is None:
            out.append([])
            continue
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        if rng is not None:
            for i, side in enumerate(rng.side(v)):
                if side:
                    symbols[i] = _EDGE_SYMBOL[(axis, int(side))]
            v = rng.clamp(v)
        out.append(_floats(v))
    return out[0], out[1], symbols


def _inside_first(
    trials: pd.DataFrame, mask: np.ndarray, metrics: Sequence[str], ranges: Mapping[str, AxisRange]
) -> np.ndarray:
    """Row positions of ``mask``, those inside every range first (the legend shows the first
    point's symbol, which must not be an off-scale triangle)."""
    rows = np.flatnonzero(mask)
    off = np.zeros(len(rows), dtype=bool)
    for m in metrics:
        if m in ranges:
            v = pd.to_numeric(trials[m].iloc[rows], errors="coerce").to_numpy(dtype=float)
            off |= ranges[m].side(v) != 0
    return np.concatenate([rows[~off], rows[off]])


def _error_bars(
    trials: pd.DataFrame, rows: np.ndarray, metric: str, symbols: list[str | None]
) -> dict[str, object] | None:
    """Half the interquartile range each side of a measured latency (none on clamped points)."""
    col = iqr_column(metric)
    if col is None or col not in trials.columns:
        return None
    half = pd.to_numeric(trials[col].iloc[rows], errors="coerce").to_numpy(dtype=float) / 2.0
    half = np.where(np.isfinite(half) & np.array([s is None for s in symbols]), half, 0.0)
    return dict(type="data", array=_floats(half), visible=True, thickness=1, width=0)


def _staircase(
    front: pd.DataFrame, ox: Objective, oy: Objective, ranges: Mapping[str, AxisRange]
) -> go.Scatter:
    fx = pd.to_numeric(front[ox.metric], errors="coerce").to_numpy(dtype=float)
    fy = pd.to_numeric(front[oy.metric], errors="coerce").to_numpy(dtype=float)
    order = np.argsort(fx, kind="stable")
    fx, fy = fx[order], fy[order]
    if ox.metric in ranges:
        fx = ranges[ox.metric].clamp(fx)
    if oy.metric in ranges:
        fy = ranges[oy.metric].clamp(fy)
    # The dominated region's boundary holds each point's y until the next point when x is
    # minimised, and from the previous point when x is maximised.
    shape = "hv" if ox.direction == "minimize" else "vh"
    return go.Scatter(
        x=_floats(fx),
        y=_floats(fy),
        mode="lines",
        line=dict(shape=shape, color=FRONT, width=1.5),
        name="attainment staircase",
        legendgroup="Pareto front",
        showlegend=False,
        hoverinfo="skip",
    )


def _bounds(
    fig: go.Figure,
    axis: str,
    metric: str,
    constraints: Sequence[Constraint],
    rng: AxisRange | None,
    row: int,
    col: int,
) -> None:
    """Dashed line at each bound on ``metric`` and its infeasible side shaded, when in range."""
    for c in constraints:
        bound = c.le if c.le is not None else c.ge
        if c.metric != metric or bound is None or (rng is not None and not rng.contains(bound)):
            continue
        line = fig.add_vline if axis == "x" else fig.add_hline
        band = fig.add_vrect if axis == "x" else fig.add_hrect
        line(bound, line=dict(color=BOUND, dash="dash", width=1.5), row=row, col=col)
        if rng is not None:
            lo, hi = (bound, rng.hi) if c.le is not None else (rng.lo, bound)
            band(
                lo, hi, fillcolor=BOUND, opacity=0.08, line_width=0, layer="below", row=row, col=col
            )
        fig.add_annotation(
            text=escape(str(c)),
            showarrow=False,
            font=dict(color=BOUND, size=11),
            **_annotation_place(axis, bound, c.le is not None, fig, row, col),
        )


def _annotation_place(
    axis: str, bound: float, le: bool, fig: go.Figure, row: int, col: int
) -> dict[str, object]:
    sub = fig.get_subplot(row, col)
    xref = sub.xaxis.plotly_name.replace("axis", "")
    yref = sub.yaxis.plotly_name.replace("axis", "")
    if axis == "x":
        return dict(x=bound, y=1.0, xref=xref, yref=f"{yref} domain", xanchor="left", yanchor="top")
    return dict(x=1.0, y=bound, xref=f"{xref} domain", yref=yref, xanchor="right", yanchor="bottom")


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _layout(fig: go.Figure, height: int, *, legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        font=_FONT,
        margin=dict(l=70, r=20, t=40, b=60),
        hoverlabel=dict(align="left", font=dict(family="ui-monospace, Menlo, monospace", size=11)),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0.0),
    )
    fig.update_xaxes(showline=True, linecolor="#d0d7de", zeroline=False)
    fig.update_yaxes(showline=True, linecolor="#d0d7de", zeroline=False)
    return fig


__all__ = ["pareto_figure", "progress_figure", "reference_figure"]
