from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hwnas import ConfigError, Constraint, Objective, Study, create_space, create_strategy
from hwnas.errors import StudyMismatchError
from hwnas.evaluation.base import Evaluator
from hwnas.spaces.base import Arch
from hwnas.storage import EvaluationCache, MemoryStore, SQLiteStore
from hwnas.strategies.base import Strategy
from hwnas.trial import Observation

TWO = [Objective("accuracy", "maximize"), Objective("latency_ms@dev", "minimize")]


class Ops(Evaluator):
    """Counts convolutions (accuracy) and a latency; cacheable, counts its calls."""

    cacheable = True

    def __init__(self, crash_at: int | None = None) -> None:
        self.calls = 0
        self.crash_at = crash_at

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@dev")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise KeyboardInterrupt
        ops = arch["ops"]
        acc = 50 + 5 * sum(o == "nor_conv_3x3" for o in ops) + sum(o == "skip_connect" for o in ops)
        lat = 1 + 3 * sum(o == "nor_conv_3x3" for o in ops) + sum(o == "nor_conv_1x1" for o in ops)
        return {"accuracy": float(acc), "latency_ms@dev": float(lat)}


class Repeater(Strategy):
    """Cycles through three architectures, then new ones: exercises repeat handling."""

    def on_setup(self) -> None:
        self.told = 0
        self.cycle = itertools.cycle(range(3))
        self.n = 0

    def ask(self) -> Arch:
        self.n += 1
        if self.n <= 9:
            return self.problem.space.decode([next(self.cycle)] * 6)
        return self.problem.space.sample(self.rng)

    def tell(self, observation: Observation) -> None:
        self.told += 1


def _study(**kw):  # type: ignore[no-untyped-def]
    kw.setdefault("space", create_space("nb201"))
    kw.setdefault("evaluators", [Ops()])
    kw.setdefault("objectives", TWO)
    return Study(**kw)


def test_repeats_are_free_and_told_again() -> None:
    ev = Ops()
    strategy = Repeater()
    study = _study(evaluators=[ev], strategy=strategy)
    study.optimize(5)
    assert study.n_charged == 5 == ev.calls == len(study.trials)
    assert len({t.arch for t in study.trials}) == 5
    assert strategy.told == 5 + 6  # six repeats were answered from what the study knew


def test_cache_is_shared_across_studies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = EvaluationCache(tmp_path / "cache.db")
    first, second = Ops(), Ops()
    _study(evaluators=[first], cache=cache, strategy=create_strategy("random")).optimize(10)
    assert len(cache) == 10
    again = _study(evaluators=[second], cache=cache, strategy=create_strategy("random"))
    again.optimize(20)
    # The first ten came from the cache and count like fresh ones (the cache saves time, it
    # never changes which architectures a study evaluates); ten more were measured.
    assert second.calls == 10
    assert [t.charged for t in again.trials] == [True] * 20
    assert [t.cached for t in again.trials] == [True] * 10 + [False] * 10
    assert len(cache) == 20


@pytest.mark.parametrize("strategy", ["random", "evolution", "nsga2", "local_search"])
def test_resume_after_crash_gives_the_same_sequence(tmp_path, strategy: str) -> None:  # type: ignore[no-untyped-def]
    reference = _study(strategy=create_strategy(strategy), seed=3)
    reference.optimize(70)

    store = SQLiteStore(tmp_path / "study.db")
    crashing = _study(
        evaluators=[Ops(crash_at=33)], strategy=create_strategy(strategy), store=store, seed=3
    )
    with pytest.raises(KeyboardInterrupt):
        crashing.optimize(70)
    store.close()

    store = SQLiteStore(tmp_path / "study.db")
    _, stored = store.load()
    assert len(stored) == 32  # every finished evaluation was committed
    ev = Ops()
    resumed = _study(evaluators=[ev], strategy=create_strategy(strategy), store=store, seed=3)
    assert [t.arch for t in resumed.trials] == [t.arch for t in reference.trials[:32]]
    resumed.optimize(70)
    assert ev.calls == 38  # nothing stored is evaluated again
    assert [t.arch for t in resumed.trials] == [t.arch for t in reference.trials]
    assert [t.metrics for t in resumed.trials] == [t.metrics for t in reference.trials]
    store.close()


def test_resume_refuses_a_different_study(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "study.db")
    _study(store=store, seed=1).optimize(5)
    with pytest.raises(StudyMismatchError, match=r"different seed \(seed: stored 1, now 2\)"):
        _study(store=store, seed=2)
    with pytest.raises(StudyMismatchError, match="different objectives"):
        _study(store=store, seed=1, objectives=TWO[:1])
    assert len(store.load()[1]) == 5


