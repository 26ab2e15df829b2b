"""Conformance suite over every registered predictor, plus rank_quality and NormalScores."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import hwnas.predictors
import hwnas.predictors.targets
from hwnas.errors import ConfigError
from hwnas.predictors import (
    PREDICTORS,
    NotFittedError,
    create_predictor,
    list_predictors,
    rank_quality,
)
from hwnas.predictors.targets import NormalScores

SLOTS, CHOICES = 6, 5  # NB201-shaped one-hot rows: 30 features
N_TRAIN, N_TEST = 150, 100

# Cheap settings, so that the whole suite fits in seconds; the defaults are slower, not better
# on this task.
FAST: dict[str, dict[str, Any]] = {
    "gbdt": {"n_estimators": 100},
    "rf": {"n_estimators": 30},
    "lgbm_rf": {"n_estimators": 30},
    "gp": {"restarts": 0},
    "mlp_ensemble": {"members": 3, "hidden": 16, "max_iter": 100},
    "svr": {},
    "linear_gbdt": {"n_estimators": 100},
    "ridge": {},
    "linear": {},
    "nnls": {},
}
# Held-out Kendall tau each reaches on the task below is 0.08-0.12 above these floors
# (gbdt 0.85, rf 0.76, lgbm_rf 0.77, gp 0.97, mlp_ensemble 0.95, svr 0.89, linear_gbdt 0.86;
# ridge, linear and nnls 0.97: the task is additive).
MIN_TAU = {
    "gbdt": 0.75,
    "rf": 0.65,
    "lgbm_rf": 0.65,
    "gp": 0.85,
    "mlp_ensemble": 0.85,
    "svr": 0.8,
    "linear_gbdt": 0.75,
    "ridge": 0.85,
    "linear": 0.85,
    "nnls": 0.85,
}
# Fitted on targets >= 0 (costs): the task's targets are shifted up for them.
SHIFT = {"nnls": 10.0}
PLAIN = ["linear_gbdt", "ridge", "linear", "nnls"]  # PlainFitted: savable as plain values


def additive_task(seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, ...]:
    """One-hot rows of SLOTS x CHOICES; target = sum of per-slot weights + small noise."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(SLOTS, CHOICES))
    choice = rng.integers(CHOICES, size=(N_TRAIN + N_TEST, SLOTS))
    X = np.zeros((len(choice), SLOTS * CHOICES))
    for s in range(SLOTS):
        X[np.arange(len(choice)), s * CHOICES + choice[:, s]] = 1.0
    y = weights[np.arange(SLOTS), choice].sum(axis=1) + noise * rng.normal(size=len(choice))
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


TASK = additive_task()


def task(name: str) -> tuple[np.ndarray, ...]:
    """The task as ``name`` is fitted on (targets shifted for those that need them >= 0)."""
    X, y, X_test, y_test = TASK
    shift = SHIFT.get(name, 0.0)
    return X, y + shift, X_test, y_test + shift


def make(name: str, seed: int = 0) -> Any:
    return create_predictor(name, seed=seed, **FAST[name])


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Any:
    # gp and mlp_ensemble run through multi-threaded BLAS; on a loaded machine its threads
    # contend and a 0.3 s fit takes 7 s. One thread keeps the suite fast wherever it runs. The
    # limit only reaches libraries already loaded, so one tiny fit of each loads them first.
    X, y, _, _ = TASK
    for name in list_predictors():
        make(name).fit(X[:5], y[:5])
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    """Each predictor fitted once on the task (shared by the tests that only predict)."""
    return {name: make(name).fit(*task(name)[:2]) for name in list_predictors()}


@pytest.fixture(params=list_predictors())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_registry_holds_the_ten_predictors() -> None:
    assert list_predictors() == [
        "gbdt",
        "gp",
        "lgbm_rf",
        "linear",
        "linear_gbdt",
        "mlp_ensemble",
        "nnls",
        "rf",
        "ridge",
        "svr",
    ]
    assert set(FAST) == set(PREDICTORS.names())


def test_ranks_held_out_rows_of_an_additive_task(name: str, fitted: dict[str, Any]) -> None:
    _, _, X_test, y_test = task(name)
    pred = fitted[name].predict(X_test)
    assert pred.shape == (N_TEST,) and np.isfinite(pred).all()
    q = rank_quality(y_test, pred)
    assert q["n"] == N_TEST
    assert q["kendall_tau"] > MIN_TAU[name], q
    assert q["spearman"] > q["kendall_tau"]  # on a monotone-ish relation Spearman is the larger


