"""The report's view of a gradient-based search (DARTS and friends): the architecture weights per
epoch, what each run derived, and the hardware cost model the search loss used.

The input is the plain dict of :meth:`hwnas.oneshot.relax.result.GradientResult.to_dict` as the
study store keeps it, so this module needs neither torch nor the search code. A dict that does not
have that shape gives a short note in the section instead of an exception: the rest of the report
must still be written.

A collapse toward parameter-free operations (DARTS' known failure: ``skip_connect`` taking over
the cells) shows as one colour rising to 1 in most panels and as a high parameter-free edge count.

Example:
    >>> html, figures = gradient_section(result.to_dict())  # doctest: +SKIP
    >>> sorted(figures)  # doctest: +SKIP
    ['fig-arch-0', 'fig-arch-1']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hwnas.report import sections
from hwnas.report.figures import _layout
from hwnas.report.html import _figure_div, _figure_json

RESULT_FORMAT = "hwnas-gradient-search"  # the format field of GradientResult.to_dict()
# One colour per choice name, by first appearance; the same name keeps its colour in every panel.
# Twelve: mbv3's relaxation has the most names (9 kernel-expansion pairs and 3 depths).
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e7969c",
)
_COLS = 3
_ROW_HEIGHT = 250


def trajectory_figure(
    run: Mapping[str, Any], *, cost: Mapping[str, Any] | None = None
) -> go.Figure:
    """One panel per slot: each choice's probability over epochs (0 = the initial weights).

    A run with an expected cost per epoch gets one more panel with it, labelled with ``cost``'s
    metric and unit when given. ``run`` is one entry of the result dict's ``runs``.

    Raises:
        ValueError: when ``run`` does not have the shape of a saved run (what is wrong is said).

    Example:
        >>> run = {"label": "latency_weight=0", "slots": ["s0"], "choices": [["a", "b"]],
        ...        "trajectory": [[[0.5, 0.5]], [[0.1, 0.9]]]}
        >>> len(trajectory_figure(run).data)
        2
    """
    problem = _run_problem(run)
    if problem is not None:
        raise ValueError(f"trajectory_figure: {problem}")
    slots, choices = list(run["slots"]), [list(c) for c in run["choices"]]
    trajectory = run["trajectory"]
    expected = list(run.get("expected_cost") or ())
    panels = len(slots) + (1 if expected else 0)
    cols = max(1, min(_COLS, panels))
    rows = max(1, math.ceil(panels / cols))
    titles = [str(s) for s in slots] + ([_cost_label(cost)] if expected else [])
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.07 if cols > 1 else 0.0,
        vertical_spacing=min(0.5 / rows, 0.14) if rows > 1 else 0.0,
    )
    epochs = list(range(len(trajectory)))
    colours = _colours(choices)
    shown: set[str] = set()
    for i, names in enumerate(choices):
        r, c = i // cols + 1, i % cols + 1
        for j, name in enumerate(names):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[_number(epoch[i][j]) for epoch in trajectory],
                    mode="lines+markers" if len(epochs) <= 30 else "lines",
                    line=dict(color=colours[name], width=2),
                    marker=dict(size=4),
                    name=name,
                    legendgroup=name,
                    showlegend=name not in shown,
                    hovertemplate=(
                        f"{escape(str(slots[i]))}<br>{escape(name)}<br>"
                        "epoch %{x}: p = %{y:.3f}<extra></extra>"
                    ),
                ),
                row=r,
                col=c,
            )
            shown.add(name)
        fig.update_yaxes(range=[-0.02, 1.02], row=r, col=c)
        if c == 1:
            fig.update_yaxes(title_text="probability", row=r, col=c)
    if expected:
        k = len(slots)
        r, c = k // cols + 1, k % cols + 1
        label = _cost_label(cost)
        fig.add_trace(
            go.Scatter(
                x=list(range(len(expected))),
                y=[_number(v) for v in expected],
                mode="lines+markers" if len(expected) <= 30 else "lines",
                line=dict(color="#57606a", width=2, dash="dot"),
                marker=dict(size=4),
                name=label,
                showlegend=False,
                hovertemplate=f"epoch %{{x}}<br>{escape(label)} %{{y:.4g}}<extra></extra>",
            ),
            row=r,
            col=c,
        )
        unit = cost.get("unit") if isinstance(cost, Mapping) else None
        fig.update_yaxes(title_text=str(unit or "cost"), rangemode="tozero", row=r, col=c)
    for k in range(panels):
        # the epoch label under the lowest panel of each column only
        if k + cols >= panels:
            fig.update_xaxes(title_text="epoch (0 = initial)", row=k // cols + 1, col=k % cols + 1)
    fig.update_xaxes(rangemode="tozero")
    _layout(fig, _ROW_HEIGHT * rows + 110)
    fig.update_layout(
        title=dict(text=escape(str(run["label"])), x=0.0, xanchor="left", font=dict(size=14)),
        margin=dict(t=80, r=140),
        legend=dict(orientation="v", x=1.02, y=1.0, xanchor="left", yanchor="top"),
    )
    return fig


def gradient_section(result: Mapping[str, Any] | Any) -> tuple[str, dict[str, str]]:
    """The HTML of the "Architecture weights" section and the figures it references.

    Args:
        result: a :meth:`~hwnas.oneshot.relax.result.GradientResult.to_dict` dict.

    Returns:
        The section's HTML (text escaped) and ``{figure id: figure JSON}``, ids ``fig-arch-<i>``
        for run ``i``. A malformed ``result`` gives a muted note and no figures.

    Example:
        >>> html, figures = gradient_section({"format": "hwnas-gradient-search",  # doctest: +SKIP
        ...                                   "version": 1, "method": "darts", "runs": [...]})
    """
    problem = _problem(result)
    if problem is not None:
        note = (
            '<p class="muted" id="gradient-note">The gradient search result stored with the '
            f"study cannot be shown: {escape(problem)}.</p>"
        )
        return note, {}
    cost = result.get("cost")
    runs = result["runs"]
    wall = result.get("wall_s")
    intro = (
        f"<p>Method <b>{escape(str(result['method']))}</b>, {len(runs)} run(s)"
        + (f", {seconds:.1f} s in all" if (seconds := _number(wall)) is not None else "")
        + ". Each panel is one slot; each line is the probability of one choice over epochs "
        "(epoch 0: the initial weights). One parameter-free choice (<code>skip_connect</code>, "
        "pooling, <code>none</code>) rising to 1 in most slots is the known collapse of "
        "gradient-based search.</p>"
    )
    parts = [intro, f'<p id="gradient-cost">{_cost_line(cost)}</p>']
    figures: dict[str, str] = {}
    for i, run in enumerate(runs):
        fig_id = f"fig-arch-{i}"
        figures[fig_id] = _figure_json(trajectory_figure(run, cost=cost))
        parts.append(
            f"<h3>{escape(str(run['label']))}</h3>"
            + '<div class="wrap narrow">'
            + sections.kv_table(_run_facts(run, cost), f"gradient-run-{i}")
            + "</div>"
            + _figure_div(fig_id)
        )
    return "".join(parts), figures


def _run_facts(run: Mapping[str, Any], cost: Mapping[str, Any] | None) -> dict[str, str]:
    metrics = run.get("metrics") or {}
    final = run["trajectory"][-1]
    facts: dict[str, str] = {}
    if run.get("archs"):
        facts["derived architecture"] = str(run["archs"][0])
    for slot, names, probs in zip(run["slots"], run["choices"], final):
        values = [_number(p) for p in probs]
        j = max(range(len(values)), key=lambda k: _or(values[k], -1.0))
        p = values[j]
        facts[str(slot)] = f"{names[j]} (p {'–' if p is None else f'{p:.3f}'})"
    free = _metric(metrics, "parameter_free_edges")
    if free is not None:
        facts["parameter-free edges"] = f"{free:.0f} of {len(run['slots'])}"
    unit = f" ({cost.get('unit')})" if isinstance(cost, Mapping) and cost.get("unit") else ""
    for key, label in (
        ("expected_cost", f"expected cost{unit}"),
        ("derived_cost", f"derived cost{unit}"),
        ("valid_accuracy", "valid accuracy (derived, search network)"),
    ):
        value = _metric(metrics, key)
        if value is not None:
            facts[label] = sections.format_cell(value)
    seconds = _metric(metrics, "search_wall_s")
    if seconds is not None:
        facts["search wall time"] = f"{seconds:.1f} s"
    return facts


def _cost_line(cost: Mapping[str, Any] | None) -> str:
    """One sentence on the cost model: metric, source, rows read and how well it held."""
    if not cost:
        return "No hardware cost model: the search loss had no cost term."
    source = cost.get("source") or {}
    kind = str(source.get("kind", "unknown"))
    where = [f"{k} {source[k]}" for k in ("device", "path") if source.get(k)]
    rows = source.get("rows")
    n = f"{rows:.0f}" if _is_number(rows) else "an unknown number of"
    if kind == "table":
        device = source.get("device", "?")
        read = f"The search read {n} rows of the {device} device table."
    else:
        what = "the space's FLOPs" if kind == "flops" else f"the {kind}'s values"
        read = f"The search read no rows of a device table: the cost is fitted to {what} of {n} "
        read += "sampled archs."
    fit = [
        f"{label} {sections.format_cell(source[key])}"
        for key, label in (
            ("cv_within_10pct", "5-fold CV share within ±10 %"),
            ("cv_spearman", "CV Spearman"),
        )
        if _is_number(source.get(key))
    ]
    text = (
        f"Cost model: <b>{escape(str(cost.get('metric', '?')))}</b>"
        f" ({escape(str(cost.get('unit', '')))}), source {escape(kind)}"
        + (f" ({escape(', '.join(where))})" if where else "")
        + f". {escape(read)}"
        + (f" Additive fit: {escape(', '.join(fit))}." if fit else "")
    )
    return text


def _cost_label(cost: Mapping[str, Any] | None) -> str:
    if not isinstance(cost, Mapping):
        return "expected cost"
    unit = f" ({cost['unit']})" if cost.get("unit") else ""
    return f"expected {cost.get('metric', 'cost')}{unit}"


def _colours(choices: Sequence[Sequence[str]]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for names in choices:
        for name in names:
            if name not in colours:
                colours[name] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def _problem(result: Any) -> str | None:
    """What makes ``result`` unusable, or None when its shape is that of a saved result."""
    if not isinstance(result, Mapping):
        return f"expected a mapping, got {type(result).__name__}"
    if result.get("format") != RESULT_FORMAT:
        return f"format {result.get('format')!r} is not {RESULT_FORMAT!r}"
    if not isinstance(result.get("method"), str):
        return "no method name"
    runs = result.get("runs")
    if not isinstance(runs, list) or not runs:
        return "no runs"
    cost = result.get("cost")
    if cost is not None and not (
        isinstance(cost, Mapping) and isinstance(cost.get("source", {}), Mapping)
    ):
        return "the cost model is not a mapping with a source mapping"
    for k, run in enumerate(runs):
        problem = _run_problem(run)
        if problem is not None:
            return f"run {k}: {problem}"
    return None


def _run_problem(run: Any) -> str | None:
    if not isinstance(run, Mapping):
        return "not a mapping"
    slots, choices, traj = run.get("slots"), run.get("choices"), run.get("trajectory")
    if not isinstance(run.get("label"), str):
        return "no label"
    if not isinstance(slots, list) or not slots:
        return "no slots"
    if not isinstance(choices, list) or len(choices) != len(slots):
        return "choices do not match the slots"
    if not all(isinstance(c, list) and c and all(isinstance(n, str) for n in c) for c in choices):
        return "every slot needs a list of choice names"
    if not isinstance(traj, list) or not traj:
        return "no trajectory"
    widths = [len(c) for c in choices]
    for e, epoch in enumerate(traj):
        if (
            not isinstance(epoch, list)
            or [len(p) if isinstance(p, list) else -1 for p in epoch] != widths
        ):
            return f"trajectory epoch {e} does not have one probability per choice of each slot"
        if not all(_is_number(v) for p in epoch for v in p):
            return f"trajectory epoch {e} holds a value that is not a number"
    expected = run.get("expected_cost", [])
    if expected is not None and not (
        isinstance(expected, list) and all(_is_number(v) for v in expected)
    ):
        return "expected_cost is not a list of numbers"
    if not isinstance(run.get("metrics", {}), Mapping):
        return "metrics is not a mapping"
    archs = run.get("archs", [])
    if not isinstance(archs, list):
        return "archs is not a list"
    return None


def _metric(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return _number(value) if _is_number(value) else None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """A finite float, or None (a gap in the plot) for NaN, infinities and non-numbers."""
    if not _is_number(value):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


__all__ = ["gradient_section", "trajectory_figure"]
