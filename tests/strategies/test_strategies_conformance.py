"""Conformance suite run over every registered strategy."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hwnas import Constraint, Objective, Study, create_space, create_strategy, list_strategies
from hwnas.evaluation.base import Evaluator, MissingArchError
from hwnas.problem import Problem
from hwnas.spaces.base import CategoricalSpace
from hwnas.strategies.base import rank_and_crowding
from hwnas.strategies.gradient import GRADIENT_STRATEGIES
from hwnas.trial import Observation

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


def _noise(s: str) -> float:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


class Synthetic(Evaluator):
    """accuracy, latency and energy from the ops; optionally missing for some architectures."""

    def __init__(self, missing_every: int = 0) -> None:
        self.calls = 0
        self.missing_every = missing_every

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@dev", "energy_mj@dev")

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        self.calls += 1
        ops = arch["ops"]
        s = "|".join(ops)
        if self.missing_every and self.calls % self.missing_every == 0:
            raise MissingArchError(f"no row for {s}")
        acc = 80 + sum(GAIN.get(o, 0.3 * i) for i, o in enumerate(ops)) + 2 * _noise(s)
        lat = 1 + sum(COST.get(o, 0.2 * k) * (1 + 0.1 * k) for k, o in enumerate(ops))
        return {
            "accuracy": acc,
            "latency_ms@dev": lat,
            "energy_mj@dev": lat * (1 + _noise(s + "e")),
        }


class Tiny(CategoricalSpace):
    name = "tiny"
    slots = (("a", "b", "c"), ("a", "b", "c"))

    def to_string(self, arch):  # type: ignore[no-untyped-def]
        return "-".join(self._ops(arch))

    def from_string(self, text):  # type: ignore[no-untyped-def]
        return self.validate({"ops": text.split("-")})


OBJECTIVE_SETS = {
    "single": [Objective("accuracy", "maximize")],
    "two": [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")],
    "three": [
        Objective("accuracy", "maximize"),
        Objective("latency_ms@dev", "minimize"),
        Objective("energy_mj@dev", "minimize"),
    ],
}


# Gradient strategies train a network and propose a handful of derived architectures; they have
# their own tests (tests/oneshot/test_relax_search.py, tests/strategies/test_differentiable.py).
SAMPLING = [s for s in list_strategies() if s not in GRADIENT_STRATEGIES]


@pytest.fixture(params=SAMPLING)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _study(name: str, objectives, seed: int = 0, constraints=(), space=None, ev=None):  # type: ignore[no-untyped-def]
    return Study(
        space=space or create_space("nb201"),
        evaluators=[ev or Synthetic()],
        objectives=objectives,
        constraints=constraints,
        strategy=create_strategy(name),
        seed=seed,
    )


@pytest.mark.parametrize("objectives", list(OBJECTIVE_SETS))
def test_runs_any_number_of_objectives_with_constraints(name: str, objectives: str) -> None:
    ev = Synthetic()
    study = _study(
        name, OBJECTIVE_SETS[objectives], constraints=[Constraint("latency_ms@dev", le=8)], ev=ev
    )
    study.optimize(120)
    assert study.n_charged == 120 == ev.calls
    assert len({t.arch for t in study.trials}) == 120
    front = study.pareto_front()
    assert front and all(t.metrics["latency_ms@dev"] <= 8 for t in front)


def test_strategy_itself_never_repeats(name: str) -> None:
    space = create_space("nb201")
    problem = Problem(space, tuple(OBJECTIVE_SETS["two"]))
    strategy = create_strategy(name)
    strategy.setup(problem, np.random.default_rng(1))
    ev = Synthetic()
    seen = set()
    for _ in range(300):
        arch = strategy.ask()
        s = space.to_string(arch)
        assert s not in seen, f"{name} proposed {s} twice"
        seen.add(s)
        m = ev.evaluate(arch)
        strategy.tell(
            Observation(
                arch=arch,
                arch_str=s,
                objectives=problem.objective_vector(m),
                violation=0.0,
                metrics=m,
            )
        )


def test_same_seed_same_sequence(name: str) -> None:
    runs = []
    for seed in (5, 5, 6):
        study = _study(name, OBJECTIVE_SETS["two"], seed=seed)
        study.optimize(60)
        runs.append([t.arch for t in study.trials])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_exhausts_a_tiny_space(name: str) -> None:
    study = _study(name, OBJECTIVE_SETS["two"], space=Tiny())
    study.optimize(9)
    assert sorted(t.arch for t in study.trials) == sorted(f"{a}-{b}" for a in "abc" for b in "abc")


def test_survives_failed_evaluations(name: str) -> None:
    ev = Synthetic(missing_every=4)
    study = _study(name, OBJECTIVE_SETS["two"], ev=ev)
    study.optimize(60)
    failed = [t for t in study.trials if not t.ok]
    assert study.n_charged == 60
    assert failed and all(not t.charged and "no row" in (t.error or "") for t in failed)


def test_beats_nothing_worse_than_random_on_average(name: str) -> None:
    """Over 6 seeds, the best accuracy found in 80 evaluations is at least random search's."""

    def mean_best(strategy: str) -> float:
        best = []
        for seed in range(6):
            study = _study(strategy, OBJECTIVE_SETS["single"], seed=seed)
            study.optimize(80)
            best.append(max(t.metrics["accuracy"] for t in study.trials))
        return float(np.mean(best))

    assert mean_best(name) >= mean_best("random") - 1e-9


def test_rank_and_crowding_puts_feasible_first() -> None:
    def obs(f, v):  # type: ignore[no-untyped-def]
        return Observation(
            arch={}, arch_str=str(f), objectives=np.array(f, float), violation=v, metrics={}
        )

    pool = [
        obs([1, 1], 0.0),
        obs([0, 0], 2.0),
        obs([2, 0], 0.0),
        obs([2, 2], 0.0),
        obs([0, 0], 1.0),
    ]
    rank, crowd = rank_and_crowding(pool)
    assert list(rank) == [0, 3, 0, 1, 2]
    assert np.isinf(crowd[0]) and np.isinf(crowd[2])