def test_same_seed_same_predictions(name: str, fitted: dict[str, Any]) -> None:
    X, y, X_test, _ = task(name)
    again = make(name).fit(X, y)
    np.testing.assert_array_equal(again.predict(X_test), fitted[name].predict(X_test))


def test_predict_before_fit_raises(name: str) -> None:
    X = TASK[0]
    p = make(name)
    with pytest.raises(NotFittedError, match=rf"{name}: call fit\(\) before predict\(\)"):
        p.predict(X[:3])
    if p.has_uncertainty:
        with pytest.raises(NotFittedError, match=rf"{name}: call fit\(\) before predict\(\)"):
            p.predict_with_std(X[:3])


def test_wrong_feature_count_names_the_expected_count(name: str, fitted: dict[str, Any]) -> None:
    X = TASK[2][:4]
    with pytest.raises(ConfigError, match=r"expected rows of 30 features, got shape \(4, 29\)"):
        fitted[name].predict(X[:, :-1])
    with pytest.raises(ConfigError, match=r"expected rows of 30 features, got shape \(30,\)"):
        fitted[name].predict(X[0])


def test_bad_training_data_raises(name: str) -> None:
    X, y, _, _ = TASK
    nan_X = X[:20].copy()
    nan_X[3, 4] = np.nan
    with pytest.raises(ConfigError, match=rf"{name}: X and y must be finite"):
        make(name).fit(nan_X, y[:20])
    nan_y = y[:20].copy()
    nan_y[0] = np.inf
    with pytest.raises(ConfigError, match="must be finite"):
        make(name).fit(X[:20], nan_y)
    with pytest.raises(ConfigError, match=rf"{name}: fitting needs at least 2 rows, got 1"):
        make(name).fit(X[:1], y[:1])
    with pytest.raises(ConfigError, match="X has 20 rows but y has 19 values"):
        make(name).fit(X[:20], y[:19])
    with pytest.raises(ConfigError, match=r"X must be 2-D \(rows, features\), got shape \(20,\)"):
        make(name).fit(y[:20], y[:20])


def test_uncertainty_where_announced(name: str, fitted: dict[str, Any]) -> None:
    X_test = TASK[2]
    p = fitted[name]
    if p.has_uncertainty:
        mean, std = p.predict_with_std(X_test)
        assert mean.shape == std.shape == (N_TEST,)
        assert np.isfinite(std).all() and (std > 0).all()
        np.testing.assert_allclose(mean, p.predict(X_test), rtol=1e-9, atol=1e-9)
    else:
        with pytest.raises(NotImplementedError, match="gives no uncertainty"):
            p.predict_with_std(X_test)


def test_describe_names_the_predictor(name: str, fitted: dict[str, Any]) -> None:
    assert fitted[name].describe()["predictor"] == name


