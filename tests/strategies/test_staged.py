"""staged: the first strategy's proposals unchanged, then the second, told everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas import ConfigError, Objective, Study, create_space, create_strategy
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.strategies.moea_bus import MOEABUS

TWO = [Objective("accuracy", "maximize"), Objective("latency_ms@raspi4", "minimize")]
THEN = {"name": "moea_bus", "surrogate": True, "population_size": 10, "screen_factor": 30}


@pytest.fixture(scope="module")
def nb201(synthetic_nb201_dir: Path) -> Evaluator:
    space = create_space("nb201")
    return create_evaluator(
        "nb201", EvaluatorContext(space=space, data_dir=synthetic_nb201_dir), dataset="cifar10"
    )


def _run(strategy, evaluator: Evaluator, budget: int, seed: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    study = Study(
        space=create_space("nb201"),
        evaluators=[evaluator],
        objectives=TWO,
        strategy=strategy,
        seed=seed,
    )
    study.optimize(budget)
    return [t.arch for t in study.trials if t.charged]


def test_first_stage_proposes_exactly_what_the_first_strategy_alone_does(nb201: Evaluator) -> None:
    alone = _run(create_strategy("thompson"), nb201, 30)
    staged = create_strategy("staged", first="thompson", then=THEN, switch_after=20)
    both = _run(staged, nb201, 30)
    assert both[:20] == alone[:20]
    assert both[20:] != alone[20:]  # MOEA-BUS breeds from the pool from then on
    assert len(set(both)) == 30
    assert staged.stage == "then"
    assert staged.diagnostics()["stage"] == "then"


def test_the_second_strategy_starts_from_everything_told(nb201: Evaluator) -> None:
    staged = create_strategy("staged", first="random", then=THEN, switch_after=25)
    archs = _run(staged, nb201, 35)
    then = staged.then
    assert isinstance(then, MOEABUS)
    # No uniform start of its own: its first pool was the 25 random results, and its first
    # generation of 10 children was bred from them.
    assert then.generation >= 1
    assert set(then.main_population) <= set(archs)
    assert [then.origin[a] for a in archs[25:]] != ["init"] * 10
    assert {then.origin[a] for a in archs[:25]} == {"init"}


def test_a_run_to_a_larger_budget_repeats_the_smaller_one(nb201: Evaluator) -> None:
    def make():  # type: ignore[no-untyped-def]
        return create_strategy("staged", first="thompson", then=THEN, switch_after=15)

    short = _run(make(), nb201, 25, seed=3)
    long = _run(make(), nb201, 40, seed=3)
    assert long[:25] == short


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"first": "staged"}, "staged: first cannot be 'staged'; use a sampling strategy"),
        ({"then": {"name": "darts"}}, "staged: then cannot be 'darts'"),
        ({"then": {"population_size": 3}}, "then must be a strategy name or a mapping with 'name'"),
        ({"first": "thompsn"}, "thompson"),
        ({"switch_after": 0}, "staged: switch_after must be >= 1, got 0"),
        (
            {"then": {"name": "moea_bus", "population_size": 1}},
            "staged: then: moea_bus: population_size",
        ),
    ],
)
def test_bad_options_give_one_line(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message) as info:
        create_strategy("staged", **options)
    assert "\n" not in str(info.value)
