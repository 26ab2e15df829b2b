"""Executors: parallel evaluation within the budget, ordered runs, cache, resume, Ctrl-C."""

from __future__ import annotations

import pytest
from execution_support import OBJECTIVES, make_study

from hwnas import Study, create_space, create_strategy
from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator, MissingArchError
from hwnas.execution import RunPolicy, create_backend, list_executors
from hwnas.spaces.base import Arch
from hwnas.storage import EvaluationCache, SQLiteStore


def _sequence(study: Study) -> list[str]:
    return [t.arch for t in sorted(study.trials, key=lambda t: t.number)]


@pytest.mark.parametrize("strategy", ["nsga2", "moea_bus", "evolution", "thompson"])
def test_two_workers_stay_within_the_budget_and_never_repeat(strategy):
    study = make_study(strategy=strategy, sleep_s=0.01)
    stats = study.optimize(30, executor="process", workers=2)
    assert study.n_charged == 30 == len(study.trials) == stats.told
    assert len({t.arch for t in study.trials}) == 30
    assert study.n_in_flight == 0
    assert stats.executor == "process pool, 2 workers"


def test_ordered_parallel_runs_repeat_themselves():
    runs = []
    for _ in range(2):
        study = make_study(strategy="nsga2", sleep_s=0.005)
        study.optimize(30, executor="process", workers=3, policy=RunPolicy(ordered=True))
        runs.append(_sequence(study))
        assert [t.number for t in study.trials] == list(range(30))  # told in ask order
    assert runs[0] == runs[1]


def test_sequential_is_the_default_and_matches_a_one_worker_pool():
    a = make_study(strategy="moea_bus")
    a.optimize(25)
    b = make_study(strategy="moea_bus")
    b.optimize(25, executor="process", workers=1)
    assert _sequence(a) == _sequence(b)


