"""linas (PredictorGuided): hypervolume improvement, batches, the inner search, whole searches.

The conformance suite already runs linas with its defaults; these tests check what is particular
to it, on the NB201 benchmark evaluator over the synthetic tables of ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from hwnas import ConfigError, Constraint, Objective, Study, create_space, create_strategy
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.pareto import hypervolume, non_dominated_mask
from hwnas.spaces.base import Arch
from hwnas.storage import SQLiteStore
from hwnas.strategies.inner_search import domination_gap, evolve, hvi, hvi_2d, select_batch
from hwnas.strategies.linas import PredictorGuided
from hwnas.trial import Observation

LATENCY = "latency_ms@raspi4"
TWO = [Objective("accuracy", "maximize"), Objective(LATENCY, "minimize")]
# Small inner searches and fast predictors: a 60-evaluation search takes 0.5 s (svr) to 2 s.
SMALL: dict[str, Any] = {
    "initial_samples": 20,
    "batch_size": 10,
    "population_size": 30,
    "generations": 8,
}
SVR: dict[str, Any] = {"predictor": "svr", **SMALL}
FOREST: dict[str, Any] = {
    "predictor": "lgbm_rf",
    "predictor_options": {"n_estimators": 30},
    **SMALL,
}


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # The gp predictor's BLAS threads contend on a loaded machine (a 0.3 s fit takes 7 s). The
    # limit reaches only libraries already loaded, hence the import first.
    import sklearn.gaussian_process  # noqa: F401

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def nb201(synthetic_nb201_dir: Path) -> Evaluator:
    space = create_space("nb201")
    return create_evaluator(
        "nb201", EvaluatorContext(space=space, data_dir=synthetic_nb201_dir), dataset="cifar10"
    )


def _study(
    evaluator: Evaluator,
    seed: int = 0,
    objectives: Sequence[Objective] = TWO,
    constraints: Sequence[Constraint] = (),
    store: SQLiteStore | None = None,
    **options: Any,
) -> Study:
    return Study(
        space=create_space("nb201"),
        evaluators=[evaluator],
        objectives=objectives,
        constraints=constraints,
        strategy=create_strategy("linas", **options),
        store=store,
        seed=seed,
    )


# -- hypervolume improvement ----------------------------------------------------------------------
def _exact_gain(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    base = hypervolume(front, ref) if len(front) else 0.0
    return np.array([hypervolume(np.vstack([front, p[None]]), ref) - base for p in points])


def _random_case(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A front with dominated members, duplicates and members beyond the reference point, and
    points inside, on and beyond it."""
    front = rng.uniform(0.0, 1.3, size=(int(rng.integers(0, 9)), m))
    if len(front) > 1:
        front = np.vstack([front, front[:1]])
    points = np.vstack([rng.uniform(-0.2, 1.3, size=(25, m)), front[:2], np.full((1, m), 1.1)])
    return front, points


@pytest.mark.parametrize("seed", range(12))
def test_hvi_2d_is_the_exact_hypervolume_gain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    front, points = _random_case(rng, 2)
    ref = np.array([1.1, 1.1])
    expected = _exact_gain(front, points, ref)
    np.testing.assert_allclose(hvi_2d(front, points, ref), expected, atol=1e-12)
    np.testing.assert_allclose(hvi(front, points, ref), expected, atol=1e-12)


@pytest.mark.parametrize("m", [1, 3])
def test_hvi_is_the_exact_gain_for_one_and_three_objectives(m: int) -> None:
    rng = np.random.default_rng(m)
    ref = np.full(m, 1.1)
    for _ in range(5):
        front, points = _random_case(rng, m)
        np.testing.assert_allclose(
            hvi(front, points, ref), _exact_gain(front, points, ref), atol=1e-12
        )


def test_hvi_of_an_empty_front_is_the_box_up_to_the_reference() -> None:
    points = np.array([[0.1, 0.6], [1.2, 0.0], [0.5, 0.5]])
    ref = np.array([1.1, 1.1])
    np.testing.assert_allclose(hvi_2d(np.empty((0, 2)), points, ref), [0.5, 0.0, 0.36])


