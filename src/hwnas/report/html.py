"""A single self-contained HTML report of a study: summary, plot, Pareto front, all trials.

The file has no scripts and no network references: CSS is inline and the plot is embedded as a
base64 ``data:`` URI, so the report still works after it is moved or mailed.

Example:
    >>> write_report_html(  # doctest: +SKIP
    ...     Path("study/report.html"),
    ...     title="nb201 / nsga2",
    ...     summary={"strategy": "nsga2", "seed": "0"},
    ...     trials=trials_df,
    ...     pareto=pareto_df,
    ...     objectives=problem.objectives,
    ...     constraints=problem.constraints,
    ...     png=Path("study/pareto.png"),
    ... )
"""

from __future__ import annotations

import base64
import logging
import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from html import escape
from pathlib import Path

import pandas as pd

from hwnas.errors import DataError
from hwnas.problem import Constraint, Objective

log = logging.getLogger(__name__)

COLLAPSE_ROWS = 50

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #1f2328;
       line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .25rem; }
.wrap { overflow: auto; max-height: 75vh; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: collapse; font-size: 0.88rem; }
.wrap table { width: 100%; }
th, td { padding: 0.3rem 0.6rem; text-align: left; white-space: nowrap; }
thead th { position: sticky; top: 0; background: #f0f3f6; border-bottom: 1px solid #d0d7de;
           z-index: 1; }
tbody tr:nth-child(even) { background: #f6f8fa; }
tbody tr:hover { background: #fff8c5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.arch { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
          font-size: 0.8rem; }
tr.front td { font-weight: 600; }
tr.infeasible td { color: #8c959f; }
table.kv th { background: none; position: static; color: #57606a; font-weight: 500; }
table.kv td, table.kv th { border-bottom: 1px solid #eaeef2; }
img.plot { max-width: 100%; height: auto; border: 1px solid #d0d7de; border-radius: 6px; }
.muted { color: #57606a; }
summary { cursor: pointer; margin: 0.5rem 0; }
ul { padding-left: 1.2rem; }
"""


def write_report_html(
    path: Path,
    *,
    title: str,
    summary: Mapping[str, str],
    trials: pd.DataFrame,
    pareto: pd.DataFrame,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    png: Path | None,
) -> None:
    """Write a study report as one self-contained HTML file.

    Args:
        path: HTML file to write (parent folders are created).
        title: page heading.
        summary: key/value facts shown under the heading, in the given order.
        trials: every complete trial: columns ``trial``, ``arch`` and one per metric.
        pareto: the feasible non-dominated rows, same columns (may be empty).
        objectives: the study's objectives; the first one orders the Pareto table.
        constraints: the study's constraints (may be empty).
        png: Pareto plot to embed, or ``None`` for none.

    Raises:
        DataError: when ``png`` is given but is not a file.

    Example:
        >>> write_report_html(Path("report.html"), title="demo", summary={"seed": "0"},
        ...                   trials=df, pareto=front, objectives=objs, constraints=(),
        ...                   png=None)  # doctest: +SKIP
    """
    objectives = list(objectives)
    constraints = list(constraints)
    front_cols = _ordered_columns(pareto, objectives, constraints)
    trial_cols = _ordered_columns(trials, objectives, constraints)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        _summary_table(summary),
        "<h2>Objectives and constraints</h2>",
        _problem_lists(objectives, constraints),
        "<h2>Pareto plot</h2>",
        _plot(png),
        f"<h2>Pareto front ({len(pareto)})</h2>",
    ]
    if len(pareto):
        front = _sort_best_first(pareto, objectives[0] if objectives else None)
        parts.append(_table(front, front_cols, table_id="pareto", constraints=constraints))
    else:
        parts.append('<p class="muted">No feasible trial: the Pareto front is empty.</p>')

    parts.append(f"<h2>All trials ({len(trials)})</h2>")
    if len(trials):
        on_front = _front_trials(pareto)
        table = _table(
            trials, trial_cols, table_id="trials", constraints=constraints, front=on_front
        )
        if len(trials) > COLLAPSE_ROWS:
            table = f"<details><summary>Show all {len(trials)} trials</summary>{table}</details>"
        parts.append(table)
    else:
        parts.append('<p class="muted">No completed trials.</p>')
    parts += ['<p class="muted">Generated by hwnas.</p>', "</body>", "</html>", ""]

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    log.debug("wrote HTML report %s (%d trials, %d on the front)", path, len(trials), len(pareto))


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


def _ordered_columns(
    table: pd.DataFrame, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> list[str]:
    """Objective columns, then constraint columns, then the rest in their original order."""
    first: list[str] = []
    for name in [o.metric for o in objectives] + [c.metric for c in constraints]:
        if name in table.columns and name not in first:
            first.append(name)
    return first + [str(c) for c in table.columns if c not in first]


def _sort_best_first(table: pd.DataFrame, objective: Objective | None) -> pd.DataFrame:
    if objective is None or objective.metric not in table.columns:
        return table
    return table.sort_values(
        objective.metric,
        ascending=objective.direction == "minimize",
        kind="stable",
        na_position="last",
    )


def _front_trials(pareto: pd.DataFrame) -> set[object]:
    if "trial" not in pareto.columns:
        return set()
    return set(pareto["trial"].tolist())


def _summary_table(summary: Mapping[str, str]) -> str:
    if not summary:
        return ""
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in summary.items()
    )
    return f'<table class="kv" id="summary"><tbody>{rows}</tbody></table>'


def _problem_lists(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> str:
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
    return f'<h3>Objectives</h3><ul id="objectives">{objs}</ul><h3>Constraints</h3>{cons_html}'


def _plot(png: Path | None) -> str:
    if png is None:
        return '<p class="muted">No plot.</p>'
    if not png.is_file():
        raise DataError(f"Pareto plot {str(png)!r} does not exist; write it before the report")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<img class="plot" alt="Pareto plot" src="data:image/png;base64,{data}">'


def _row_feasible(row: Mapping[Hashable, object], constraints: Sequence[Constraint]) -> bool:
    metrics: dict[str, float] = {}
    for c in constraints:
        value = row.get(c.metric)
        metrics[c.metric] = float(value) if isinstance(value, numbers.Real) else math.nan
    return all(c.violation(metrics) <= 0.0 for c in constraints)


def _table(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    table_id: str,
    constraints: Sequence[Constraint],
    front: set[object] | None = None,
) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
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
        f'<div class="wrap"><table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
