"""Band regret and HV gap: the benchmark's figures are unchanged now that the report owns them.

The golden numbers below were computed with ``benchmarks/_scoring.py`` *before* its regret and
hv_gap code moved into :mod:`hwnas.report.scoring` (commit 2551876), on fixtures the tests make
themselves; the benchmark's ``TaskScorer`` now delegates, so equal numbers mean equal figures.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from benchmark_scripts import BENCHMARKS, imported
from hwnas.errors import DataError
from hwnas.pareto import hypervolume, non_dominated_mask
from hwnas.report.scoring import (
    DECILES,
    HypervolumeGap,
    LatencyBands,
    band_regret,
    hv_gap,
    hypervolume_curve,
)

# (devices, prefix length) -> (regret, hv_gap), old TaskScorer on synthetic_table() below.
GOLDEN_SYNTHETIC = {
    (("a",), 1): (72.96144584527231, 0.323858339600827),
    (("a",), 5): (11.510681073193263, 0.08881391179788545),
    (("a",), 20): (1.1490074381840287, 0.05936635040730709),
    (("a",), 80): (0.5279003904257691, 0.015151032086386795),
    (("a",), 400): (0.0, 0.0),
    (("a", "b"), 1): (72.92928413192425, 0.4929397232423869),
    (("a", "b"), 5): (29.035880723296373, 0.14080194622552933),
    (("a", "b"), 20): (10.770922524924075, 0.1085966071076726),
    (("a", "b"), 80): (0.8861869219877292, 0.024004116753886584),
    (("a", "b"), 400): (0.0, 0.0),
}
# (task, prefix length) -> (regret, hv_gap), old TaskScorer on the suite's synthetic NB201 data.
GOLDEN_NB201 = {
    ("cifar10/raspi4", 1): (10.57980487307374, 0.5262838914147507),
    ("cifar10/raspi4", 10): (3.902781366037546, 0.21881896243083454),
    ("cifar10/raspi4", 100): (1.718064136155432, 0.1196010167453685),
    ("cifar100/pixel3", 1): (10.555832882282495, 0.5296415454365582),
    ("cifar100/pixel3", 10): (3.8788093752462993, 0.21860863694912946),
    ("cifar100/pixel3", 100): (1.6940921453641853, 0.12030758087713522),
    ("cifar10/raspi4+eyeriss", 1): (10.534530392791321, 0.5817129072604341),
    ("cifar10/raspi4+eyeriss", 10): (3.857506885755127, 0.26728562261812183),
    ("cifar10/raspi4+eyeriss", 100): (1.6727896558730133, 0.14694553275900768),
}


def synthetic_table(seed: int = 0, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    archs = [f"|cell{i}~0|" for i in range(n)]
    lat1 = rng.lognormal(2.5, 0.6, n)
    lat2 = lat1 * rng.uniform(0.5, 1.5, n)
    acc = 95.0 - 30.0 / (1.0 + lat1) - rng.gamma(2.0, 1.5, n)
    acc[rng.random(n) < 0.04] = 10.0
    return pd.DataFrame({"accuracy": acc, "latency_ms@a": lat1, "latency_ms@b": lat2}, index=archs)


class TableOnly:
    """Just enough of an Evaluator for TaskScorer."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._table = table

    def table(self) -> pd.DataFrame:
        return self._table


@pytest.fixture(scope="module")
def scoring() -> ModuleType:
    with imported("_scoring") as (_scoring,):
        pass
    return _scoring


def test_benchmark_figures_unchanged_on_a_synthetic_table(scoring: ModuleType) -> None:
    table = synthetic_table()
    order = np.random.default_rng(1).permutation(len(table))
    for (devices, n), golden in GOLDEN_SYNTHETIC.items():
        scorer = scoring.TaskScorer(scoring.Task("cifar10", devices), TableOnly(table))
        archs = [table.index[i] for i in order[:n]]
        assert scorer.score(archs) == pytest.approx(golden, rel=1e-12, abs=1e-12)