def test_domination_gap() -> None:
    front = np.array([[1.0, 3.0], [2.0, 1.0]])
    points = np.array(
        [
            [0.5, 5.0],  # non-dominated
            [1.0, 3.0],  # equal to a member: not dominated
            [3.0, 1.0],  # weakly dominated only
            [2.0, 4.0],  # 1 worse than [1, 3] in every objective
            [4.0, 1.5],  # 0.5 worse than [2, 1] in every objective (2 in one)
            [5.0, 6.0],  # 3 worse than both [1, 3] and [2, 1]
        ]
    )
    np.testing.assert_allclose(domination_gap(front, points), [0, 0, 0, 1.0, 0.5, 3.0])
    np.testing.assert_array_equal(domination_gap(np.empty((0, 2)), points), np.zeros(6))
    rng = np.random.default_rng(0)
    F = rng.random((40, 3))
    nd = non_dominated_mask(F)
    gap = domination_gap(F[nd], F)
    assert np.all(gap[nd] == 0) and np.all(gap[~nd] > 0)


# -- batch selection -----------------------------------------------------------------------------
def _greedy(front: np.ndarray, points: np.ndarray, k: int, ref: np.ndarray) -> list[int]:
    """Reference greedy: every pick rescored from scratch against the grown front."""
    chosen: list[int] = []
    current = front
    for _ in range(k):
        gain = _exact_gain(current, points, ref)
        gain[chosen] = -np.inf
        i = int(np.argmax(gain))
        if gain[i] <= 0:
            break
        chosen.append(i)
        current = np.vstack([current, points[i : i + 1]])
    return chosen


@pytest.mark.parametrize("m", [2, 3])
def test_select_batch_is_the_greedy_hypervolume_batch(m: int) -> None:
    rng = np.random.default_rng(10 + m)
    ref = np.full(m, 1.1)
    for _ in range(4):
        front = rng.uniform(0.2, 1.0, size=(5, m))
        points = rng.uniform(0.0, 1.2, size=(30, m))
        picks = select_batch(front, points, 6, ref)
        assert len(picks) == len(set(picks)) == 6
        assert all(isinstance(i, int) and 0 <= i < 30 for i in picks)
        greedy = _greedy(front, points, 6, ref)
        assert picks[: len(greedy)] == greedy


def test_select_batch_picks_the_dominant_point_first_and_no_duplicate_second() -> None:
    front = np.array([[0.5, 0.5]])
    points = np.array(
        [
            [0.45, 0.45],  # dominates the front only a little
            [0.1, 0.1],  # dominates everything
            [0.11, 0.11],  # almost the same point: adds next to nothing after it
            [0.05, 0.9],  # a different trade-off
            [0.9, 0.05],  # another one
        ]
    )
    picks = select_batch(front, points, 3, np.array([1.1, 1.1]))
    assert picks[0] == 1
    assert set(picks[1:]) == {3, 4}


def test_select_batch_falls_back_to_the_domination_gap() -> None:
    front = np.array([[0.1, 0.1]])
    points = np.array([[0.9, 0.9], [0.2, 0.3], [0.5, 0.15], [1.5, 1.5], [0.3, 0.2]])
    gap = domination_gap(front, points)
    picks = select_batch(front, points, 4, np.array([1.1, 1.1]))
    assert picks == [2, 1, 4, 0]  # smallest gap first, ties in index order
    assert list(gap[picks]) == sorted(gap[picks])
    # One point adds volume: it comes first, the rest follow by gap to the grown front.
    points[3] = [0.05, 0.5]
    assert select_batch(front, points, 3, np.array([1.1, 1.1]))[0] == 3
    # More wanted than there are: all of them, once.
    assert sorted(select_batch(front, points, 9, np.array([1.1, 1.1]))) == [0, 1, 2, 3, 4]


# -- the inner search -----------------------------------------------------------------------------
GAIN = {
    "none": -2.0,
    "skip_connect": 0.5,
    "nor_conv_1x1": 1.5,
    "nor_conv_3x3": 2.5,
    "avg_pool_3x3": 0.2,
}
COST = {"none": 0.0, "skip_connect": 0.1, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}


