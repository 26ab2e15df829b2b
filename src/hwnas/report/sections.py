"""HTML sections of the report: key/value lists, the trial tables, failures, noise, notes.

Every function returns an HTML fragment with all text escaped; the page layout is in
:mod:`hwnas.report.html`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd

from hwnas.problem import Constraint, Objective
from hwnas.report.curves import Curves
from hwnas.report.ranges import AxisRange
from hwnas.report.tables import noise_summary
from hwnas.trial import Trial

COLLAPSE_ROWS = 50
# Metric columns of the front's table; the rest are in the all-trials table and in the hover.
FRONT_METRIC_COLUMNS = 8


def format_cell(value: object) -> str:
    """Display text of one table value: floats to 4 significant digits, integers as they are.

    Example:
        >>> format_cell(0.912345), format_cell(12), format_cell(float("nan"))
        ('0.9123', '12', '–')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        return "–" if math.isnan(f) else f"{f:.4g}"
    return str(value)


def header(name: str) -> str:
    """A column name escaped, with line-break chances after ``_`` and before ``@``.

    Example:
        >>> header("latency_ms@raspi4")
        'latency_<wbr>ms<wbr>@raspi4'
    """
    return escape(name).replace("_", "_<wbr>").replace("@", "<wbr>@")


def kv_table(items: Mapping[str, object], table_id: str) -> str:
    """A two-column key/value table (floats shown with 4 significant digits)."""
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(format_cell(v))}</td></tr>"
        for k, v in items.items()
    )
    return f'<table class="kv" id="{escape(table_id)}"><tbody>{rows}</tbody></table>'


