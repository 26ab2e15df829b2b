"""Structural features for the strategies' models (hwnas.strategies.structure) and thompson's
``structure`` option: which columns are kept, and that the evidence takes them when they explain
the data."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas import ConfigError, create_space
from hwnas.strategies.structure import structural_columns
from hwnas.strategies.thompson import ThompsonPareto
from hwnas.strategies.thompson_model import BayesLinear, PairwiseFeatures


def test_nb201_keeps_the_graph_facts_and_drops_the_additive_columns() -> None:
    space = create_space("nb201")
    names, columns = structural_columns(space)
    for kept in (
        "n_paths",
        "max_path_convs",
        "degenerate",
        "live_flops_m",
        "live_edge0=skip_connect",
    ):
        assert kept in names
    for dropped in ("flops_m", "params_m", "count=none", "edge0=none", "stage0_flops_m"):
        assert dropped not in names  # a sum over slots: the one-hot code holds it already
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 5, size=(3000, 6))
    X = columns(codes)
    assert X.shape == (3000, len(names))
    assert np.abs(X.mean(axis=0)).max() < 0.1 and np.abs(X.std(axis=0) - 1).max() < 0.1
    # The all-none cell has no path: degenerate is on, n_paths at its lowest.
    none_cell = columns(np.zeros((1, 6), dtype=int))[0]
    assert none_cell[names.index("n_paths")] == X[:, names.index("n_paths")].min()


def test_spaces_without_graph_facts_have_no_columns() -> None:
    # FBNet's features are all per-layer sums; a toy space has no feature set at all.
    user = create_space("categorical", slots={"a": [1, 2, 3], "b": ["x", "y"]})
    for space in (create_space("fbnet"), user):
        names, columns = structural_columns(space)
        assert names == ()
        assert columns(np.zeros((4, len(space.slots)), dtype=int)).shape == (4, 0)


def test_evidence_takes_the_structure_when_it_explains_the_data() -> None:
    space = create_space("nb201")
    names, columns = structural_columns(space)
    f = PairwiseFeatures([5] * 6, structure=columns)
    assert f.n_features == 30 + 375 + len(names)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, size=(60, 6))
    y = columns(codes)[:, names.index("n_paths")] + 0.05 * rng.standard_normal(60)
    model = BayesLinear(f).fit(codes, y)
    assert model.structure_scale > 0.0
    test = rng.integers(0, 5, size=(500, 6))
    truth = columns(test)[:, names.index("n_paths")]
    plain = BayesLinear(PairwiseFeatures([5] * 6)).fit(codes, y)
    with_structure = np.corrcoef(model.mean_std(model.rows(test))[0], truth)[0, 1]
    without = np.corrcoef(plain.mean_std(plain.rows(test))[0], truth)[0, 1]
    assert with_structure > 0.95 > without


def test_thompson_structure_option_is_checked() -> None:
    with pytest.raises(ConfigError, match="structure must be true or false"):
        ThompsonPareto(structure="yes")  # type: ignore[arg-type]