def _toy_objectives(archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stand-in for predicted (-accuracy, latency) and a latency <= 8 violation."""
    gain = np.array([sum(GAIN[o] * (1 + 0.1 * k) for k, o in enumerate(a["ops"])) for a in archs])
    cost = np.array([1 + sum(COST.get(o, 0.5) for o in a["ops"]) for a in archs])
    return np.column_stack([-gain, cost]), np.maximum(cost - 8.0, 0.0)


def test_evolve_returns_distinct_new_candidates_with_their_predictions() -> None:
    space = create_space("nb201")
    rng = np.random.default_rng(0)
    sample_rng = np.random.default_rng(1)
    start_archs = list(
        {space.to_string(a): a for a in (space.sample(sample_rng) for _ in range(12))}.values()
    )
    F0, v0 = _toy_objectives(start_archs)
    start = [
        Observation(
            arch=a, arch_str=space.to_string(a), objectives=f, violation=float(v), metrics={}
        )
        for a, f, v in zip(start_archs, F0, v0)
    ]
    asked: list[str] = []

    def predict(archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        asked.extend(space.to_string(a) for a in archs)
        return _toy_objectives(archs)

    found = evolve(space, predict, start, rng, population_size=20, generations=6)
    assert len(found.keys) == len(set(found.keys)) == len(found.archs) == len(found.F)
    assert found.keys == [space.to_string(a) for a in found.archs]
    assert not set(found.keys) & {o.arch_str for o in start}
    assert len(asked) == len(set(asked)) == len(found.keys)  # each predicted once, start never
    F, v = _toy_objectives(found.archs)
    np.testing.assert_array_equal(found.F, F)
    np.testing.assert_array_equal(found.violation, v)
    # Selection on the predictions worked: the best feasible candidate beats every start member.
    assert found.F[found.violation == 0, 0].min() < F0[v0 == 0, 0].min()


def test_evolve_from_nothing_and_without_generations() -> None:
    space = create_space("nb201")
    found = evolve(
        space, _toy_objectives, [], np.random.default_rng(0), population_size=10, generations=0
    )
    assert len(set(found.keys)) == len(found.keys) == 10 and found.F.shape == (10, 2)
    again = evolve(
        space, _toy_objectives, [], np.random.default_rng(0), population_size=10, generations=0
    )
    assert again.keys == found.keys


# -- whole searches on the NB201 tables -----------------------------------------------------------
def _budget_regret(trials: Sequence[Any], frame: pd.DataFrame) -> float:
    """Accuracy lost to the best cell under five latency budgets, averaged over the budgets."""
    acc, lat = frame["accuracy"].to_numpy(), frame[LATENCY].to_numpy()
    found_acc = np.array([t.metrics["accuracy"] for t in trials])
    found_lat = np.array([t.metrics[LATENCY] for t in trials])
    regret = []
    for bound in np.quantile(lat, [0.1, 0.25, 0.5, 0.75, 0.9]):
        got = found_acc[found_lat <= bound]
        regret.append(acc[lat <= bound].max() - (got.max() if len(got) else acc.min()))
    return float(np.mean(regret))


def test_beats_random_search_repeats_nothing_and_is_reproducible(
    nb201: Evaluator, synthetic_frame: pd.DataFrame
) -> None:
    linas, random = [], []
    first: list[str] = []
    diagnostics: dict[str, float | str] = {}
    for seed in range(3):
        study = _study(nb201, seed=seed, **SVR)
        study.optimize(60)
        assert len({t.arch for t in study.trials}) == 60 == study.n_charged
        linas.append(_budget_regret(study.trials, synthetic_frame))
        baseline = Study(
            space=create_space("nb201"),
            evaluators=[nb201],
            objectives=TWO,
            strategy=create_strategy("random"),
            seed=seed,
        )
        baseline.optimize(60)
        random.append(_budget_regret(baseline.trials, synthetic_frame))
        if seed == 0:
            first = [t.arch for t in study.trials]
            diagnostics = study.strategy.diagnostics()
    # Seeds 0-7 give 0.8-1.4 points of regret for linas, 1.9-3.6 for random search.
    assert np.mean(linas) < 0.6 * np.mean(random), (linas, random)

    again = _study(nb201, seed=0, **SVR)
    again.optimize(60)
    assert [t.arch for t in again.trials] == first
    shorter = _study(nb201, seed=0, **SVR)  # the budget is not the strategy's business
    shorter.optimize(45)
    assert [t.arch for t in shorter.trials] == first[:45]

    # Four rounds of ten: every chosen architecture's prediction was scored when it was told.
    assert diagnostics["predictor"] == "svr" and diagnostics["rounds"] == 4.0
    for metric in ("accuracy", LATENCY):
        assert diagnostics[f"n_out_of_sample@{metric}"] == 40.0
        assert diagnostics[f"kendall_tau@{metric}"] > 0.4
        assert diagnostics[f"spearman@{metric}"] > 0.5
    assert diagnostics["predicted_candidates_total"] >= diagnostics["predicted_candidates"] > 10


def test_no_rank_quality_before_the_first_round(nb201: Evaluator) -> None:
    study = _study(nb201, **SVR)
    study.optimize(20)
    d = study.strategy.diagnostics()
    assert d["rounds"] == 0.0 and not any(k.startswith("kendall_tau") for k in d)


def test_stratified_initial_design_follows_the_cost_distribution(nb201: Evaluator) -> None:
    space = create_space("nb201")
    ref_rng = np.random.default_rng(123)
    ref = [space.cheap_metrics(space.sample(ref_rng))["flops_m"] for _ in range(1000)]

    def distance(design: str, seed: int) -> float:
        """Kolmogorov-Smirnov distance of the design's FLOPs to those of the whole space."""
        study = _study(nb201, seed=seed, initial_design=design, **SVR)
        flops = [study.problem.cheap_metrics(study.ask())["flops_m"] for _ in range(20)]
        return float(stats.ks_2samp(flops, ref).statistic)

    stratified = [distance("stratified", s) for s in range(4)]
    random = [distance("random", s) for s in range(4)]
    # Seeds 0-11: stratified 0.05-0.08, random 0.06-0.26 (mean 0.15).
    assert max(stratified) < 0.1 and np.mean(stratified) < np.mean(random) - 0.05, (
        stratified,
        random,
    )


def test_constrained_search_proposes_mostly_feasible_architectures(nb201: Evaluator) -> None:
    bound = 4.0  # 12 % of the cells meet it
    study = _study(nb201, seed=0, constraints=[Constraint(LATENCY, le=bound)], **FOREST)
    study.optimize(60)
    latency = np.array([t.metrics[LATENCY] for t in study.trials])
    # Seeds 0-5 give 72-95 % feasible proposals after the initial design (random: ~12 %).
    assert np.mean(latency[20:] <= bound) >= 0.6
    front = study.pareto_front()
    assert front and all(t.metrics[LATENCY] <= bound for t in front)


def test_constraints_on_cheap_metrics_are_exact(nb201: Evaluator) -> None:
    bound = 51.0  # MFLOPs: about a fifth of the cells
    study = _study(nb201, seed=1, constraints=[Constraint("flops_m", le=bound)], **FOREST)
    study.optimize(50)
    flops = np.array([t.metrics["flops_m"] for t in study.trials])
    assert np.all(flops[20:] <= bound)  # computed, not predicted: every proposal is feasible


def test_single_objective_search_finds_a_top_cell(
    nb201: Evaluator, synthetic_frame: pd.DataFrame
) -> None:
    acc = synthetic_frame["accuracy"].to_numpy()
    for seed in range(2):
        study = _study(
            nb201,
            seed=seed,
            objectives=TWO[:1],
            predictor="gp",
            predictor_options={"restarts": 0},
            initial_samples=10,
            batch_size=10,
            population_size=30,
            generations=8,
        )
        study.optimize(40)
        best = max(t.metrics["accuracy"] for t in study.trials)
        # Expected improvement with the GP finds a top-20 cell of 15,625 (random: top ~600).
        assert int((acc > best).sum()) < 100, best
        assert len({t.arch for t in study.trials}) == 40


@pytest.mark.parametrize(
    "variant",
    [
        {"scale": "normal"},
        {"normal_scores": True},
        {"use_cheap_metrics": False},
        {"neighbours": False},
        {"initial_design": "random"},
    ],
    ids=["normal_scale", "normal_score_targets", "one_hot_only", "no_neighbours", "random_design"],
)
def test_variants_still_beat_random_search(
    nb201: Evaluator, synthetic_frame: pd.DataFrame, variant: dict[str, Any]
) -> None:
    regret = []
    for seed in range(3):
        study = _study(nb201, seed=seed, **{**SVR, **variant})
        study.optimize(50)
        assert len({t.arch for t in study.trials}) == 50
        regret.append(_budget_regret(study.trials, synthetic_frame))
    # Over seeds 0-2 every variant averages 1.0-1.3 points; random search 2.8 (1.9 at best).
    assert np.mean(regret) < 2.0, regret


# -- options and resume ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_design": "grid"}, r"initial_design must be one of \('stratified', 'random'\)"),
        ({"batch_size": 0}, "linas: batch_size must be >= 1, got 0"),
        ({"initial_samples": 1}, "linas: initial_samples must be >= 2, got 1"),
        ({"population_size": 3}, "linas: population_size must be >= 4, got 3"),
        ({"generations": -1}, "linas: generations must be >= 0, got -1"),
        ({"window": 2}, "linas: window must be >= 3, got 2"),
        ({"scale": "log"}, r"linas: scale must be one of \('linear', 'normal'\), got 'log'"),
        ({"exploration": -0.5}, "linas: exploration must be >= 0, got -0.5"),
        ({"exploration": float("nan")}, "linas: exploration must be >= 0, got nan"),
        ({"predictor": "gpp"}, r"unknown predictor 'gpp'; did you mean 'gp'"),
        ({"predictor": "nope"}, r"unknown predictor 'nope'; choose from gbdt, gp, lgbm_rf"),
        ({"predictor_options": {"seed": 1}}, "predictor_options may not set 'seed'"),
        (
            {"predictor": "rf", "predictor_options": {"n_estimator": 5}},
            r"predictor 'rf' has no option 'n_estimator'; did you mean 'n_estimators'",
        ),
        (
            {"predictor": "rf", "predictor_options": {"n_estimators": 0}},
            "rf: n_estimators must be > 0, got 0",
        ),
        ({"batch": 5}, r"strategy 'linas' has no option 'batch'; did you mean 'batch_size'"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_strategy("linas", **options)


def test_registered_as_linas() -> None:
    assert isinstance(create_strategy("linas", **SVR), PredictorGuided)


class Crashing(Evaluator):
    """The wrapped evaluator, interrupted at its ``crash_at``-th call."""

    def __init__(self, inner: Evaluator, crash_at: int | None = None) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.calls = 0

    def metrics(self) -> tuple[str, ...]:
        return self.inner.metrics()

    def evaluate(self, arch: Arch) -> dict[str, float]:
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt
        return self.inner.evaluate(arch)

    def key(self) -> str:
        return self.inner.key()


def test_resume_after_a_crash_mid_batch_asks_the_same(nb201: Evaluator, tmp_path: Path) -> None:
    reference = _study(Crashing(nb201), seed=4, **FOREST)
    reference.optimize(50)

    store = SQLiteStore(tmp_path / "study.db")
    crashing = _study(Crashing(nb201, crash_at=36), seed=4, store=store, **FOREST)
    with pytest.raises(KeyboardInterrupt):
        crashing.optimize(50)  # in the second round's batch, with predictions outstanding
    store.close()

    store = SQLiteStore(tmp_path / "study.db")
    ev = Crashing(nb201)
    resumed = _study(ev, seed=4, store=store, **FOREST)
    assert [t.arch for t in resumed.trials] == [t.arch for t in reference.trials[:35]]
    resumed.optimize(50)
    assert ev.calls == 15  # nothing stored is evaluated again
    assert [t.arch for t in resumed.trials] == [t.arch for t in reference.trials]
    assert resumed.strategy.diagnostics() == reference.strategy.diagnostics()
    store.close()
