"""Failures never stop a study: each becomes a failed trial with its reason, retried when the
cause may pass; only a run of failures stops it. Sequential and process executors."""

from __future__ import annotations

import pytest
from execution_support import make_study

from hwnas.execution import RunPolicy, StudyFailedError
from hwnas.storage import SQLiteStore

EXECUTORS = [("sequential", None), ("process", 2)]


def _by_arch(study):  # type: ignore[no-untyped-def]
    return {t.arch: t for t in study.trials}


@pytest.mark.parametrize(("executor", "workers"), EXECUTORS)
def test_each_kind_of_failure_is_a_failed_trial_and_the_search_goes_on(
    executor, workers, first_archs
):
    planted = {
        first_archs[1]: "raise",
        first_archs[2]: "nan",
        first_archs[3]: "inf",
        first_archs[4]: "text",
    }
    study = make_study(planted)
    stats = study.optimize(12, executor=executor, workers=workers)
    trials = _by_arch(study)
    assert study.n_charged == 12 == len(study.trials)  # failed evaluations count: they ran
    assert stats.failed == 4 == study.n_failed
    assert "raised RuntimeError: planted failure" in trials[first_archs[1]].error
    assert "returned accuracy = nan, not a finite number" in trials[first_archs[2]].error
    assert "returned latency_ms@test = inf, not a finite number" in trials[first_archs[3]].error
    assert "returned accuracy = 'high', not a number" in trials[first_archs[4]].error
    for arch in planted:
        assert trials[arch].state == "failed"
        assert "accuracy" not in trials[arch].metrics  # nothing untrustworthy is stored
    assert all(t.ok for a, t in trials.items() if a not in planted)
    front = {t.arch for t in study.pareto_front()}
    assert not front & set(planted)


@pytest.mark.parametrize(("executor", "workers"), EXECUTORS)
def test_a_timeout_is_retried_and_then_fails_with_its_reason(
    executor, workers, first_archs, tmp_path
):
    planted = {first_archs[0]: "hang-once", first_archs[1]: "hang"}
    study = make_study(planted, marker_dir=tmp_path)
    policy = RunPolicy(timeout_s=1.0, retries=1)
    study.optimize(4, executor=executor, workers=workers, policy=policy)
    trials = _by_arch(study)
    once, always = trials[first_archs[0]], trials[first_archs[1]]
    assert once.ok and once.attempts == 2
    assert not always.ok and always.attempts == 2
    assert always.error == "the evaluation ran past timeout_s = 1 s (after 2 attempts)"
    assert study.n_charged == 4


def test_a_lost_worker_is_replaced_and_its_evaluation_retried(first_archs, tmp_path):
    planted = {first_archs[0]: "crash-once", first_archs[2]: "crash"}
    study = make_study(planted, marker_dir=tmp_path)
    study.optimize(6, executor="process", workers=2, policy=RunPolicy(retries=2))
    trials = _by_arch(study)
    assert trials[first_archs[0]].ok and trials[first_archs[0]].attempts == 2
    dead = trials[first_archs[2]]
    assert not dead.ok and dead.attempts == 3
    assert "died during the evaluation (killed by SIGKILL) (after 3 attempts)" in dead.error
    assert sum(t.ok for t in study.trials) == 5


def test_a_passing_failure_is_retried(first_archs, tmp_path):
    study = make_study({first_archs[0]: "transient-once"}, marker_dir=tmp_path)
    study.optimize(3)
    first = _by_arch(study)[first_archs[0]]
    assert first.ok and first.attempts == 2


def test_a_run_of_failures_stops_the_study_with_the_last_reason(first_archs, tmp_path):
    planted = dict.fromkeys(first_archs[2:], "raise")
    store = SQLiteStore(tmp_path / "study.db")
    study = make_study(planted, store=store)
    with pytest.raises(StudyFailedError) as info:
        study.optimize(30, policy=RunPolicy(max_failures_in_row=5))
    message = str(info.value)
    assert message.startswith("5 evaluations in a row failed; the last (trial 6, ")
    assert f"{first_archs[6]}) said: evaluator misbehaving raised RuntimeError" in message
    store.close()
    _, stored = SQLiteStore(tmp_path / "study.db").load()
    assert [t.ok for t in stored] == [True, True] + [False] * 5  # every finished one is kept


def test_failures_apart_from_a_run_do_not_stop_the_study(first_archs):
    planted = {a: "raise" for i, a in enumerate(first_archs) if i % 3 == 0}
    study = make_study(planted)
    study.optimize(30, policy=RunPolicy(max_failures_in_row=2))
    assert study.n_charged == 30
    assert study.n_failed == 10


def test_policy_checks_its_values():
    with pytest.raises(ValueError, match=r"timeout_s must be a positive number of seconds, got -1"):
        RunPolicy(timeout_s=-1)
    with pytest.raises(ValueError, match=r"timeout_s must be a positive number of seconds, got x"):
        RunPolicy(timeout_s="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"retries must be a whole number >= 0, got 1.5"):
        RunPolicy(retries=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_failures_in_row must be a whole number >= 1"):
        RunPolicy(max_failures_in_row=0)