class Counting(Evaluator):
    """Cacheable; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@test")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        self.calls += 1
        ops = arch["ops"]
        return {
            "accuracy": 50.0 + 5 * ops.count("nor_conv_3x3") + ops.count("skip_connect"),
            "latency_ms@test": 1.0 + 3 * ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1"),
        }


def _counting_study(cache: EvaluationCache | None, ev: Counting) -> Study:
    return Study(
        space=create_space("nb201"),
        evaluators=[ev],
        objectives=OBJECTIVES,
        strategy=create_strategy("nsga2", population_size=8),
        seed=3,
        cache=cache,
    )


def test_a_full_cache_changes_nothing_but_time(tmp_path):
    cold = _counting_study(None, Counting())
    cold.optimize(40)
    cache = EvaluationCache(tmp_path / "cache.db")
    filling = _counting_study(cache, Counting())
    filling.optimize(40)
    warm_ev = Counting()
    warm = _counting_study(cache, warm_ev)
    stats = warm.optimize(40)
    assert warm_ev.calls == 0 and stats.cache_hits == 40
    assert warm.n_charged == 40  # served from the cache, still counted
    assert all(t.cached for t in warm.trials)
    for other in (filling, warm):
        assert _sequence(other) == _sequence(cold)
        assert [dict(t.metrics) for t in other.trials] == [dict(t.metrics) for t in cold.trials]


class Sparse(Evaluator):
    """A table that holds only cells without 'none' on the first edge."""

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@test")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        if arch["ops"][0] == "none":
            raise MissingArchError("not in the table")
        return Counting().evaluate(arch)


def test_missing_rows_are_free_and_never_stop_the_study():
    study = Study(
        space=create_space("nb201"),
        evaluators=[Sparse()],
        objectives=OBJECTIVES,
        strategy=create_strategy("random"),
        seed=0,
    )
    study.optimize(40, executor="process", workers=2, policy=RunPolicy(max_failures_in_row=1))
    missing = [t for t in study.trials if not t.ok]
    assert missing and all(not t.charged and t.error == "not in the table" for t in missing)
    assert study.n_charged == 40 == sum(t.ok for t in study.trials)


class Interrupting(Counting):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def evaluate(self, arch: Arch) -> dict[str, float]:
        if self.calls + 1 == self.at:
            raise KeyboardInterrupt
        return super().evaluate(arch)

    def key(self) -> str:
        return "Counting"  # the same results as Counting's: a resume with it is the same study


def test_ctrl_c_keeps_what_finished_and_the_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _counting_study(None, Counting())
    straight.optimize(30)
    store = SQLiteStore(tmp_path / "study.db")
    broken = Study(
        space=create_space("nb201"),
        evaluators=[Interrupting(at=13)],
        objectives=OBJECTIVES,
        strategy=create_strategy("nsga2", population_size=8),
        seed=3,
        store=store,
    )
    with pytest.raises(KeyboardInterrupt):
        broken.optimize(30)
    store.close()
    store = SQLiteStore(tmp_path / "study.db")
    resumed = Study(
        space=create_space("nb201"),
        evaluators=[Counting()],
        objectives=OBJECTIVES,
        strategy=create_strategy("nsga2", population_size=8),
        seed=3,
        store=store,
    )
    assert len(resumed.trials) == 12  # the 13th was in flight: asked again after the replay
    resumed.optimize(30)
    assert _sequence(resumed) == _sequence(straight)
    store.close()


def test_a_parallel_run_resumes_with_what_was_in_flight(tmp_path):
    def stop_after_seven(study: Study, trial: object) -> None:
        if len(study.trials) == 7:
            raise KeyboardInterrupt

    store = SQLiteStore(tmp_path / "study.db")
    first = make_study(strategy="nsga2", store=store, sleep_s=0.01)
    with pytest.raises(KeyboardInterrupt):
        first.optimize(20, executor="process", workers=3, callbacks=[stop_after_seven])
    in_flight = {s for s in first._pending}
    store.close()
    store = SQLiteStore(tmp_path / "study.db")
    again = make_study(strategy="nsga2", store=store, sleep_s=0.01)
    assert len(again.trials) == 7
    # the replay asks again what was in flight when the run stopped, and evaluates it first
    assert {again.space.to_string(a) for _, a in again.in_flight()} == in_flight
    assert again.n_in_flight == 2
    again.optimize(20, executor="process", workers=3)
    assert again.n_charged == 20 == len({t.arch for t in again.trials})
    assert in_flight <= {t.arch for t in again.trials[7:10]}
    store.close()


def test_executor_names_and_options_are_checked():
    evs = [Counting()]
    assert list_executors() == ["process", "ray", "sequential"]
    with pytest.raises(ConfigError, match=r"unknown executor 'proces'; did you mean 'process'"):
        create_backend("proces", evs)
    with pytest.raises(ConfigError, match=r"sequential executor runs one evaluation at a time"):
        create_backend("sequential", evs, workers=2)
    with pytest.raises(ConfigError, match=r"an address is for the ray executor, not 'process'"):
        create_backend("process", evs, address="auto")
    with pytest.raises(ConfigError, match=r"workers must be a whole number >= 1, got 0"):
        create_backend("process", evs, workers=0)


class Unpicklable(Counting):
    def __init__(self) -> None:
        super().__init__()
        self.fn = lambda: None


def test_evaluators_that_cannot_reach_a_worker_get_one_line():
    with pytest.raises(ConfigError, match=r"cannot be sent to worker processes .* sequential"):
        create_backend("process", [Unpicklable()], workers=2)


def test_a_simulated_parallel_run_is_deterministic_and_out_of_order():
    from hwnas.execution.simulated import SimulatedBackend

    def run() -> tuple[list[str], list[int], float]:
        study = make_study(strategy="nsga2")
        ev = study.evaluators
        backend = SimulatedBackend(ev, workers=4, duration=lambda job: 1.0 + len(job.arch_str) % 7)
        study.optimize(60, executor=backend)
        return _sequence(study), [t.number for t in study.trials], backend.utilisation

    first, second = run(), run()
    assert first == second
    sequence, told_order, utilisation = first
    assert len(set(sequence)) == 60
    assert told_order != sorted(told_order)  # results came back out of ask order
    assert 0.9 < utilisation <= 1.0
    one = make_study(strategy="nsga2")
    one.optimize(60)
    assert sequence != _sequence(one)  # the strategy saw fewer results at each ask
