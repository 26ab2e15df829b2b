"""MOEA-BUS: uniform initial sampling, the two populations, the surrogate, resume."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import stats

from hwnas import ConfigError, Constraint, Objective, Study, create_space, create_strategy
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Problem
from hwnas.storage.sqlite import SQLiteStore
from hwnas.strategies.moea_bus import MOEABUS
from hwnas.strategies.moea_bus_surrogate import PairwiseSVMRanker

GAIN = {
    "none": -2.0,
    "skip_connect": 0.5,
    "nor_conv_1x1": 1.5,
    "nor_conv_3x3": 2.5,
    "avg_pool_3x3": 0.2,
}
COST = {
    "none": 0.0,
    "skip_connect": 0.1,
    "nor_conv_1x1": 1.0,
    "nor_conv_3x3": 3.0,
    "avg_pool_3x3": 0.5,
}
OBJECTIVES = [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")]


def _noise(s: str) -> float:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


class Synthetic(Evaluator):
    """Accuracy and latency from the ops, with position weights and one interaction."""

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@dev")

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        ops = arch["ops"]
        s = "|".join(ops)
        acc = 80 + sum(GAIN[o] * (1 + 0.2 * k) for k, o in enumerate(ops)) + 2 * _noise(s)
        acc -= 3.0 * (ops[0] == "none")
        lat = 1 + sum(COST[o] * (1 + 0.1 * k) for k, o in enumerate(ops)) + 0.2 * _noise(s + "l")
        return {"accuracy": acc, "latency_ms@dev": lat}


def _study(seed: int = 0, store=None, **options):  # type: ignore[no-untyped-def]
    return Study(
        space=create_space("nb201"),
        evaluators=[Synthetic()],
        objectives=OBJECTIVES,
        strategy=create_strategy("moea_bus", **options),
        store=store,
        seed=seed,
    )


def test_initial_population_spans_the_flops_range_better_than_random() -> None:
    space = create_space("nb201")
    problem = Problem(space, tuple(OBJECTIVES))
    ref_rng = np.random.default_rng(123)
    ref = np.array([space.cheap_metrics(space.sample(ref_rng))["flops_m"] for _ in range(1000)])
    lo, hi = ref.min(), ref.max()

    def coverage(flops: list[float]) -> tuple[int, float]:
        f = np.array(flops)
        bins = np.clip(((f - lo) / (hi - lo) * 10).astype(int), 0, 9)
        return len(np.unique(bins)), float(np.ptp(f) / (hi - lo))

    uniform, random = [], []
    for seed in range(5):
        strategy = create_strategy("moea_bus")
        strategy.setup(problem, np.random.default_rng(seed))
        uniform.append(
            coverage([space.cheap_metrics(strategy.ask())["flops_m"] for _ in range(20)])
        )
        rng = np.random.default_rng(seed)
        random.append(
            coverage([space.cheap_metrics(space.sample(rng))["flops_m"] for _ in range(20)])
        )
    u_bins, u_span = np.mean(uniform, axis=0)
    r_bins, r_span = np.mean(random, axis=0)
    # 10 equal-width FLOPs intervals: uniform sampling fills more of them and spans more range.
    assert u_bins >= r_bins + 1.5, (uniform, random)
    assert u_span >= 0.8 > r_span, (uniform, random)


def test_both_populations_breed_and_exchange() -> None:
    study = _study(seed=1)
    study.optimize(120)
    strategy = study.strategy
    assert isinstance(strategy, MOEABUS)
    born = [strategy.origin[t.arch] for t in study.trials]
    assert born[:20] == ["init"] * 20
    assert born.count("main") >= 40 and born.count("vice") >= 40
    main, vice = strategy.main_population, strategy.vice_population
    assert len(main) == len(vice) == 20 and set(main) != set(vice)
    # The vice population keeps one niche per complexity interval: it covers more FLOPs levels.
    by_arch = {t.arch: t.metrics["flops_m"] for t in study.trials}
    assert len({by_arch[a] for a in vice}) > len({by_arch[a] for a in main})
    # Elites move between the populations: vice-born members entered the main population.
    assert strategy.migrants > 0


def _dominated_share(study: Study, start: int = 20) -> float:
    """Share of offspring dominated by an architecture evaluated before them."""
    F = np.array([[-t.metrics["accuracy"], t.metrics["latency_ms@dev"]] for t in study.trials])
    hit = [
        bool(np.any(np.all(F[:i] <= F[i], axis=1) & np.any(F[:i] < F[i], axis=1)))
        for i in range(start, len(F))
    ]
    return float(np.mean(hit))


def test_surrogate_screening_proposes_fewer_dominated_offspring() -> None:
    plain, screened = [], []
    for seed in range(3):
        a, b = _study(seed=seed), _study(seed=seed, surrogate=True)
        a.optimize(80)
        b.optimize(80)
        assert len({t.arch for t in b.trials}) == 80
        plain.append(_dominated_share(a))
        screened.append(_dominated_share(b))
    assert np.mean(screened) < np.mean(plain) - 0.08, (plain, screened)
    tau = b.strategy.diagnostics()["surrogate_kendall_tau"]
    assert isinstance(tau, float) and tau > 0.2


def test_surrogate_respects_constraints_and_names() -> None:
    study = Study(
        space=create_space("nb201"),
        evaluators=[Synthetic()],
        objectives=OBJECTIVES,
        constraints=[Constraint("latency_ms@dev", le=6.0)],
        strategy=create_strategy("moea_bus", surrogate="svr"),
        seed=3,
    )
    study.optimize(60)
    front = study.pareto_front()
    assert study.n_charged == 60 and front
    assert all(t.metrics["latency_ms@dev"] <= 6.0 for t in front)


@pytest.mark.parametrize("surrogate", [False, True])
def test_resume_through_sqlite_equals_straight_run(tmp_path, surrogate: bool) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "study.db"
    with SQLiteStore(path) as store:
        first = _study(seed=7, store=store, surrogate=surrogate)
        first.optimize(30)
    resumed = _study(seed=7, store=SQLiteStore(path), surrogate=surrogate)
    assert [t.arch for t in resumed.trials] == [t.arch for t in first.trials]
    resumed.optimize(55)
    straight = _study(seed=7, surrogate=surrogate)
    straight.optimize(55)
    assert [t.arch for t in resumed.trials] == [t.arch for t in straight.trials]


def test_pairwise_svm_ranks_a_nonlinear_target() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((160, 6))
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + 0.3 * X[:, 3]
    pred = PairwiseSVMRanker(seed=0).fit(X[:100], y[:100]).predict(X[100:])
    assert stats.kendalltau(pred, y[100:]).statistic > 0.6
    assert y[:100].min() <= pred.min() <= pred.max() <= y[:100].max()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"population_size": 1}, "population_size must be >= 2"),
        ({"sample_pool": 5}, "sample_pool must be >= population_size"),
        ({"surrogate": ""}, "surrogate must be true, false or a predictor name"),
        ({"screen_factor": 0}, "screen_factor must be >= 1"),
    ],
)
def test_bad_options_fail_at_construction(options, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        create_strategy("moea_bus", **options)


def test_unknown_complexity_metric_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"complexity 'flop_m' is no cheap metric; did you mean"):
        _study(complexity="flop_m")


def test_unknown_surrogate_name_suggests_the_closest_predictor() -> None:
    with pytest.raises(
        ConfigError, match=r"surrogate: unknown predictor 'svx'; did you mean 'svr'"
    ):
        _study(surrogate="svx")
