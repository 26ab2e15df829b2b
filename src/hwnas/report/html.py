"""One self-contained HTML report of a study: summary, interactive Pareto view, front, progress,
failures, measurement noise, diagnostics, notes and all trials.

plotly.js is inlined and the figures are embedded as JSON, so the page has no network reference
and still works offline after it is moved or mailed. A tiny inline script records any script
error into the ``data-script-errors`` attribute of ``<html>`` and the number of rendered plots
into ``data-plots-rendered``, which is how the browser test reads the page back.

Example:
    >>> write_report_html(  # doctest: +SKIP
    ...     Path("study/report.html"),
    ...     title="nb201 / nsga2",
    ...     summary={"strategy": "nsga2", "seed": "0"},
    ...     trials=trials_df,
    ...     pareto=pareto_df,
    ...     objectives=problem.objectives,
    ...     constraints=problem.constraints,
    ... )
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from pathlib import Path

import pandas as pd

from hwnas.problem import Constraint, Objective
from hwnas.report import sections
from hwnas.report.curves import OBSERVED_REF, Curves
from hwnas.report.ranges import AxisRange, axis_ranges
from hwnas.report.sections import format_cell
from hwnas.report.tables import feasible_mask
from hwnas.trial import Trial

log = logging.getLogger(__name__)

COLLAPSE_ROWS = sections.COLLAPSE_ROWS

_CSS = """
:root { color-scheme: light; --line: #d0d7de; --muted: #57606a; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; margin: 0; color: #1f2328; line-height: 1.45; background: #fff; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 1.25rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line);
     padding-bottom: .25rem; }
h3 { font-size: .95rem; margin: .4rem 0; }
nav { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,.95);
      border-bottom: 1px solid var(--line); }
nav ul { max-width: 1200px; margin: 0 auto; padding: .45rem 1.25rem; list-style: none;
         display: flex; flex-wrap: wrap; gap: .3rem 1.1rem; font-size: .88rem; }
