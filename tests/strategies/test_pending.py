"""Every strategy is correct with evaluations in flight: it is asked for more while several are
pending and told the results out of order, as a parallel executor does."""

from __future__ import annotations

import numpy as np
import pytest
from test_strategies_conformance import SAMPLING, Synthetic

from hwnas import Objective, Study, create_space, create_strategy
from hwnas.strategies.moea_bus import MOEABUS
from hwnas.strategies.nsga2 import NSGA2

TWO = [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")]


def _async_run(strategy: str, *, budget: int, in_flight: int, seed: int = 0) -> Study:
    """Ask/tell by hand: keep ``in_flight`` evaluations pending, finish a random one each step."""
    ev = Synthetic()
    study = Study(
        space=create_space("nb201"),
        evaluators=[ev],
        objectives=TWO,
        strategy=create_strategy(strategy),
        seed=seed,
    )
    order = np.random.default_rng(seed + 100)
    pending = []
    while study.n_charged + len(pending) < budget or pending:
        while len(pending) < in_flight and study.n_charged + len(pending) < budget:
            pending.append(study.ask())
        arch = pending.pop(int(order.integers(len(pending))))
        study.tell(arch, ev.evaluate(arch))
    return study


@pytest.mark.parametrize("strategy", SAMPLING)
def test_strategies_with_four_evaluations_in_flight(strategy):
    budget = 24 if strategy in ("thompson", "linas", "optuna") else 60
    study = _async_run(strategy, budget=budget, in_flight=4)
    archs = [t.arch for t in study.trials]
    assert len(archs) == budget == len(set(archs))  # nothing asked twice, budget kept
    assert study.n_in_flight == 0


@pytest.mark.parametrize("cls", [NSGA2, MOEABUS])
def test_generational_survival_waits_for_every_child(cls, monkeypatch):
    calls = []
    survive = cls._survive

    def checked(self):  # type: ignore[no-untyped-def]
        calls.append(self._generation & self._untold)
        return survive(self)

    monkeypatch.setattr(cls, "_survive", checked)
    study = _async_run("nsga2" if cls is NSGA2 else "moea_bus", budget=120, in_flight=3)
    assert len(study.trials) == 120
    assert len(calls) >= 4
    assert all(not untold for untold in calls)  # never with a child of its generation in flight


def test_nsga2_breeds_extra_children_instead_of_idling(monkeypatch):
    sizes = []
    offspring = NSGA2._offspring

    def spied(self, n):  # type: ignore[no-untyped-def]
        sizes.append(n)
        return offspring(self, n)

    monkeypatch.setattr(NSGA2, "_offspring", spied)
    _async_run("nsga2", budget=100, in_flight=5)
    assert 20 in sizes  # whole generations after each survival
    assert sizes.count(1) >= 4  # single children while the last of a generation are in flight
    sizes.clear()
    _async_run("nsga2", budget=100, in_flight=1)
    assert set(sizes) == {20}  # one at a time: plain generational NSGA-II


def test_one_in_flight_is_the_sequential_sequence():
    a = _async_run("nsga2", budget=50, in_flight=1)
    b = Study(
        space=create_space("nb201"),
        evaluators=[Synthetic()],
        objectives=TWO,
        strategy=create_strategy("nsga2"),
        seed=0,
    )
    b.optimize(50)
    assert [t.arch for t in a.trials] == [t.arch for t in b.trials]