def test_constant_target_predicts_the_constant(name: str) -> None:
    X = TASK[0][:20]
    pred = make(name).fit(X, np.full(20, 3.5)).predict(TASK[2][:5])
    np.testing.assert_allclose(pred, 3.5, atol=1e-3)  # the MLPs fit 0 only approximately


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("gbdt", {"num_leaves": 1}, "gbdt: num_leaves must be >= 2, got 1"),
        ("gbdt", {"n_estimators": 0}, "gbdt: n_estimators must be > 0, got 0"),
        ("gbdt", {"learning_rate": -0.1}, "gbdt: learning_rate must be > 0"),
        ("gbdt", {"subsample": 1.5}, r"gbdt: subsample must lie in \(0, 1\], got 1.5"),
        ("rf", {"max_features": 0}, r"rf: max_features must lie in \(0, 1\], got 0"),
        ("rf", {"min_samples_leaf": 0}, "rf: min_samples_leaf must be > 0"),
        ("lgbm_rf", {"subsample": 1.0}, r"lgbm_rf: subsample must lie in \(0, 1\), got 1.0"),
        ("lgbm_rf", {"colsample": 0}, r"lgbm_rf: colsample must lie in \(0, 1\]"),
        ("lgbm_rf", {"num_leaves": 1}, "lgbm_rf: num_leaves must be >= 2"),
        ("gp", {"restarts": -1}, "gp: restarts must be >= 0, got -1"),
        ("gp", {"length_scale": 0}, "gp: length_scale must be > 0"),
        ("gp", {"noise": -1}, "gp: noise must be > 0"),
        ("mlp_ensemble", {"members": 0}, "mlp_ensemble: members must be > 0"),
        ("mlp_ensemble", {"alpha": -1}, "mlp_ensemble: alpha must be >= 0"),
        ("svr", {"gamma": "bogus"}, "svr: gamma must be a number, 'scale' or 'auto', got 'bogus'"),
        ("svr", {"gamma": 0.0}, "svr: gamma must be > 0"),
        ("svr", {"C": 0}, "svr: C must be > 0"),
        ("svr", {"epsilon": -0.1}, "svr: epsilon must be >= 0"),
        ("linear_gbdt", {"num_leaves": 1}, "linear_gbdt: num_leaves must be >= 2, got 1"),
        ("linear_gbdt", {"n_estimators": 0}, "linear_gbdt: n_estimators must be > 0, got 0"),
        ("linear_gbdt", {"min_child_samples": 0}, "linear_gbdt: min_child_samples must be > 0"),
        ("ridge", {"alpha": 1.0}, "predictor 'ridge' has no option 'alpha'"),
    ],
)
def test_bad_options_fail_at_construction(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_predictor(name, **options)


def test_unknown_names_and_options_suggest_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown predictor 'gpp'; did you mean 'gp'"):
        create_predictor("gpp")
    with pytest.raises(ConfigError, match=r"predictor 'gbdt' has no option 'num_leaf'"):
        create_predictor("gbdt", num_leaf=4)


# -- plain (savable) predictors -------------------------------------------------------------------
@pytest.mark.parametrize("name", PLAIN)
def test_plain_predictors_rebuild_from_their_state_exactly(
    name: str, fitted: dict[str, Any]
) -> None:
    import json

    p = fitted[name]
    state = json.loads(json.dumps(p.state()))  # plain JSON values survive a round trip
    back = PREDICTORS.get(name).from_state(state, TASK[0].shape[1], **FAST[name])
    X_test = TASK[2]
    assert np.array_equal(back.predict(X_test), p.predict(X_test))  # bit for bit
    with pytest.raises(ConfigError, match=rf"^{name}: state field"):
        PREDICTORS.get(name).from_state({}, TASK[0].shape[1])
    if name != "linear_gbdt":
        with pytest.raises(ConfigError, match=r"'coef' is missing or not 29 numbers"):
            PREDICTORS.get(name).from_state(state, 29)


def test_plain_predictors_see_rows_and_targets_as_they_are() -> None:
    X = np.array([[1.0], [2.0], [4.0], [8.0]])
    line = create_predictor("linear").fit(X, 3.0 * X[:, 0] - 2.0)
    assert line.state()["coef"] == pytest.approx([3.0]) and line.state()[
        "intercept"
    ] == pytest.approx(-2.0)
    # On one column, the line numpy's polyfit finds, to the last bit.
    rng = np.random.default_rng(0)
    x, y = rng.random(50) * 100, rng.random(50)
    slope, intercept = np.polyfit(x, y, 1)
    got = create_predictor("linear").fit(x[:, None], y).state()
    assert (got["coef"][0], got["intercept"]) == (float(slope), float(intercept))
    # nnls: non-negative weights that fit a non-negative sum exactly, relative error weighting.
    A = rng.random((30, 3))
    p = create_predictor("nnls").fit(A, A @ [0.5, 0.0, 2.0] + 0.1)
    np.testing.assert_allclose(p.predict(A), A @ [0.5, 0.0, 2.0] + 0.1, rtol=1e-9)
    assert min(p.state()["coef"]) >= 0.0 and p.state()["intercept"] == pytest.approx(0.1)


# -- rank_quality ---------------------------------------------------------------------------------
def test_rank_quality_of_perfect_reversed_and_constant_predictions() -> None:
    y = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    perfect = rank_quality(y, 2 * y + 1)  # any increasing map ranks perfectly
    assert perfect == {"kendall_tau": pytest.approx(1.0), "spearman": pytest.approx(1.0), "n": 6}
    reversed_ = rank_quality(y, -y)
    assert reversed_["kendall_tau"] == pytest.approx(-1.0)
    assert reversed_["spearman"] == pytest.approx(-1.0)
    for constant in (rank_quality(y, np.full(6, 2.0)), rank_quality(np.ones(6), y)):
        assert np.isnan(constant["kendall_tau"]) and np.isnan(constant["spearman"])
        assert constant["n"] == 6.0
    assert np.isnan(rank_quality(y[:2], y[:2])["kendall_tau"])  # too few to rank


# -- NormalScores ---------------------------------------------------------------------------------
SAMPLE = np.array([10.0, 90.0, 91.0, 93.0, 91.0, 95.5, 60.0, 88.0])  # heavy left tail, a tie


def test_normal_scores_are_monotone_and_invert_on_the_fitted_values() -> None:
    t = NormalScores().fit(SAMPLE)
    z = t.forward(SAMPLE)
    np.testing.assert_allclose(t.inverse(z), SAMPLE, rtol=0, atol=1e-9)
    assert z[2] == z[4]  # tied values share a score
    # Distinct values: strictly increasing scores, symmetric around 0 like normal quantiles.
    values = np.unique(SAMPLE)
    scores = t.forward(values)
    assert np.all(np.diff(scores) > 0)
    assert scores[0] == pytest.approx(-scores[-1])
    grid = np.linspace(-100.0, 200.0, 3001)
    assert np.all(np.diff(t.forward(grid)) > 0)
    z_grid = np.linspace(-6.0, 6.0, 1201)
    assert np.all(np.diff(t.inverse(z_grid)) > 0)
    np.testing.assert_allclose(t.forward(t.inverse(z_grid)), z_grid, atol=1e-9)


def test_normal_scores_extrapolate_linearly_beyond_the_ends() -> None:
    t = NormalScores().fit(SAMPLE)
    lo, hi = SAMPLE.min(), SAMPLE.max()
    below = t.forward(lo - np.array([0.0, 5.0, 10.0, 50.0]))
    above = t.forward(hi + np.array([0.0, 5.0, 10.0, 50.0]))
    for side in (below, above):
        step = np.diff(side) / np.diff([0.0, 5.0, 10.0, 50.0])
        np.testing.assert_allclose(step, step[0])  # one slope: linear
    assert np.all(np.diff(below) < 0) and np.all(np.diff(above) > 0)  # and monotone
    # The slope reported beyond the ends is the one the extrapolation uses.
    z_lo, z_hi = t.forward(np.array([lo, hi]))
    assert t.slope(np.array([z_lo - 1.0]))[0] == pytest.approx(-5.0 / (below[1] - below[0]))
    assert t.slope(np.array([z_hi + 1.0]))[0] == pytest.approx(5.0 / (above[1] - above[0]))


def test_normal_scores_slope_is_positive_and_matches_the_inverse() -> None:
    t = NormalScores().fit(SAMPLE)
    z = np.linspace(-3.0, 3.0, 601)
    slope = t.slope(z)
    assert np.all(slope > 0) and np.isfinite(slope).all()
    # Between knots the inverse is linear, so its finite difference is the slope there.
    mid = (z[:-1] + z[1:]) / 2
    numeric = np.diff(t.inverse(z)) / np.diff(z)
    knots = t.forward(np.unique(SAMPLE))
    clear = np.all(np.abs(mid[:, None] - knots[None, :]) > 0.02, axis=1)
    np.testing.assert_allclose(t.slope(mid)[clear], numeric[clear], rtol=1e-6)


def test_normal_scores_of_a_constant_sample() -> None:
    t = NormalScores().fit(np.full(5, 7.0))
    assert t.forward(np.array([7.0]))[0] == pytest.approx(0.0)
    assert t.inverse(np.array([0.0]))[0] == pytest.approx(7.0)
    values = np.array([5.0, 6.9, 7.0, 7.1, 9.0])
    assert np.all(np.diff(t.forward(values)) > 0)
    np.testing.assert_allclose(t.inverse(t.forward(values)), values)
    assert np.all(t.slope(np.array([-2.0, 0.0, 2.0])) > 0)


def test_normal_scores_need_two_values() -> None:
    for too_few in (np.array([]), np.array([3.0])):
        with pytest.raises(ValueError, match=f"at least 2 values, got {len(too_few)}"):
            NormalScores().fit(too_few)
    two = NormalScores().fit(np.array([1.0, 2.0]))
    assert two.forward(np.array([1.0]))[0] < 0 < two.forward(np.array([2.0]))[0]


@pytest.mark.parametrize("module", [hwnas.predictors, hwnas.predictors.targets])
def test_module_docstring_examples_run(module: Any) -> None:
    tests = doctest.DocTestFinder(recurse=False).find(module)
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_out_of_sample_pairs_predictions_with_told_values_in_a_window() -> None:
    from hwnas.predictors.base import OutOfSample

    q = OutOfSample(window=3)
    for i in range(5):
        q.promise(f"a{i}", {"acc": float(i), "lat": float(-i)})
    q.settle("a0", None)  # failed: its promise is dropped, nothing counted
    q.settle("a1", {"acc": 1.0, "lat": float("nan")})  # no finite latency: only accuracy counts
    for i in (2, 3, 4):
        q.settle(f"a{i}", {"acc": float(i), "lat": float(i)})
    q.settle("never-asked", {"acc": 9.0})
    assert q.promised == {}
    assert q.pairs["acc"] == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]  # the last 3 only
    report = q.report()
    assert report["kendall_tau@acc"] == 1.0 and report["n_out_of_sample@acc"] == 3.0
    assert report["kendall_tau@lat"] == -1.0  # predictions ranked the wrong way round