nav a { color: #0969da; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.overview { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.5rem; }
@media (max-width: 800px) { .overview { grid-template-columns: 1fr; } }
.problem ul { margin: .2rem 0 .6rem; }
.plot { width: 100%; min-height: 360px; border: 1px solid var(--line); border-radius: 6px; }
.wrap { overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.wrap.tall { max-height: 70vh; }
.wrap.narrow { display: inline-block; max-width: 100%; }
table { border-collapse: collapse; font-size: .86rem; }
.wrap table { width: 100%; }
th, td { padding: .28rem .55rem; text-align: left; vertical-align: top; }
td.num, td.text { white-space: nowrap; }
thead th { position: sticky; top: 0; background: #f0f3f6; border-bottom: 1px solid var(--line);
           z-index: 1; font-weight: 600; }
tbody tr:nth-child(even) { background: var(--bg); }
tbody tr:hover { background: #fff8c5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.arch { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
          font-size: .78rem; overflow-wrap: anywhere; word-break: break-all; min-width: 16em; }
td.reason { overflow-wrap: anywhere; min-width: 16em; }
tr.front td { font-weight: 600; }
tr.infeasible td { color: #8c959f; }
table.kv th { background: none; position: static; color: var(--muted); font-weight: 500;
              white-space: nowrap; min-width: 0; }
table.kv td, table.kv th { border-bottom: 1px solid #eaeef2; }
table.kv td { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.offscale { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
            padding: .35rem .6rem; font-size: .88rem; }
summary { cursor: pointer; margin: .5rem 0; color: #0969da; }
ul { padding-left: 1.2rem; }
footer { margin: 2.5rem auto 1.5rem; font-size: .8rem; }
"""

# Runs first, before plotly.js: every uncaught error or rejection lands in an attribute.
_ERROR_RECORDER = """
(function () {
  var root = document.documentElement, errors = [];
  function record(message) {
    errors.push(String(message).slice(0, 500));
    root.setAttribute("data-script-errors", String(errors.length));
    root.setAttribute("data-script-error-text", errors.join(" | "));
  }
  root.setAttribute("data-script-errors", "0");
  window.hwnasError = record;
  window.addEventListener("error", function (e) {
    record((e.message || "error") + (e.lineno ? " (line " + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    record("unhandled rejection: " + (r && r.message ? r.message : r));
  });
})();
"""

_RENDER = """
(function () {
  var root = document.documentElement;
  var specs = JSON.parse(document.getElementById("hwnas-figures").textContent);
  var ids = Object.keys(specs), done = 0;
  var config = {displaylogo: false, responsive: true, showLink: false,
                toImageButtonOptions: {format: "png", scale: 2}};
  root.setAttribute("data-plots-expected", String(ids.length));
  root.setAttribute("data-plots-rendered", "0");
  if (typeof Plotly === "undefined") { window.hwnasError("plotly.js did not load"); return; }
  ids.forEach(function (id) {
    try {
      Plotly.newPlot(id, specs[id].data, specs[id].layout, config).then(function () {
        done += 1;
        root.setAttribute("data-plots-rendered", String(done));
      }, function (err) { window.hwnasError("plot " + id + ": " + err); });
    } catch (err) {
      window.hwnasError("plot " + id + ": " + (err && err.message ? err.message : err));
    }
  });
  function wideTables() {
    var wide = [];
    document.querySelectorAll(".wrap.fit").forEach(function (w) {
      if (w.scrollWidth > w.clientWidth + 1) { wide.push(w.firstElementChild.id); }
    });
    root.setAttribute("data-wide-tables", wide.join(" "));
  }
  wideTables();
  window.addEventListener("resize", wideTables);
})();
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
    feasible: pd.Series | None = None,
    failures: Sequence[Trial] = (),
    curves: Curves | None = None,
    diagnostics: Mapping[str, float | str] | None = None,
    notes: Sequence[str] = (),
    ranges: Mapping[str, AxisRange] | None = None,
    gradient: Mapping[str, object] | None = None,
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
        feasible: boolean per row of ``trials``; ``None`` checks ``constraints`` on each row.
        failures: the failed trials, listed with their reasons.
        curves: hypervolume (and regret / HV gap) over evaluations; ``None`` leaves them out.
        diagnostics: the strategy's own figures (e.g. a predictor's rank correlation).
        notes: data notes (e.g. table rows that were excluded), one line each.
        ranges: axis ranges of the Pareto view; ``None`` computes the robust ones.
        gradient: a gradient search's result dict (``GradientResult.to_dict()``), shown as the
            "Architecture weights" section; ``None`` leaves the section out.

    Example:
        >>> write_report_html(Path("report.html"), title="demo", summary={"seed": "0"},
        ...                   trials=df, pareto=front, objectives=objs,
        ...                   constraints=())  # doctest: +SKIP
    """
    from hwnas.report.figures import pareto_figure, progress_figure, reference_figure

    objectives, constraints = list(objectives), list(constraints)
    if feasible is None:
        feasible = _feasible(trials, constraints)
    metrics = [o.metric for o in objectives]
    if ranges is None:
        ranges = axis_ranges(
            trials, objectives=objectives, feasible=feasible, pareto=pareto, constraints=constraints
        )
    figures: dict[str, str] = {}
    body: list[tuple[str, str, str]] = []  # (section id, heading, HTML)

    overview = (
        '<div class="overview"><div>'
        + sections.kv_table(summary, "summary")
        + "</div><div>"
        + sections.problem_lists(objectives, constraints)
        + "</div></div>"
    )
    body.append(("overview", "Summary", overview))

    if len(trials):
        figures["fig-pareto"] = _figure_json(
            pareto_figure(
                trials,
                feasible=feasible,
                pareto=pareto,
                objectives=objectives,
                constraints=constraints,
                ranges=ranges,
            )
        )
        view = _figure_div("fig-pareto") + sections.offscale_note(trials, ranges, metrics)
    else:
        view = '<p class="muted">No completed trials to plot.</p>'
    heading = "Objective over trials" if len(objectives) == 1 else "Pareto view"
    body.append(("pareto-view", heading, view))

    if len(pareto):
        front = sections.sort_best_first(pareto, objectives[0] if objectives else None)
        cols = sections.front_columns(pareto, objectives, constraints)
        front_html = sections.data_table(
            front, cols, table_id="pareto", constraints=constraints, css="fit"
        )
        hidden = len([c for c in pareto.columns if c not in cols])
        if hidden:
            front_html += (
                f'<p class="muted">{hidden} more metric(s) in the all-trials table and in the '
                "Pareto view's hover.</p>"
            )
    else:
        front_html = '<p class="muted">No feasible trial: the Pareto front is empty.</p>'
    body.append(("front", f"Pareto front ({len(pareto)})", front_html))

    if curves is not None and curves.evaluations:
        parts = []
        if len(objectives) > 1:
            figures["fig-progress"] = _figure_json(progress_figure(curves))
            parts.append(
                '<p class="muted">Hypervolume of the feasible front after each charged '
                "evaluation (tell order). Every objective is scaled to the range of the run's "
                f"feasible trials, reference point {OBSERVED_REF} in each.</p>"
                + _figure_div("fig-progress")
            )
        if curves.hv_gap is not None:
            figures["fig-reference"] = _figure_json(reference_figure(curves))
            regret = (
                "Regret: mean over latency bands (the deciles of the table's latency) of the best "
                f"{curves.regret_metric} in the table minus the best evaluated, within the band. "
                if curves.regret is not None
                else ""
            )
            parts.append(
                '<p class="muted">Scored after the search against the full reference table '
                f"({curves.reference_rows} rows meeting the constraints), which the search never "
                f"saw. {escape(regret)}HV gap: 1 − HV/HV* with each objective scaled to the "
                "table's range.</p>" + _figure_div("fig-reference")
            )
        parts.append(sections.curves_table(curves))
        body.append(("progress", "Progress over evaluations", "".join(parts)))
    if gradient is not None:
        from hwnas.report.trajectory import gradient_section

        gradient_html, gradient_figures = gradient_section(gradient)
        figures.update(gradient_figures)
        body.append(("gradient", "Architecture weights", gradient_html))

    body.append(
        ("failures", f"Failed trials ({len(failures)})", sections.failures_section(failures))
    )
    noise = sections.noise_section(trials)
    if noise is not None:
        body.append(("noise", "Measurement noise", noise))
    if diagnostics:
        body.append(("diagnostics", "Strategy diagnostics", sections.kv_table(diagnostics, "diag")))
    if notes:
        body.append(("notes", "Notes", sections.notes_list(notes)))
    trials_html = sections.all_trials_section(trials, pareto, objectives, constraints)
    body.append(("trials-section", f"All trials ({len(trials)})", trials_html))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_page(title, body, figures), encoding="utf-8")
    log.debug("wrote HTML report %s (%d trials, %d on the front)", path, len(trials), len(pareto))


def _page(title: str, body: Sequence[tuple[str, str, str]], figures: Mapping[str, str]) -> str:
    nav = "".join(f'<li><a href="#{sid}">{escape(h)}</a></li>' for sid, h, _ in body)
    main = "".join(
        f'<section id="{sid}"><h2>{escape(h)}</h2>{html}</section>' for sid, h, html in body
    )
    spec = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in figures.items()) + "}"
    scripts = ""
    if figures:
        scripts = (
            f'<script type="application/json" id="hwnas-figures">{_json_in_html(spec)}</script>'
            f"<script>{_plotly_js()}</script><script>{_RENDER}</script>"
        )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_CSS}</style>",
            f"<script>{_ERROR_RECORDER}</script>",
            "</head>",
            "<body>",
            f'<header><h1>{escape(title)}</h1><p class="muted">hwnas study report</p></header>',
            f"<nav><ul>{nav}</ul></nav>",
            f"<main>{main}</main>",
            '<footer class="muted">Generated by hwnas. Plots need JavaScript; the page loads '
            "nothing from the network.</footer>",
            scripts,
            "</body>",
            "</html>",
            "",
        ]
    )


def _figure_div(fig_id: str) -> str:
    return (
        f'<div class="plot" id="{fig_id}"></div>'
        '<noscript><p class="muted">The interactive plots need JavaScript.</p></noscript>'
    )


def _figure_json(fig: object) -> str:
    import plotly.io as pio

    return str(pio.to_json(fig, validate=False))


def _json_in_html(text: str) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` left to end or open a tag."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # A literal end tag inside would close the inline script early.
    return str(get_plotlyjs()).replace("</script", "<\\/script")


def _feasible(trials: pd.DataFrame, constraints: Sequence[Constraint]) -> pd.Series:
    if not constraints or not len(trials):
        return pd.Series(True, index=trials.index, dtype=bool)
    missing = [c.metric for c in constraints if c.metric not in trials.columns]
    if missing:
        return pd.Series(False, index=trials.index, dtype=bool)
    return feasible_mask(trials, constraints)


__all__ = ["COLLAPSE_ROWS", "format_cell", "write_report_html"]
