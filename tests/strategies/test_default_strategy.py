"""The strategy a config that names none gets: Thompson sampling with structural features on a
categorical space; MOEA-BUS with its surrogate on any other, or a fallback without scikit-learn."""

from __future__ import annotations

import importlib.util

import pytest

import hwnas.strategies as strategies
from hwnas import Objective, create_space
from hwnas.problem import Problem
from hwnas.strategies import default_strategy, default_strategy_spec
from hwnas.strategies.evolution import RegularizedEvolution
from hwnas.strategies.moea_bus import MOEABUS
from hwnas.strategies.nsga2 import NSGA2
from hwnas.strategies.thompson import ThompsonPareto

OBJECTIVES = [Objective("params_m", "minimize"), Objective("flops_m", "maximize")]


def _problem(n_objectives: int, space: str = "mbv3") -> Problem:
    options = {"preset": "small"} if space == "mbv3" else {}
    return Problem(create_space(space, **options), tuple(OBJECTIVES[:n_objectives]), ())


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
@pytest.mark.parametrize("n_objectives", [1, 2])
def test_categorical_spaces_get_thompson_with_structure(space: str, n_objectives: int) -> None:
    name, options = default_strategy_spec(_problem(n_objectives, space))
    assert (name, options) == ("thompson", {"structure": True})
    strategy = default_strategy(_problem(n_objectives, space))
    assert isinstance(strategy, ThompsonPareto) and strategy.structure is True


@pytest.mark.parametrize("n_objectives", [1, 2])
def test_other_spaces_get_moea_bus_with_surrogate(n_objectives: int) -> None:
    name, options = default_strategy_spec(_problem(n_objectives))
    assert name == "moea_bus"
    assert options["surrogate"] is True
    strategy = default_strategy(_problem(n_objectives))
    assert isinstance(strategy, MOEABUS)
    assert strategy.surrogate is True
    assert strategy.population_size == options["population_size"]


def test_spec_is_a_copy() -> None:
    _, options = default_strategy_spec(_problem(2))
    options["population_size"] = 999
    assert default_strategy_spec(_problem(2))[1]["population_size"] != 999


@pytest.mark.parametrize(("n_objectives", "cls"), [(1, RegularizedEvolution), (2, NSGA2)])
def test_without_scikit_learn_falls_back(
    monkeypatch: pytest.MonkeyPatch, n_objectives: int, cls: type
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "sklearn" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(strategies.importlib.util, "find_spec", find_spec)
    assert isinstance(default_strategy(_problem(n_objectives)), cls)
    # Thompson needs no scikit-learn: a categorical space keeps it.
    assert isinstance(default_strategy(_problem(n_objectives, "nb201")), ThompsonPareto)