def test_benchmark_figures_unchanged_on_the_synthetic_nb201_tables(
    scoring: ModuleType, synthetic_nb201_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWNAS_DATA", str(synthetic_nb201_dir))
    for name in ("cifar10/raspi4", "cifar100/pixel3", "cifar10/raspi4+eyeriss"):
        task = scoring.TASKS[name]
        scorer = scoring.TaskScorer(task, scoring.make_evaluator(task))
        archs = sorted(scorer.index)
        order = np.random.default_rng(7).permutation(len(archs))[:100]
        for n in (1, 10, 100):
            got = scorer.score([archs[i] for i in order[:n]])
            assert got == pytest.approx(GOLDEN_NB201[(name, n)], rel=1e-12, abs=1e-12)


def test_benchmark_imports_the_package_functions(scoring: ModuleType) -> None:
    from hwnas.report import scoring as package

    assert scoring.DECILES is package.DECILES
    assert scoring.REF_MARGIN == package.REF_MARGIN
    source = (BENCHMARKS / "_scoring.py").read_text()
    assert "def regret" in source and "np.quantile" not in source  # no second copy of the math


def brute_regret(acc_t, lat_t, acc, lat) -> float:
    """The definition, written out: per decile budget, best in table minus best evaluated."""
    out = []
    for q in DECILES:
        bound = np.quantile(lat_t, q, axis=0)
        ok_t = np.all(lat_t <= bound, axis=1)
        ok = np.all(lat <= bound, axis=1)
        found = acc[ok].max() if ok.any() else acc_t[ok_t].min()
        out.append(acc_t[ok_t].max() - found)
    return float(np.mean(out))


def test_regret_and_gap_curves_match_the_definition_prefix_by_prefix() -> None:
    table = synthetic_table(seed=3, n=120)
    acc_t = table["accuracy"].to_numpy()
    lat_t = table[["latency_ms@a", "latency_ms@b"]].to_numpy()
    rows = np.random.default_rng(4).permutation(len(table))[:30]
    bands = LatencyBands.of_table(acc_t, lat_t)
    curve = bands.regret_curve(acc_t[rows], lat_t[rows])
    F_t = np.column_stack([-acc_t, lat_t])
    gap = HypervolumeGap.of_table(F_t)
    gaps = gap.gap_curve(F_t[rows])
    for j in range(len(rows)):
        prefix = rows[: j + 1]
        assert curve[j] == pytest.approx(brute_regret(acc_t, lat_t, acc_t[prefix], lat_t[prefix]))
        assert curve[j] == pytest.approx(band_regret(acc_t, lat_t, acc_t[prefix], lat_t[prefix]))
        assert gaps[j] == pytest.approx(hv_gap(F_t, F_t[prefix]), abs=1e-12)
    assert np.all(np.diff(curve) <= 1e-12) and np.all(np.diff(gaps) <= 1e-12)
    assert band_regret(acc_t, lat_t, acc_t[:0], lat_t[:0]) == pytest.approx(
        float(np.mean(bands.best - bands.worst))
    )
    assert hv_gap(F_t, F_t[:0]) == 1.0
    assert hv_gap(F_t, F_t) == pytest.approx(0.0, abs=1e-12)


def test_hv_gap_takes_any_number_of_objectives() -> None:
    rng = np.random.default_rng(5)
    F = rng.random((50, 3))
    assert 0.0 < hv_gap(F, F[:5]) < 1.0
    # One objective: the hypervolume is the distance of the best value to the reference point.
    lo, hi = F[:, 0].min(), F[:, 0].max()
    z = (F[7, 0] - lo) / (hi - lo)
    assert hv_gap(F[:, :1], F[7:8, :1]) == pytest.approx(1.0 - (1.0 + 1e-6 - z) / (1.0 + 1e-6))
    assert hv_gap(F[:, :1], F[np.argmin(F[:, 0])][None, :1]) == pytest.approx(0.0, abs=1e-9)


def test_hypervolume_curve_is_the_front_hypervolume_of_every_prefix() -> None:
    rng = np.random.default_rng(6)
    Z = rng.random((25, 2))
    Z[3] = np.nan  # a failed or infeasible trial counts as absent
    ref = np.array([1.1, 1.1])
    curve = hypervolume_curve(Z, ref)
    for j in range(len(Z)):
        P = Z[: j + 1]
        P = P[np.isfinite(P).all(axis=1)]
        assert curve[j] == pytest.approx(hypervolume(P[non_dominated_mask(P)], ref))


def test_bands_refuse_an_empty_table() -> None:
    with pytest.raises(DataError, match="non-empty table"):
        LatencyBands.of_table(np.empty(0), np.empty((0, 1)))
    with pytest.raises(DataError, match="finite, non-empty"):
        HypervolumeGap.of_table(np.array([[1.0, np.nan]]))


def test_pairs_of_devices_bound_together() -> None:
    # A cell fast on one device but slow on the other meets no budget below the slow one's.
    acc = np.array([90.0, 80.0, 70.0, 60.0])
    lat = np.array([[1.0, 9.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    bands = LatencyBands.of_table(acc, lat, quantiles=[0.75])
    (bound,) = bands.bounds
    assert list(bound) == [3.25, 5.25]
    assert bands.best.tolist() == [80.0] and bands.worst.tolist() == [70.0]
    assert bands.regret_curve(acc[:1], lat[:1]).tolist() == [10.0]  # 90 is not within