def test_ask_tell_by_hand_with_out_of_order_tells(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "study.db")
    study = _study(store=store, strategy=create_strategy("nsga2", population_size=4), seed=0)
    ev = Ops()
    for _ in range(5):
        batch = [study.ask() for _ in range(3)]
        for arch in reversed(batch):
            study.tell(arch, ev.evaluate(arch))
    with pytest.raises(ConfigError, match="was not handed out by ask"):
        study.tell(batch[0], {"accuracy": 1.0, "latency_ms@dev": 1.0})
    pending = study.ask()  # asked, never told: in flight when the process stops
    store.close()

    store = SQLiteStore(tmp_path / "study.db")
    again = _study(store=store, strategy=create_strategy("nsga2", population_size=4), seed=0)
    assert [t.arch for t in again.trials] == [t.arch for t in study.trials]
    assert again.ask() == pending  # the lost in-flight ask is handed out again, same sequence
    again.optimize(17)  # evaluates the in-flight architecture first
    assert again.trials[15].arch == again.space.to_string(pending)
    assert again.n_charged == 17
    store.close()


def test_pareto_front_is_feasible_and_non_dominated() -> None:
    study = _study(
        constraints=[Constraint("latency_ms@dev", le=10)],
        seed=4,
        strategy=create_strategy("random"),
    )
    study.optimize(150)
    front = study.pareto_front()
    feasible = [t for t in study.trials if t.metrics["latency_ms@dev"] <= 10]
    assert front
    for t in front:
        assert t.metrics["latency_ms@dev"] <= 10
        for u in feasible:
            dominates = (
                u.metrics["accuracy"] >= t.metrics["accuracy"]
                and u.metrics["latency_ms@dev"] <= t.metrics["latency_ms@dev"]
                and (u.metrics["accuracy"], u.metrics["latency_ms@dev"])
                != (t.metrics["accuracy"], t.metrics["latency_ms@dev"])
            )
            assert not dominates
    # every feasible trial not on the front is dominated by a front member
    on_front = {t.arch for t in front}
    for u in feasible:
        if u.arch not in on_front:
            assert any(
                t.metrics["accuracy"] >= u.metrics["accuracy"]
                and t.metrics["latency_ms@dev"] <= u.metrics["latency_ms@dev"]
                for t in front
            )
    hv = study.hypervolume(np.array([-80.0, 1.0]), np.array([-50.0, 25.0]))
    assert 0 < hv <= 1.21


def test_budget_over_finite_space_and_unknown_metric() -> None:
    with pytest.raises(ConfigError, match="exceeds the 15625 architectures"):
        _study().optimize(15626)
    with pytest.raises(ConfigError, match=r"'latency_ms@devv'.*did you mean 'latency_ms@dev'"):
        _study(objectives=[Objective("latency_ms@devv", "minimize")])


def test_cheap_metrics_are_stored_and_usable_as_objectives() -> None:
    study = _study(
        objectives=[Objective("accuracy", "maximize"), Objective("params_m", "minimize")]
    )
    study.optimize(10)
    assert all(t.metrics["params_m"] > 0 and t.metrics["flops_m"] > 0 for t in study.trials)


def test_memory_store_round_trip_keeps_nan_and_inf(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hwnas.trial import Trial

    for store in (MemoryStore(), SQLiteStore(tmp_path / "s.db")):
        t = Trial(number=0, arch="x", metrics={"a": math.nan, "b": math.inf, "c": 1.5})
        store.append(t)
        _, loaded = store.load()
        assert math.isnan(loaded[0].metrics["a"]) and loaded[0].metrics["b"] == math.inf
        assert loaded[0].metrics["c"] == 1.5


class Cheap(Ops):
    expensive = False
    cacheable = False


def test_a_study_of_cheap_evaluators_counts_every_evaluation() -> None:
    ev = Cheap()
    study = _study(evaluators=[ev], strategy=create_strategy("random"))
    study.optimize(12)
    assert ev.calls == 12 == study.n_charged


def test_strategies_see_metrics_of_cheap_evaluators() -> None:
    class Spy(Strategy):
        def on_setup(self) -> None:
            self.seen: list[dict[str, float]] = []

        def ask(self) -> Arch:
            return self.problem.space.sample(self.rng)

        def tell(self, observation: Observation) -> None:
            self.seen.append(dict(observation.metrics))

    class Proxy(Evaluator):
        expensive = False
        cacheable = False

        def metrics(self) -> tuple[str, ...]:
            return ("zc_convs",)

        def evaluate(self, arch: Arch) -> dict[str, float]:
            return {"zc_convs": float(sum("conv" in o for o in arch["ops"]))}

    spy = Spy()
    study = _study(evaluators=[Ops(), Proxy()], strategy=spy, objectives=TWO[:1])
    study.optimize(3)
    assert all({"accuracy", "zc_convs", "params_m", "flops_m"} <= set(m) for m in spy.seen)
    assert not any("latency_ms@dev" in m for m in spy.seen)  # expensive, not an objective