def problem_lists(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> str:
    objs = "".join(
        f"<li><b>{escape(o.metric)}</b>: {escape(o.direction)} "
        f'<span class="muted">({"higher" if o.direction == "maximize" else "lower"} is better)'
        "</span></li>"
        for o in objectives
    )
    if constraints:
        cons = "".join(f"<li><code>{escape(str(c))}</code></li>" for c in constraints)
        cons_html = f'<ul id="constraints">{cons}</ul>'
    else:
        cons_html = '<p class="muted" id="constraints">No constraints.</p>'
    return (
        f'<div class="problem"><div><h3>Objectives</h3><ul id="objectives">{objs}</ul></div>'
        f"<div><h3>Constraints</h3>{cons_html}</div></div>"
    )


def ordered_columns(
    table: pd.DataFrame, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[str]:
    """Objective columns, then constraint columns, then the rest in their original order."""
    first: list[str] = []
    for name in [o.metric for o in objectives] + [c.metric for c in constraints]:
        if name in table.columns and name not in first:
            first.append(name)
    return first + [str(c) for c in table.columns if c not in first]


def front_columns(
    pareto: pd.DataFrame, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[str]:
    """The front table's columns: up to ``FRONT_METRIC_COLUMNS`` metrics (objectives and
    constraint metrics first), then ``trial`` and ``arch`` (which wraps to fit the page)."""
    metrics = [
        c for c in ordered_columns(pareto, objectives, constraints) if c not in ("trial", "arch")
    ]
    fixed = len({o.metric for o in objectives} | {c.metric for c in constraints})
    shown = metrics[: max(FRONT_METRIC_COLUMNS, fixed)]
    return [*shown, *(c for c in ("trial", "arch") if c in pareto.columns)]


def sort_best_first(table: pd.DataFrame, objective: Objective | None) -> pd.DataFrame:
    if objective is None or objective.metric not in table.columns:
        return table
    return table.sort_values(
        objective.metric,
        ascending=objective.direction == "minimize",
        kind="stable",
        na_position="last",
    )


def data_table(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    table_id: str,
    constraints: Sequence[Constraint],
    front: set[object] | None = None,
    css: str = "",
) -> str:
    """A table of trials; rows on the front are bold, infeasible ones grey."""
    head = "".join(f"<th>{header(c)}</th>" for c in columns)
    # Only constraints the table can be checked against grey out rows.
    checkable = [c for c in constraints if c.metric in table.columns]
    body: list[str] = []
    for record in table[list(columns)].to_dict(orient="records"):
        classes = []
        if front is not None and record.get("trial") in front:
            classes.append("front")
        if not _row_feasible(record, checkable):
            classes.append("infeasible")
        cells = []
        for col in columns:
            value = record[col]
            kind = "arch" if col == "arch" else "num" if _is_number(value) else "text"
            cells.append(f'<td class="{kind}">{escape(format_cell(value))}</td>')
        attr = f' class="{" ".join(classes)}"' if classes else ""
        body.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return (
        f'<div class="wrap {css}"><table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def all_trials_section(
    trials: pd.DataFrame,
    pareto: pd.DataFrame,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> str:
    if not len(trials):
        return '<p class="muted">No completed trials.</p>'
    front = set(pareto["trial"].tolist()) if "trial" in pareto.columns else set()
    columns = ordered_columns(trials, objectives, constraints)
    table = data_table(
        trials, columns, table_id="trials", constraints=constraints, front=front, css="tall"
    )
    is_open = " open" if len(trials) <= COLLAPSE_ROWS else ""
    return (
        f'<details id="all-trials"{is_open}><summary>Show all {len(trials)} trials</summary>'
        f"{table}</details>"
    )


def failures_section(failures: Sequence[Trial]) -> str:
    """Failed trials: number, arch, reason and attempts (they have no metrics to plot)."""
    if not failures:
        return '<p class="muted">No trial failed.</p>'
    rows = "".join(
        f'<tr><td class="num">{t.number}</td><td class="arch">{escape(t.arch)}</td>'
        f'<td class="reason">{escape(t.error or "no reason recorded")}</td>'
        f'<td class="num">{t.attempts}</td><td class="num">{t.duration_s:.3g}</td></tr>'
        for t in sorted(failures, key=lambda t: t.number)
    )
    return (
        '<div class="wrap"><table id="failures"><thead><tr><th>trial</th><th>arch</th>'
        "<th>reason</th><th>attempts</th><th>seconds</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def noise_section(trials: pd.DataFrame) -> str | None:
    """Per-device spread of repeated latency measurements, or ``None`` when none was measured."""
    summary = noise_summary(trials)
    if summary.empty:
        return None
    head = "".join(f"<th>{header(c)}</th>" for c in summary.columns)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"text" if k == "device" else "num"}">{escape(format_cell(v))}</td>'
            for k, v in record.items()
        )
        + "</tr>"
        for record in summary.to_dict(orient="records")
    )
    return (
        '<p class="muted">Spread of the repeated timings behind each measured latency: '
        "CV = standard deviation / mean, IQR = interquartile range. The Pareto view draws the "
        "IQR as error bars (±IQR/2) on measured latency axes.</p>"
        f'<div class="wrap"><table id="noise"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def curves_table(curves: Curves) -> str:
    """The progress figures at round numbers of evaluations, as text."""
    cols = ["evaluations", "hypervolume (observed scale)"]
    if curves.regret is not None:
        cols.append(f"regret ({curves.regret_metric} points)")
    if curves.hv_gap is not None:
        cols.append("HV gap")
    rows = []
    for mark in curves.checkpoints():
        i = curves.at(mark)
        assert i is not None
        cells = [str(mark), f"{curves.hypervolume[i]:.4f}"]
        if curves.regret is not None:
            cells.append(f"{curves.regret[i]:.4g}")
        if curves.hv_gap is not None:
            cells.append(f"{curves.hv_gap[i]:.4g}")
        rows.append("<tr>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    return (
        f'<div class="wrap narrow"><table id="progress"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def offscale_note(
    trials: pd.DataFrame, ranges: Mapping[str, AxisRange], metrics: Sequence[str]
) -> str:
    """Which values lie outside the plotted ranges (drawn at the edge), per metric."""
    parts = []
    for m in metrics:
        if m not in ranges or m not in trials.columns:
            continue
        side = ranges[m].side(pd.to_numeric(trials[m], errors="coerce").to_numpy(dtype=float))
        below, above = int((side < 0).sum()), int((side > 0).sum())
        if below or above:
            words = [
                f"{below} below {ranges[m].lo:.4g}" if below else "",
                f"{above} above {ranges[m].hi:.4g}" if above else "",
            ]
            parts.append(f"<code>{escape(m)}</code>: {' and '.join(w for w in words if w)}")
    if not parts:
        return ""
    return (
        '<p class="offscale" id="offscale">Off-scale (e.g. degenerate networks): '
        + "; ".join(parts)
        + ". They are drawn at the axis edge as ▲▼◀▶; hover shows their values.</p>"
    )


def notes_list(notes: Sequence[str]) -> str:
    return '<ul id="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def hover_texts(
    trials: pd.DataFrame, ok: np.ndarray, on_front: np.ndarray, constraints: Sequence[Constraint]
) -> list[str]:
    """Plotly hover text per trial row: number, status, arch string and every metric."""
    metrics = [c for c in map(str, trials.columns) if c not in ("trial", "arch")]
    out = []
    for i, record in enumerate(trials.to_dict(orient="records")):
        status = "Pareto front" if on_front[i] else "feasible" if ok[i] else "infeasible"
        if not ok[i]:
            broken = [str(c) for c in constraints if c.violation(_metrics(record)) > 0]
            if broken:
                status += ": violates " + "; ".join(broken)
        lines = [
            f"<b>trial {record['trial']}</b> · {escape(status)}",
            escape(str(record["arch"])),
            *(f"{escape(m)}: {_fmt(record.get(m))}" for m in metrics),
        ]
        out.append("<br>".join(lines))
    return out


def _metrics(record: Mapping[str, object]) -> dict[str, float]:
    out = {}
    for k, v in record.items():
        try:
            out[str(k)] = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return out


def _fmt(value: object) -> str:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return escape(str(value))
    return "–" if math.isnan(f) else f"{f:.6g}"


def _row_feasible(row: Mapping[Hashable, object], constraints: Sequence[Constraint]) -> bool:
    metrics: dict[str, float] = {}
    for c in constraints:
        value = row.get(c.metric)
        metrics[c.metric] = float(value) if isinstance(value, numbers.Real) else math.nan
    return all(c.violation(metrics) <= 0.0 for c in constraints)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
