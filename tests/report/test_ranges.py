"""Axis ranges ignore degenerate networks in the Plotly view and in pareto.png alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_support import ACC, DEGENERATE, LAT, Study, study2, study3

from hwnas.pareto import pareto_trials
from hwnas.problem import Constraint, Objective
from hwnas.report.figures import pareto_figure
from hwnas.report.plots import pareto_png_figure
from hwnas.report.ranges import axis_ranges, robust_range
from hwnas.report.tables import feasible_mask, trials_frame


def frames(study: Study) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    frame = trials_frame(study.trials, study.objectives, study.constraints)
    front = {t.number for t in pareto_trials(study.trials, study.objectives, study.constraints)}
    pareto = frame[frame["trial"].isin(front)]
    return frame, pareto, feasible_mask(frame, study.constraints)


def test_a_planted_10_percent_cell_is_off_scale_and_the_rest_spread_out() -> None:
    rng = np.random.default_rng(0)
    useful = rng.uniform(80.0, 95.0, 60)
    acc = np.r_[useful, 10.0]
    # The 10 % cell is on the front: the fastest network.
    r = robust_range(acc, direction="maximize", keep=[10.0, useful.max()])
    assert r is not None
    assert r.lo > 75.0 and not r.contains(10.0)
    assert r.count_outside(acc) == 1
    # The 80-95 % points fill most of the axis (min-max would give them 18 %).
    assert (useful.max() - useful.min()) / (r.hi - r.lo) > 0.85


def test_a_quarter_of_degenerate_cells_does_not_pull_the_range_down() -> None:
    # A search exploring the fast end evaluates many all-`none` cells: 25 % of the trials here.
    rng = np.random.default_rng(1)
    useful = rng.uniform(80.0, 95.0, 75)
    acc = np.r_[useful, np.full(25, 10.0)]
    r = robust_range(acc, direction="maximize", keep=[10.0, 86.0, useful.max()])
    assert r is not None and r.lo > 75.0 and r.count_outside(acc) == 25


def test_only_the_worse_end_is_trimmed() -> None:
    # Latency: the degenerate cells are the fastest, the best end: always shown.
    lat = np.r_[np.full(10, 0.01), np.linspace(2.0, 30.0, 40)]
    r = robust_range(lat, direction="minimize")
    assert r.contains(0.01) and r.count_outside(lat) == 0
    # Mirrored: a maximised axis keeps its best value even when far out.
    acc = np.r_[np.linspace(80.0, 90.0, 40), 99.9]
    assert robust_range(acc, direction="maximize").contains(99.9)


def test_front_points_count_unless_far_out_and_isolated() -> None:
    core = np.linspace(88.0, 94.0, 40)
    front = [70.0, 90.0, 94.0]
    assert robust_range(core, direction="maximize", keep=front).contains(70.0)
    assert not robust_range(core, direction="maximize", keep=[10.0, 90.0]).contains(10.0)
    # Without a front point out there, 70 is an outlier like any other.
    assert not robust_range(np.r_[core, 70.0], direction="maximize").contains(70.0)
    # A front split by a constraint (fast cells, then a gap, then slower ones) is kept whole.
    lat = np.r_[np.full(27, 0.01), np.linspace(2.5, 5.2, 40), np.linspace(5.3, 9.0, 40)]
    front = [0.01, 2.5, 2.8, 4.8, 5.0, 5.2, 18.3, 20.0, 21.5, 23.3]
    r = robust_range(np.r_[lat, front], direction="minimize", keep=front)
    assert r.contains(23.3)


def test_ranges_keep_every_point_when_none_is_degenerate() -> None:
    v = np.array([1.0, 2.0, 2.5, 3.0, 4.0, 5.5])
    for direction in ("minimize", "maximize"):
        r = robust_range(v, direction=direction)
        assert r.lo < 1.0 and r.hi > 5.5 and r.count_outside(v) == 0
    assert robust_range([np.nan]) is None
    tie = robust_range([3.0, 3.0, 3.0, 3.0])
    assert tie.lo < 3.0 < tie.hi


def test_constraint_bounds_stay_in_range() -> None:
    df = pd.DataFrame({"lat": np.linspace(1.0, 5.0, 30)})
    lat = Objective("lat", "minimize")
    r = axis_ranges(df, objectives=[lat], constraints=[Constraint("lat", le=7.0)])["lat"]
    assert r.contains(7.0)
    far = axis_ranges(df, objectives=[lat], constraints=[Constraint("lat", le=500.0)])["lat"]
    assert not far.contains(500.0)  # a bound far from every point does not squeeze them


def test_study_ranges_exclude_the_degenerate_cell_on_the_front() -> None:
    study = study2()
    frame, pareto, ok = frames(study)
    assert DEGENERATE in pareto["arch"].tolist()  # fastest, so on the front
    ranges = axis_ranges(frame, objectives=[ACC, LAT], feasible=ok, pareto=pareto)
    useful = frame.loc[frame["arch"] != DEGENERATE, "accuracy"]
    assert not ranges["accuracy"].contains(10.0)
    assert ranges["accuracy"].lo > 75.0
    assert (useful.max() - useful.min()) / (ranges["accuracy"].hi - ranges["accuracy"].lo) > 0.8


def test_plotly_view_and_png_use_the_same_robust_ranges() -> None:
    study = study2()
    frame, pareto, ok = frames(study)
    ranges = axis_ranges(frame, objectives=[ACC, LAT], feasible=ok, pareto=pareto)
    fig = pareto_figure(
        frame,
        feasible=ok,
        pareto=pareto,
        objectives=[ACC, LAT],
        constraints=study.constraints,
        ranges=ranges,
    )
    assert list(fig.layout.xaxis.range) == [ranges["accuracy"].lo, ranges["accuracy"].hi]
    # The degenerate cell is drawn at the left edge as a triangle; hover tells its true value.
    (front_trace,) = [t for t in fig.data if str(t.name).startswith("Pareto front")]
    k = [i for i, text in enumerate(front_trace.text) if DEGENERATE in text]
    assert len(k) == 1
    assert front_trace.x[k[0]] == pytest.approx(ranges["accuracy"].lo)
    assert front_trace.marker.symbol[k[0]] == "triangle-left"
    assert "accuracy: 10<br>" in front_trace.text[k[0]]
    assert front_trace.marker.symbol[0] == "diamond"  # the legend shows the real symbol

    png = pareto_png_figure(
        trials=frame, pareto=pareto, feasible=ok, objectives=[ACC, LAT], ranges=None
    )
    (ax,) = png.axes
    assert ax.get_xlim() == pytest.approx((ranges["accuracy"].lo, ranges["accuracy"].hi))
    assert ax.get_ylim() == pytest.approx((ranges[LAT.metric].lo, ranges[LAT.metric].hi))
    assert any("off-scale" in t.get_text() for t in ax.texts)


def test_pairwise_panels_share_the_ranges() -> None:
    study = study3()
    frame, pareto, ok = frames(study)
    metrics = [o.metric for o in study.objectives]
    ranges = axis_ranges(
        frame,
        objectives=study.objectives,
        feasible=ok,
        pareto=pareto,
        constraints=study.constraints,
    )
    png = pareto_png_figure(
        trials=frame,
        pareto=pareto,
        feasible=ok,
        objectives=study.objectives,
        constraints=study.constraints,
    )
    assert len(png.axes) == 3
    for ax, (mx, my) in zip(png.axes, [(0, 1), (0, 2), (1, 2)]):
        assert ax.get_xlim() == pytest.approx((ranges[metrics[mx]].lo, ranges[metrics[mx]].hi))
        assert ax.get_ylim() == pytest.approx((ranges[metrics[my]].lo, ranges[metrics[my]].hi))
    fig = pareto_figure(
        frame,
        feasible=ok,
        pareto=pareto,
        objectives=study.objectives,
        constraints=study.constraints,
        ranges=ranges,
    )
    assert [a.range for a in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3)] == [
        (ranges[m].lo, ranges[m].hi) for m in (metrics[0], metrics[0], metrics[1])
    ]
