"""The shared NSGA-II mating loop (hwnas.strategies.mating), the option checks
(hwnas.strategies.checks), and golden sequences of the strategies that breed with them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from test_strategies_conformance import Synthetic

from hwnas import ConfigError, Constraint, Objective, Study, create_space, create_strategy
from hwnas.spaces.categorical import UserCategoricalSpace
from hwnas.strategies.checks import at_least, in_unit_interval, one_of
from hwnas.strategies.inner_search import evolve
from hwnas.strategies.mating import Tournament, breed, offspring
from hwnas.trial import Observation

TWO = [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")]
SPACE = UserCategoricalSpace(slots={"a": ["x", "y"], "b": ["x", "y"]})  # 4 architectures


def _obs(arch: dict, objectives: tuple[float, ...], violation: float = 0.0) -> Observation:
    return Observation(
        arch=arch,
        arch_str=SPACE.to_string(arch),
        objectives=np.array(objectives, dtype=float),
        violation=violation,
        metrics={},
    )


XX, XY, YX, YY = ({"ops": [a, b]} for a in "xy" for b in "xy")


def test_tournament_prefers_lower_rank_then_larger_crowding() -> None:
    members = [_obs(XX, (0.0, 0.0)), _obs(XY, (1.0, 1.0)), _obs(YX, (0.5, 0.5), violation=1.0)]
    t = Tournament(members, np.random.default_rng(0))
    assert list(t.rank) == [0, 1, 2]  # dominated, then infeasible
    assert t.winner(1, 0) is members[0] and t.winner(0, 2) is members[0]
    assert t.winner(2, 1) is members[1]  # feasibility first
    same = Tournament(members[:2], np.random.default_rng(0), np.array([0, 0]), np.array([1.0, 2.0]))
    assert same.winner(0, 1) is members[1]  # same rank: larger crowding distance wins
    tie = Tournament(members[:2], np.random.default_rng(0), np.array([0, 0]), np.array([1.0, 1.0]))
    assert tie.winner(0, 1) is members[1]  # a tie goes to the second contestant


def test_tournament_draws_two_or_four_contestants_per_pair() -> None:
    members = [_obs(XX, (0.0, 0.0)), _obs(XY, (1.0, 1.0)), _obs(YX, (2.0, 2.0))]
    one, together = np.random.default_rng(3), np.random.default_rng(3)
    a, b = Tournament(members, one).pair()
    c, d = Tournament(members, together).pair_drawn_together()
    assert (a, b) == (c, d)  # the same contestants, drawn in one call instead of two
    expect = np.random.default_rng(3).integers(3, size=4)
    assert a is members[min(expect[:2])] and b is members[min(expect[2:])]


def test_breed_copies_the_first_parent_without_crossover_then_mutates() -> None:
    rng = np.random.default_rng(0)
    parents = (_obs(XX, (0.0,)), _obs(YY, (0.0,)))
    for _ in range(20):
        child = breed(SPACE, rng, lambda: parents, crossover_prob=0.0, mutations=1)
        assert SPACE.to_string(child) in {SPACE.to_string(XY), SPACE.to_string(YX)}
    twice = {
        SPACE.to_string(breed(SPACE, rng, lambda: parents, crossover_prob=0.0, mutations=2))
        for _ in range(30)
    }
    assert twice <= {SPACE.to_string(a) for a in (XX, XY, YX, YY)} and len(twice) > 1


def test_offspring_are_new_and_fall_back_when_breeding_only_repeats() -> None:
    parents = (_obs(XX, (0.0,)), _obs(XX, (0.0,)))
    taken = {SPACE.to_string(a) for a in (XX, XY, YX)}  # every child of XX is taken
    calls: list[set[str]] = []

    def fallback(seen: set[str]) -> dict:
        calls.append(set(seen))
        return YY

    kids = offspring(
        SPACE,
        np.random.default_rng(0),
        lambda: parents,
        1,
        taken,
        crossover_prob=0.0,
        fallback=fallback,
    )
    assert kids == [YY] and len(calls) == 1
    assert SPACE.to_string(YY) in taken  # the child joins the taken set
    # Without a fallback (or one that gives up) breeding stops at the first such child.
    taken = {SPACE.to_string(a) for a in (XX, XY, YX)}
    rng = np.random.default_rng(0)
    assert offspring(SPACE, rng, lambda: parents, 3, taken, crossover_prob=0.0) == []
    assert (
        offspring(
            SPACE, rng, lambda: parents, 3, taken, crossover_prob=0.0, fallback=lambda s: None
        )
        == []
    )


def test_offspring_stop_after_the_total_number_of_tries() -> None:
    seen: list[int] = []
    parents = (_obs(XX, (0.0,)), _obs(XX, (0.0,)))

    def counted() -> tuple[Observation, Observation]:
        seen.append(1)
        return parents

    kids = offspring(
        SPACE,
        np.random.default_rng(0),
        counted,
        4,
        {SPACE.to_string(XX)},
        crossover_prob=0.0,
        tries_per_child=100,
        total_tries=7,
    )
    # XY and YX are the only children XX can have: two new ones, then repeats until 7 tries.
    assert sorted(SPACE.to_string(k) for k in kids) == sorted(map(SPACE.to_string, (XY, YX)))
    assert len(seen) == 7


def test_option_checks_name_the_strategy_the_option_and_the_value() -> None:
    at_least("s", a=(2, 2), b=(0.0, 0))
    with pytest.raises(ConfigError, match=r"^s: b must be >= 1, got 0$"):
        at_least("s", a=(2, 2), b=(0, 1), c=(-5, 0))  # the first bad option is reported
    with pytest.raises(ConfigError, match=r"^s: x must be >= 0, got nan$"):
        at_least("s", x=(float("nan"), 0))
    in_unit_interval("s", p=0.0, q=1.0)
    with pytest.raises(ConfigError, match=r"^s: q must lie in \[0, 1\], got 1.5$"):
        in_unit_interval("s", p=0.5, q=1.5)
    one_of("s", mode=("a", ("a", "b")))
    with pytest.raises(ConfigError, match=r"^s: mode must be one of \('a', 'b'\), got 'c'$"):
        one_of("s", mode=("c", ("a", "b")))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("nsga2", {"population_size": 1}, "nsga2: population_size must be >= 2, got 1"),
        ("nsga2", {"crossover_prob": 2.0}, r"nsga2: crossover_prob must lie in \[0, 1\], got 2.0"),
        ("nsga2", {"mutations": 0}, "nsga2: mutations must be >= 1, got 0"),
        ("moea_bus", {"crossover_prob": -0.1}, r"moea_bus: crossover_prob must lie in \[0, 1\]"),
        ("moea_bus", {"mutations": 0}, "moea_bus: mutations must be >= 1, got 0"),
        ("evolution", {"population_size": 1}, "evolution: population_size must be >= 2, got 1"),
        ("local_search", {"initial_samples": 0}, "local_search: initial_samples must be >= 1"),
        ("thompson", {"front_depth": -1}, "thompson: front_depth must be >= 0, got -1"),
    ],
)
def test_strategy_options_fail_at_construction(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_strategy(name, **options)


# Golden sequences: recorded before the three mating loops became hwnas.strategies.mating, so
# that a change of any strategy's search shows here (sha256 of the evaluated strings, in order).
GOLDEN = [
    ("nsga2", {"population_size": 10}, (), "c6e1e95b3c9f36f0"),
    ("moea_bus", {"population_size": 10}, (), "9d6bd9c7d3efc6b0"),
    (
        "nsga2",
        {"population_size": 10, "mutations": 2, "crossover_prob": 0.5},
        (Constraint("latency_ms@dev", le=6.0),),
        "b31bff746e3a0468",
    ),
]


@pytest.mark.parametrize(("name", "options", "constraints", "digest"), GOLDEN)
def test_strategies_evaluate_their_golden_sequence(
    name: str, options: dict, constraints: tuple, digest: str
) -> None:
    study = Study(
        space=create_space("nb201"),
        evaluators=[Synthetic()],
        objectives=TWO,
        constraints=constraints,
        strategy=create_strategy(name, **options),
        seed=7,
    )
    study.optimize(60)
    archs = "\n".join(t.arch for t in study.trials)
    assert hashlib.sha256(archs.encode()).hexdigest()[:16] == digest


def test_inner_search_visits_its_golden_sequence() -> None:
    space = create_space("nb201")
    weights = np.random.default_rng(5).normal(size=(2, 30))

    def predict(archs):  # type: ignore[no-untyped-def]
        X = np.vstack([space.one_hot(a) for a in archs])
        return X @ weights.T, np.zeros(len(archs))

    found = evolve(space, predict, [], np.random.default_rng(11), population_size=12, generations=5)
    assert len(found.keys) == len(set(found.keys)) == 72
    assert hashlib.sha256("\n".join(found.keys).encode()).hexdigest()[:16] == "5e3a40315992cd3c"
