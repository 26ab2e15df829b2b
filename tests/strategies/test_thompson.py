"""thompson: its model (features, warp, Bayesian posterior) and what is particular to its search.

The conformance suite runs it with its defaults on every objective count; these tests check the
pieces against closed forms and the search's own rules (locality, pending asks, large spaces).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas import ConfigError, Objective, Study, create_space, create_strategy
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Problem
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.thompson import ThompsonPareto
from hwnas.strategies.thompson_model import BayesLinear, PairwiseFeatures, Warp, _Posterior

LATENCY = "latency_ms@raspi4"
TWO = [Objective("accuracy", "maximize"), Objective(LATENCY, "minimize")]


@pytest.fixture(scope="module")
def nb201(synthetic_nb201_dir: Path) -> Evaluator:
    space = create_space("nb201")
    return create_evaluator(
        "nb201", EvaluatorContext(space=space, data_dir=synthetic_nb201_dir), dataset="cifar10"
    )


# -- features -------------------------------------------------------------------------------------
def test_pairwise_features_hold_one_hot_codes_and_every_pair() -> None:
    f = PairwiseFeatures([5] * 6)
    assert (f.n_one_hot, f.n_pairwise, len(f.pairs)) == (30, 15 * 25, 15)
    codes = np.array([[0, 1, 2, 3, 4, 0], [4, 4, 4, 4, 4, 4]])
    X = f.transform(codes)
    assert X.shape == (2, 405)
    assert X[:, :30].sum(axis=1).tolist() == [6.0, 6.0]  # one choice per slot
    assert X[:, 30:].sum(axis=1).tolist() == [15.0, 15.0]  # one active cell per pair
    assert X[0, 5 * 2 + 2] == 1.0  # slot 2 chose 2
    # Pair (0, 1) comes first: choice (0, 1) is its column 0 * 5 + 1.
    assert X[0, 30 + 1] == 1.0
    X_half = f.transform(codes, interaction_scale=0.5)
    np.testing.assert_array_equal(X_half[:, :30], X[:, :30])
    np.testing.assert_array_equal(X_half[:, 30:], 0.5 * X[:, 30:])
    assert not f.transform(codes, interaction_scale=0.0)[:, 30:].any()


def test_pairwise_features_fall_back_to_a_chain_when_all_pairs_are_too_many() -> None:
    f = PairwiseFeatures([9] * 22, max_features=2000)  # the FBNet space: 231 pairs x 81
    assert f.pairs == [(i, i + 1) for i in range(21)]
    assert f.n_features == 22 * 9 + 21 * 81


# -- warp -----------------------------------------------------------------------------------------
def test_warp_inverts_and_its_jacobian_is_the_derivative() -> None:
    rng = np.random.default_rng(0)
    y = 94.0 - rng.exponential(3.0, size=200)  # accuracy-like: piled up below a ceiling
    warp = Warp.fitted(y)
    assert warp.lam is not None and warp.lam > 1.0  # left skew is undone by a convex power
    np.testing.assert_allclose(warp.inverse(warp.forward(y)), y, rtol=1e-9)
    h = 1e-6
    numeric = np.sum(np.log((warp.forward(y + h) - warp.forward(y - h)) / (2 * h)))
    assert warp.log_jacobian(y) == pytest.approx(numeric, rel=1e-4)
    for lam in (-0.5, 0.0, 2.0, 3.0):  # both branches, including the special exponents
        w = Warp(lam)
        t = np.array([-0.3, -0.2, 0.0, 0.7, 1.5])  # inside the image of every exponent
        np.testing.assert_allclose(w.forward(w.inverse(t)), t, atol=1e-9)
    assert np.isfinite(Warp(9.0).inverse(np.array([-1e6, 1e6]))).all()
    assert Warp(None).log_jacobian(y) == 0.0


# -- posterior ------------------------------------------------------------------------------------
def test_posterior_matches_evidence_maximising_ridge_of_scikit_learn() -> None:
    from sklearn.linear_model import BayesianRidge

    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 20))
    z = X @ rng.standard_normal(20) + 0.3 * rng.standard_normal(120)
    post = _Posterior(X, z, max_iter=300)
    ref = BayesianRidge(
        max_iter=300, tol=1e-8, alpha_1=0, alpha_2=0, lambda_1=0, lambda_2=0, compute_score=True
    ).fit(X, z)
    np.testing.assert_allclose(post.coef, ref.coef_, rtol=1e-5, atol=1e-8)
    assert post.alpha == pytest.approx(ref.alpha_, rel=1e-4)
    assert post.lam == pytest.approx(ref.lambda_, rel=1e-4)
    assert post.log_evidence == pytest.approx(ref.scores_[-1], rel=1e-6)
    Xt = rng.standard_normal((7, 20))
    mean, sd = post.predictive(Xt)
    ref_mean = ref.predict(Xt)
    # The predictive spread from scikit-learn's posterior (sigma_, alpha_) on centred inputs;
    # its own predict(return_std=True) left the inputs uncentred before scikit-learn 1.9.
    centred = Xt - ref.X_offset_
    ref_sd = np.sqrt(np.sum(centred @ ref.sigma_ * centred, axis=1) + 1.0 / ref.alpha_)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sd, ref_sd, rtol=1e-4)
    # Draws (Matheron's rule) have the posterior's mean and covariance.
    W = np.array([post.draw(rng) for _ in range(4000)])
    np.testing.assert_allclose(W.mean(axis=0), post.coef, atol=0.01)
    np.testing.assert_allclose(np.cov(W.T), ref.sigma_, atol=0.002)


def _ops_table(n: int, seed: int, interaction: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 5, size=(n, 6))
    table = np.random.default_rng(99).normal(size=(6, 5))  # the same function for every seed
    y = table[np.arange(6), codes].sum(axis=1)  # additive, like a latency lookup table
    y += interaction * ((codes[:, 0] == codes[:, 3]) * 2.0 - 1.0)  # slots 0 and 3 act together
    return codes, y + 0.05 * rng.standard_normal(n)


def test_evidence_keeps_additive_data_additive_and_finds_interactions() -> None:
    f = PairwiseFeatures([5] * 6)
    codes, y = _ops_table(150, 0, interaction=0.0)
    assert BayesLinear(f).fit(codes, y).scale == 0.0
    codes, y = _ops_table(150, 0, interaction=1.5)
    model = BayesLinear(f).fit(codes, y)
    assert model.scale > 0.0
    test_codes, test_y = _ops_table(500, 1, interaction=1.5)
    pred, half = model.mean_std(model.rows(test_codes))
    additive = BayesLinear(f)
    additive.scale, additive.warp = 0.0, Warp(None)
    additive = BayesLinear(f).fit(codes, y, keep=additive)
    flat, _ = additive.mean_std(additive.rows(test_codes))
    assert np.corrcoef(pred, test_y)[0, 1] > 0.85 > np.corrcoef(flat, test_y)[0, 1]
    assert (half > 0).all()
    # A refit under the kept choice reproduces it.
    again = BayesLinear(f).fit(codes, y, keep=model)
    assert (again.scale, again.warp.lam) == (model.scale, model.warp.lam)
    np.testing.assert_allclose(again.coef, model.coef)


# -- the search -----------------------------------------------------------------------------------
def test_rejects_bad_options_and_non_categorical_spaces() -> None:
    with pytest.raises(ConfigError, match="initial_samples must be >= 2"):
        ThompsonPareto(initial_samples=1)
    with pytest.raises(ConfigError, match="locality must be >= 0"):
        ThompsonPareto(locality=-1)

    class Widths(SearchSpace):  # a list of integers, not one choice per slot
        name = "widths"

        def sample(self, rng: np.random.Generator) -> Arch:
            return {"widths": [int(w) for w in rng.integers(8, 64, size=3)]}

        def to_string(self, arch: Arch) -> str:
            return ",".join(map(str, arch["widths"]))

        def from_string(self, text: str) -> Arch:
            return {"widths": [int(w) for w in text.split(",")]}

    problem = Problem(Widths(), (Objective("accuracy", "maximize"),), ())
    with pytest.raises(ConfigError, match="needs a categorical space"):
        ThompsonPareto().setup(problem, np.random.default_rng(0))


def _study(evaluator: Evaluator, seed: int = 0, **options: object) -> Study:
    return Study(
        space=create_space("nb201"),
        evaluators=[evaluator],
        objectives=TWO,
        strategy=create_strategy("thompson", **options),
        seed=seed,
    )


def test_asks_stay_within_locality_of_the_evaluated_front(nb201: Evaluator) -> None:
    study = _study(nb201, initial_samples=8, locality=1)
    study.optimize(budget=8)
    strategy = study.strategy
    assert isinstance(strategy, ThompsonPareto)
    space = create_space("nb201")
    for _ in range(15):
        near = strategy._near_front()
        assert 0 < near.sum() < 15_625 / 10  # a neighbourhood, not the space
        arch = study.ask()
        assert near[int(space.encode(arch) @ strategy._strides)], "asked outside the front's"
        study.tell(arch, nb201.evaluate(arch))
    diagnostics = strategy.diagnostics()
    assert diagnostics["model"] == "bayes_linear"
    assert f"interaction_scale@{LATENCY}" in diagnostics
    assert 0.0 < float(diagnostics[f"noise_share@{LATENCY}"]) <= 1.0
    # Every model-chosen ask was scored against its told value: 15 out-of-sample pairs.
    assert diagnostics[f"n_out_of_sample@{LATENCY}"] == 15.0
    assert -1.0 <= float(diagnostics["kendall_tau@accuracy"]) <= 1.0


def test_pending_asks_are_not_repeated(nb201: Evaluator) -> None:
    study = _study(nb201, initial_samples=6)
    study.optimize(budget=6)
    asked = [study.ask() for _ in range(6)]  # six parallel workers, nothing told yet
    keys = {create_space("nb201").to_string(a) for a in asked}
    assert len(keys) == 6


def test_large_spaces_go_through_the_inner_search(nb201: Evaluator) -> None:
    study = _study(nb201, initial_samples=8, enumerate_limit=0, population_size=16, generations=3)
    study.optimize(budget=30)
    strategy = study.strategy
    assert isinstance(strategy, ThompsonPareto) and strategy._all is None
    archs = [t.arch for t in study.trials]
    assert len(archs) == len(set(archs)) == 30


def test_finds_a_better_front_than_random_search(nb201: Evaluator) -> None:
    """Mean hypervolume over 3 seeds at 40 evaluations, on the synthetic NB201 table."""
    from hwnas.pareto import hypervolume, non_dominated_mask

    table = nb201.table()
    assert table is not None
    F_all = np.column_stack([-table["accuracy"], table[LATENCY]]).astype(float)
    lo, hi = F_all.min(axis=0), F_all.max(axis=0)

    def hv(study: Study) -> float:
        F = np.array([[-t.metrics["accuracy"], t.metrics[LATENCY]] for t in study.trials])
        Z = (F - lo) / (hi - lo)
        return hypervolume(Z[non_dominated_mask(Z)], np.array([1.01, 1.01]))

    mine, rand = [], []
    for seed in range(3):
        study = _study(nb201, seed=seed)
        study.optimize(budget=40)
        mine.append(hv(study))
        baseline = Study(
            space=create_space("nb201"),
            evaluators=[nb201],
            objectives=TWO,
            strategy=create_strategy("random"),
            seed=seed,
        )
        baseline.optimize(budget=40)
        rand.append(hv(baseline))
    assert np.mean(mine) > np.mean(rand)


class _FBNetSynthetic(Evaluator):
    """Accuracy grows with expansion and kernel, latency is a per-layer lookup table."""

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@dev")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        gain = {"skip": 0.0, "e1": 0.5, "e3": 1.0, "e6": 1.4}
        acc = lat = 0.0
        for i, op in enumerate(arch["ops"]):
            expand = op.split("_")[1] if op != "skip" else "skip"
            kernel = 1.2 if op.startswith("k5") else 1.0
            acc += gain[expand] * kernel * (1.0 + 0.02 * i)
            lat += (0.1 if op == "skip" else {"e1": 0.4, "e3": 1.0, "e6": 2.0}[expand]) * kernel
        return {"accuracy": 60.0 + acc, "latency_ms@dev": 1.0 + lat}


def test_runs_on_the_fbnet_space_with_chain_interactions() -> None:
    space = create_space("fbnet")
    study = Study(
        space=space,
        evaluators=[_FBNetSynthetic()],
        objectives=[Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")],
        strategy=create_strategy("thompson", population_size=16, generations=3),
        seed=0,
    )
    study.optimize(budget=25)
    strategy = study.strategy
    assert isinstance(strategy, ThompsonPareto)
    assert strategy._all is None  # 9^22 architectures: through the inner search
    assert strategy._features.pairs == [(i, i + 1) for i in range(21)]
    assert len({t.arch for t in study.trials}) == 25
    diagnostics = strategy.diagnostics()
    assert diagnostics["interaction_scale@latency_ms@dev"] in (0.0, 0.35, 1.0)
