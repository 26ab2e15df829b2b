"""write_outputs end to end: the CSV contract, the page's sections and its scored series."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_support import ACC, LAT, PAR, Study, external_references, make_study, study2, study3

from hwnas.errors import DataError
from hwnas.pareto import hypervolume
from hwnas.problem import Objective
from hwnas.report import reference_table, write_outputs
from hwnas.trial import Trial

DIAGNOSTICS = {"predictor kendall tau": 0.61234, "surrogate": "bayesian linear"}
NOTES = ("table: 2 rows excluded (NaN in latency_ms@pixel3, lines 7 and 9)",)


def write(tmp_path: Path, study: Study, **extra: object) -> tuple[object, str]:
    out = write_outputs(
        tmp_path,
        trials=study.trials,
        objectives=study.objectives,
        constraints=study.constraints,
        summary={"strategy": "nsga2", "seed": "0"},
        title="synthetic <study>",
        **extra,  # type: ignore[arg-type]
    )
    return out, (tmp_path / "report.html").read_text(encoding="utf-8")


def figures(page: str) -> dict[str, dict]:
    match = re.search(r'<script type="application/json" id="hwnas-figures">(.*?)</script>', page)
    assert match is not None
    return json.loads(match.group(1))


def without_scripts(page: str) -> str:
    """The page minus inline script bodies (plotly.js holds every character sequence)."""
    return re.sub(r"(<script[^>]*>).*?</script>", r"\1</script>", page, flags=re.S)


def brute_front(F: np.ndarray) -> np.ndarray:
    return np.array([not any(np.all(g <= f) and np.any(g < f) for g in F) for f in F], dtype=bool)


def expected_series(study: Study) -> dict[int, tuple[float, float, float]]:
    """x -> (observed-scale hypervolume, regret, HV gap), written out from the definitions."""
    objs, cons = study.objectives, study.constraints
    ref = study.reference
    ok_ref = np.all([ref[c.metric] <= c.le for c in cons], axis=0)
    table = ref[ok_ref]
    F_t = np.column_stack([o.sign * table[o.metric].to_numpy() for o in objs])
    ideal_t, nadir_t = F_t.min(axis=0), F_t.max(axis=0)

    def hv(F: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: float) -> float:
        if not len(F):
            return 0.0
        Z = (F - lo) / (hi - lo)
        return hypervolume(Z[brute_front(Z)], np.full(len(objs), r))

    hv_star = hv(F_t, ideal_t, nadir_t, 1 + 1e-6)
    ordered = sorted(study.trials, key=lambda t: t.tell_seq)
    good = [t for t in ordered if t.ok and all(t.metrics[c.metric] <= c.le for c in cons)]
    F_all = np.array([[o.sign * t.metrics[o.metric] for o in objs] for t in good])
    lo, hi = F_all.min(axis=0), F_all.max(axis=0)
    acc_t = table["accuracy"].to_numpy()
    lat_t = table[[o.metric for o in objs[1:]]].to_numpy()
    out = {}
    x = 0
    for j, t in enumerate(ordered):
        x += t.charged
        seen = [s for s in ordered[: j + 1] if s in good]
        F = np.array([[o.sign * s.metrics[o.metric] for o in objs] for s in seen])
        F = F.reshape(-1, len(objs))
        regrets = []
        for q in np.arange(1, 10) / 10:
            bound = np.quantile(lat_t, q, axis=0)
            within_t = np.all(lat_t <= bound, axis=1)
            within = np.all(F[:, 1:] <= bound, axis=1) if len(F) else np.zeros(0, bool)
            best_found = (-F[within, 0]).max() if within.any() else acc_t[within_t].min()
            regrets.append(acc_t[within_t].max() - best_found)
        gap = 1.0 - hv(F, ideal_t, nadir_t, 1 + 1e-6) / hv_star if len(F) else 1.0
        out[x] = (hv(F, lo, hi, 1.1), float(np.mean(regrets)), gap)
    return out


@pytest.mark.parametrize("make", [study2, study3], ids=["2 objectives", "3 objectives"])
def test_page_shows_the_scored_series_front_and_failures(tmp_path: Path, make) -> None:
    study = make()
    out, page = write(
        tmp_path, study, diagnostics=DIAGNOSTICS, notes=NOTES, reference=study.reference
    )
    assert external_references(page) == []
    figs = figures(page)
    assert set(figs) == {"fig-pareto", "fig-progress", "fig-reference"}

    # The series, value by value, against the definitions written out above.
    expected = expected_series(study)
    xs = sorted(expected)
    (hv_trace,) = figs["fig-progress"]["data"]
    regret_trace, gap_trace = figs["fig-reference"]["data"]
    assert hv_trace["x"] == xs == regret_trace["x"] == gap_trace["x"]
    assert hv_trace["y"] == pytest.approx([expected[x][0] for x in xs])
    assert regret_trace["y"] == pytest.approx([expected[x][1] for x in xs])
    assert gap_trace["y"] == pytest.approx([expected[x][2] for x in xs], abs=1e-12)
    assert xs[-1] == sum(t.charged for t in study.trials)
    # ... and as text, at round numbers of evaluations and at the end.
    progress = page[page.index('<table id="progress">') :].split("</table>", 1)[0]
    assert f'<td class="num">{expected[xs[-1]][1]:.4g}</td>' in progress
    assert f'<td class="num">{expected[xs[-1]][2]:.4g}</td>' in progress
    assert '<td class="num">25</td>' in progress

    # Every front arch string in the front table, each failure with its reason and attempts.
    front = page[page.index('<table id="pareto">') :].split("</table>", 1)[0]
    assert len(re.findall(r"<tr[ >]", front)) == len(out.pareto) + 1
    for arch in out.pareto["arch"]:
        assert f'<td class="arch">{escape(arch)}</td>' in front
    failures = page[page.index('<table id="failures">') :].split("</table>", 1)[0]
    for t in study.failed:
        assert f'<td class="reason">{escape(t.error)}</td>' in failures
        assert f'<td class="num">{t.number}</td><td class="arch">{escape(t.arch)}</td>' in failures
    assert f"Failed trials ({len(study.failed)})" in page
    assert "&lt;&amp;&gt;" in failures and "<&>" not in without_scripts(page)

    # The strategy's figures, the data notes, the measurement noise.
    assert "<th>predictor kendall tau</th><td>0.6123</td>" in page
    assert "<th>surrogate</th><td>bayesian linear</td>" in page
    assert f"<li>{escape(NOTES[0])}</li>" in page
    noise = page[page.index('<table id="noise">') :].split("</table>", 1)[0]
    cv = out.trials["latency_cv@raspi4"]
    assert (
        f'<td class="num">{cv.median():.4g}</td><td class="num">{cv.quantile(0.9):.4g}</td>'
        in noise
    )
    # IQR error bars on the latency axis of the Pareto view.
    scatter = [t for t in figs["fig-pareto"]["data"] if t.get("mode") == "markers"]
    assert any(t.get("error_y", {}).get("visible") for t in scatter)


def test_csv_contract_is_unchanged(tmp_path: Path) -> None:
    study = study2()
    write(tmp_path, study, reference=study.reference)
    trials_csv = pd.read_csv(tmp_path / "trials.csv")
    pareto_csv = pd.read_csv(tmp_path / "pareto.csv")
    metrics = [
        "accuracy",
        "latency_ms@raspi4",
        "latency_ms@pixel3",
        "params_m",
        "latency_iqr_ms@raspi4",
        "latency_cv@raspi4",
    ]
    assert list(trials_csv.columns) == ["trial", "arch", *metrics]
    assert list(pareto_csv.columns) == list(trials_csv.columns)
    complete = sorted(t.number for t in study.trials if t.ok)
    assert trials_csv["trial"].tolist() == complete
    ok = trials_csv[trials_csv["latency_ms@pixel3"] <= 25.0]
    F = np.column_stack([-ok["accuracy"], ok["latency_ms@raspi4"]])
    assert sorted(pareto_csv["trial"]) == sorted(ok["trial"][brute_front(F)])


def test_no_regret_when_the_problem_is_not_accuracy_against_costs(tmp_path: Path) -> None:
    study = make_study([LAT, PAR], [])
    _, page = write(tmp_path, study, reference=study.reference)
    (gap,) = figures(page)["fig-reference"]["data"]
    assert gap["name"].startswith("HV gap")
    assert "regret (" not in page
    assert 0.0 <= gap["y"][-1] < gap["y"][0] <= 1.0


def test_without_reference_only_the_observed_hypervolume(tmp_path: Path) -> None:
    study = study2()
    _, page = write(tmp_path, study)
    assert set(figures(page)) == {"fig-pareto", "fig-progress"}
    assert "HV gap" not in page and "Strategy diagnostics" not in page and 'id="notes"' not in page


def test_one_objective_plots_the_objective_over_trials(tmp_path: Path) -> None:
    study = make_study([Objective("accuracy", "maximize")], [])
    _, page = write(tmp_path, study, reference=study.reference)
    figs = figures(page)
    assert set(figs) == {"fig-pareto", "fig-reference"}
    names = [t["name"] for t in figs["fig-pareto"]["data"]]
    assert "best feasible so far" in names and "Objective over trials" in page


def test_a_bad_reference_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    study = study2()
    with pytest.raises(DataError, match=r"lacks column\(s\) \['latency_ms@pixel3'\]"):
        write(tmp_path, study, reference=study.reference.drop(columns=["latency_ms@pixel3"]))
    bad = study.reference.copy()
    bad.iloc[3, 0] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        write(tmp_path, study, reference=bad)
    assert not any(tmp_path.iterdir())


class Tabular:
    def __init__(self, table: pd.DataFrame | None) -> None:
        self._table = table

    def table(self) -> pd.DataFrame | None:
        return self._table


def test_reference_table_joins_the_evaluators_tables() -> None:
    a = pd.DataFrame({"accuracy": [90.0, 80.0, 70.0], "other": [1, 2, 3]}, index=["x", "y", "z"])
    b = pd.DataFrame({"latency_ms@raspi4": [3.0, 2.0]}, index=["z", "x"])
    evaluators = [Tabular(None), Tabular(a), Tabular(b)]
    ref = reference_table(evaluators, ["latency_ms@raspi4", "accuracy"])  # type: ignore[arg-type]
    assert ref is not None
    assert list(ref.columns) == ["latency_ms@raspi4", "accuracy"]
    assert ref.sort_index().to_dict("index") == {
        "x": {"latency_ms@raspi4": 2.0, "accuracy": 90.0},
        "z": {"latency_ms@raspi4": 3.0, "accuracy": 70.0},
    }
    # A metric no table has (e.g. measured on a device): no reference.
    assert reference_table(evaluators, ["accuracy", "latency_ms@pixel3"]) is None  # type: ignore[arg-type]
    assert reference_table([Tabular(None)], ["accuracy"]) is None  # type: ignore[arg-type]
    assert reference_table(evaluators, []) is None  # type: ignore[arg-type]


def test_reference_table_refuses_holes() -> None:
    a = pd.DataFrame({"accuracy": [90.0, np.inf]}, index=["x", "y"])
    with pytest.raises(DataError, match="'accuracy' has 1 value"):
        reference_table([Tabular(a)], ["accuracy"])  # type: ignore[arg-type]


def test_failed_trials_alone_give_a_page_without_plots(tmp_path: Path) -> None:
    trials = [Trial(0, "|a~0|", {}, state="failed", error="MemoryError: out of memory")]
    study = Study(trials, pd.DataFrame(), [ACC, LAT], [])
    out, page = write(tmp_path, study)
    assert out.trials.empty and "No completed trials to plot." in page
    assert "MemoryError: out of memory" in page
    assert pd.read_csv(tmp_path / "trials.csv").columns.tolist()[:2] == ["trial", "arch"]
