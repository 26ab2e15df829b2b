"""The NB201 hardware benchmark's scoring (benchmarks/_scoring.py) and its peer runners
(benchmarks/_peers*.py), on the synthetic NB201 tables (no ../shared/data) and on a toy task."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmark_scripts import imported
from hwnas.evaluation.base import Evaluator
from hwnas.spaces.base import Arch, CategoricalSpace

BUDGET = 25
GP_BUDGET = 11  # 10 random startup trials, then one GP proposal: a GP fit per ask is slow
N_STARTUP = 10  # the fewest evaluations any peer draws at random first (its seed shows there)
TASK = "cifar10/raspi4"


@pytest.fixture(scope="module")
def bench(synthetic_nb201_dir: Path) -> Iterator[SimpleNamespace]:
    """``_peers`` and ``_scoring`` imported from benchmarks/, with HWNAS_DATA on the synthetic
    tables for the whole module."""
    env = {"HWNAS_DATA": str(synthetic_nb201_dir)}
    with imported("_peers", "_scoring", env=env) as (peers, scoring):
        yield SimpleNamespace(peers=peers, scoring=scoring)


@pytest.fixture(scope="module")
def nb201(bench: SimpleNamespace) -> SimpleNamespace:
    """The task cifar10/raspi4, its evaluator, table and scorer."""
    task = bench.scoring.task_of(TASK)
    evaluator = task.make_evaluator()
    return SimpleNamespace(
        task=task,
        evaluator=evaluator,
        table=evaluator.table(),
        scorer=bench.scoring.TaskScorer(task, evaluator),
        space=task.make_space(),
    )


def _peer_names() -> list[str]:
    with imported("_peers") as (_peers,):
        pass
    return [n for n in _peers.RUNNERS if not n.startswith("hwnas:")]


PEERS = _peer_names()


def _budget(name: str) -> int:
    return GP_BUDGET if name == "optuna:gp" else BUDGET


# -- scoring --------------------------------------------------------------------------------------
def test_peers_are_the_non_hwnas_runners(bench: SimpleNamespace) -> None:
    assert set(PEERS) == set(bench.peers.PEER_RUNNERS)
    assert {"optuna:tpe-mv", "optuna:gp", "pymoo:mixed-ga", "pymoo:nsga2-cat", "white:ls"} <= set(
        PEERS
    )


def test_latency_bands_regret_on_a_hand_computed_case(bench: SimpleNamespace) -> None:
    accuracy = np.array([70.0, 80.0, 90.0, 60.0])
    latency = np.array([1.0, 2.0, 3.0, 4.0])
    # Budgets at the median (2.5: rows 0 and 1) and the maximum (4: every row).
    bands = bench.scoring.LatencyBands.of_table(accuracy, latency[:, None], [0.5, 1.0])
    np.testing.assert_allclose(bands.best, [80.0, 90.0])
    np.testing.assert_allclose(bands.worst, [70.0, 60.0])
    # Row 0 alone: 80 - 70 in the first band, 90 - 70 in the second.
    assert bands.regret(accuracy[[0]], latency[[0], None]) == pytest.approx(15.0)
    # Row 3 alone meets only the second band (90 - 60); the first gets its worst, 70 (80 - 70).
    assert bands.regret(accuracy[[3]], latency[[3], None]) == pytest.approx(20.0)
    assert bands.regret(accuracy[[1, 2]], latency[[1, 2], None]) == pytest.approx(0.0)


def _band_best_cells(table, latency_column: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The best-accuracy cell of each decile latency budget, found from the table itself."""
    lat = table[latency_column].to_numpy()
    acc = table["accuracy"].to_numpy()
    cells = []
    for q in np.arange(1, 10) / 10:
        feasible = np.flatnonzero(lat <= np.quantile(lat, q))
        cells.append(table.index[feasible[np.argmax(acc[feasible])]])
    return cells


def test_task_scorer_regret_zero_with_every_band_best_and_hand_figure(
    nb201: SimpleNamespace,
) -> None:
    table, scorer = nb201.table, nb201.scorer
    best = _band_best_cells(table, "latency_ms@raspi4")
    regret, _ = scorer.score(best)
    assert regret == pytest.approx(0.0, abs=1e-9)
    # Leaving one band's best out costs something.
    assert scorer.score(best[1:])[0] > 0.0

    # One cell, the fastest: found in every band, so the regret is the mean of best - its acc.
    lat = table["latency_ms@raspi4"].to_numpy()
    acc = table["accuracy"].to_numpy()
    fastest = int(np.argmin(lat))
    band_best = [acc[lat <= np.quantile(lat, q)].max() for q in np.arange(1, 10) / 10]
    expected = float(np.mean(np.array(band_best) - acc[fastest]))
    assert scorer.score([table.index[fastest]])[0] == pytest.approx(expected)


def test_task_scorer_hv_gap_of_the_true_front_and_a_dominated_set(nb201: SimpleNamespace) -> None:
    table, scorer = nb201.table, nb201.scorer
    lat = table["latency_ms@raspi4"].to_numpy()
    acc = table["accuracy"].to_numpy()
    order = np.lexsort((-acc, lat))  # fastest first, the better accuracy first among ties
    front, top = [], -np.inf
    for i in order:
        if acc[i] > top:
            front.append(table.index[i])
            top = acc[i]
    assert scorer.score(front)[1] == pytest.approx(0.0, abs=1e-9)
    dominated = [c for c in table.index[:200] if c not in set(front)][:50]
    gap = scorer.score(dominated)[1]
    assert 0.0 < gap <= 1.0


def test_task_of_parses_names_and_rejects_a_bad_one(bench: SimpleNamespace) -> None:
    task = bench.scoring.task_of("cifar10/raspi4+eyeriss")
    assert (task.dataset, task.devices) == ("cifar10", ("raspi4", "eyeriss"))
    assert task.name == "cifar10/raspi4+eyeriss"
    assert task.metrics == ("accuracy", "latency_ms@raspi4", "latency_ms@eyeriss")
    for bad in ("mnist/raspi4", "cifar10", "cifar10/"):
        with pytest.raises(ValueError, match="expected DATASET/DEVICE") as info:
            bench.scoring.task_of(bad)
        assert "\n" not in str(info.value)
        assert repr(bad) in str(info.value)


# -- the oracle -----------------------------------------------------------------------------------
class _Counting(Evaluator):
    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner
        self.calls = 0

    def metrics(self) -> tuple[str, ...]:
        return self.inner.metrics()

    def evaluate(self, arch: Arch) -> dict[str, float]:
        self.calls += 1
        return self.inner.evaluate(arch)


def test_oracle_charges_a_repeat_nothing(bench: SimpleNamespace, nb201: SimpleNamespace) -> None:
    evaluator = _Counting(nb201.evaluator)
    oracle = bench.peers.Oracle(nb201.task, evaluator, 3, 60.0)
    a, b = (
        nb201.space.sample(np.random.default_rng(0)),
        nb201.space.sample(np.random.default_rng(1)),
    )
    first = oracle.answer(a)
    assert oracle.answer(a) == first
    oracle.answer(b)
    assert evaluator.calls == 2
    assert oracle.log.archs == [nb201.space.to_string(a), nb201.space.to_string(b)]
    assert (oracle.log.total_asks, oracle.log.asks) == (3, [1, 3])
    row = nb201.table.loc[nb201.space.to_string(a)]
    assert first == (row["accuracy"], row["latency_ms@raspi4"])
    assert not oracle.done
    oracle.answer(nb201.space.sample(np.random.default_rng(2)))
    assert oracle.done and oracle.finish().stop_reason == ""


def test_random_reset_mutation_always_picks_another_choice(bench: SimpleNamespace) -> None:
    from pymoo.core.population import Population
    from pymoo.core.problem import Problem

    import _peers_pymoo

    problem = Problem(n_var=3, n_obj=2, xl=np.array([0, 0, 2]), xu=np.array([0, 2, 6]))
    X = np.tile([0, 1, 4], (400, 1))
    mutation = _peers_pymoo.random_reset_mutation(prob_var=1.0)
    out = mutation.do(problem, Population.new(X=X), random_state=np.random.default_rng(0))
    Y = out.get("X")
    assert (Y[:, 0] == 0).all()  # one choice: nothing else to take
    assert set(Y[:, 1]) == {0, 2} and set(Y[:, 2]) == {2, 3, 5, 6}
    counts = np.bincount(Y[:, 2], minlength=7)[[2, 3, 5, 6]]
    assert counts.min() > 60  # about 100 each: uniform over the other choices
    # The default rate, 1/n_var: about a third of the variables that can change do.
    rate = _peers_pymoo.random_reset_mutation().do(
        problem, Population.new(X=X), random_state=np.random.default_rng(0)
    )
    changed = (rate.get("X")[:, 1:] != X[:, 1:]).mean()
    assert 0.25 < changed < 0.42


# -- every peer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PEERS)
def test_peer_run_is_valid_and_reproducible(
    name: str, bench: SimpleNamespace, nb201: SimpleNamespace
) -> None:
    budget = _budget(name)
    runner = bench.peers.RUNNERS[name]
    log = runner(nb201.task, nb201.evaluator, 3, budget, 60.0)
    assert len(log.archs) == budget or log.stop_reason, (len(log.archs), log.stop_reason)
    assert len(log.archs) == len(set(log.archs))
    assert all(nb201.space.canonical(a) == a and a in nb201.table.index for a in log.archs)
    assert len(log.seconds) == len(log.asks) == len(log.archs)
    assert log.asks == sorted(log.asks) and log.total_asks >= len(log.archs)

    again = runner(nb201.task, nb201.evaluator, 3, budget, 60.0)
    assert again.archs == log.archs
    other = runner(nb201.task, nb201.evaluator, 4, N_STARTUP, 60.0)
    assert other.archs != log.archs[:N_STARTUP]


@pytest.mark.parametrize("name", PEERS)
def test_peer_stops_on_the_cpu_guard(
    name: str, bench: SimpleNamespace, nb201: SimpleNamespace
) -> None:
    log = bench.peers.RUNNERS[name](nb201.task, nb201.evaluator, 0, BUDGET, 0.0)
    assert log.stop_reason == "cpu"
    assert len(log.archs) < BUDGET


def test_peers_run_with_three_objectives(bench: SimpleNamespace) -> None:
    task = bench.scoring.task_of("cifar10/raspi4+eyeriss")
    evaluator = task.make_evaluator()
    space = task.make_space()
    for name in PEERS:
        log = bench.peers.RUNNERS[name](task, evaluator, 0, GP_BUDGET, 60.0)
        assert len(log.archs) == len(set(log.archs)) == GP_BUDGET, name
        assert all(space.canonical(a) == a for a in log.archs), name


# -- a task that is not NB201 ---------------------------------------------------------------------
class ToySpace(CategoricalSpace):
    """Slots of 2, 3, 1, 4 and 3 choices (72 cells); strings like ``a-b-only-p-x``."""

    name = "toy"
    slots = (("a", "b"), ("a", "b", "c"), ("only",), ("p", "q", "r", "s"), ("x", "y", "z"))

    def to_string(self, arch: Arch) -> str:
        return "-".join(self.validate(arch)["ops"])

    def from_string(self, text: str) -> Arch:
        return self.validate({"ops": str(text).split("-")})


class ToyEvaluator(Evaluator):
    """``score`` (maximised; not called accuracy) and ``cost_ms`` from the choice indices."""

    def __init__(self, space: ToySpace) -> None:
        self.space = space

    def metrics(self) -> tuple[str, ...]:
        return ("score", "cost_ms")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        code = self.space.encode(arch)
        score = float(code @ np.array([3, 1, 0, 2, 5]) - 0.4 * (code**2).sum())
        return {"score": score, "cost_ms": float(code.sum() + 1)}


@dataclass(frozen=True)
class ToyTask:
    name: str = "toy/cost"
    metrics: tuple[str, ...] = ("score", "cost_ms")
    latency_metrics: tuple[str, ...] = ("cost_ms",)

    def make_space(self) -> ToySpace:
        return ToySpace()

    def make_evaluator(self) -> ToyEvaluator:
        return ToyEvaluator(self.make_space())


@pytest.mark.parametrize("name", [*PEERS, "hwnas:random"])
def test_peer_runs_on_a_toy_categorical_task(name: str, bench: SimpleNamespace) -> None:
    task = ToyTask()
    space = task.make_space()
    budget = _budget(name)
    log = bench.peers.RUNNERS[name](task, task.make_evaluator(), 0, budget, 60.0)
    assert len(log.archs) == len(set(log.archs)) == budget
    assert all(space.to_string(space.from_string(a)) == a for a in log.archs)
    assert {a.split("-")[2] for a in log.archs} == {"only"}
    # Each slot's choices are drawn from that slot alone (unequal sizes are respected).
    for i, choices in enumerate(space.slots):
        assert {a.split("-")[i] for a in log.archs} <= set(choices)


def test_white_ls_exhausts_a_small_space_and_finds_its_front(bench: SimpleNamespace) -> None:
    task = ToyTask()
    space, evaluator = task.make_space(), task.make_evaluator()
    log = bench.peers.RUNNERS["white:ls"](task, evaluator, 0, 100, 60.0)
    assert log.stop_reason == "exhausted"
    assert sorted(log.archs) == sorted(space.to_string(a) for a in space.enumerate())


def test_white_ls_keeps_its_front_after_a_short_run(bench: SimpleNamespace) -> None:
    """Pareto local search from 10 random cells reaches the toy task's whole front by 50
    evaluations (its front: the best score at each cost, found by enumeration)."""
    task = ToyTask()
    space, evaluator = task.make_space(), task.make_evaluator()
    values = {space.to_string(a): evaluator.evaluate(a) for a in space.enumerate()}
    best_at_cost: dict[float, float] = {}
    for v in values.values():
        best_at_cost[v["cost_ms"]] = max(best_at_cost.get(v["cost_ms"], -np.inf), v["score"])
    front, top = set(), -np.inf
    for cost in sorted(best_at_cost):
        if best_at_cost[cost] > top:
            top = best_at_cost[cost]
            front.add((cost, top))
    log = bench.peers.RUNNERS["white:ls"](task, evaluator, 0, 50, 60.0)
    found = {(values[a]["cost_ms"], values[a]["score"]) for a in log.archs}
    assert front <= found


def test_hwnas_runs_stop_on_the_cpu_guard_alike(
    bench: SimpleNamespace, nb201: SimpleNamespace
) -> None:
    log = bench.peers.RUNNERS["hwnas:random"](nb201.task, nb201.evaluator, 0, BUDGET, 0.0)
    assert log.stop_reason == "cpu"
    assert len(log.archs) == 1  # the guard is checked after each evaluation


# -- a task read from a config --------------------------------------------------------------------
CONFIG = """\
space: nb201
evaluators:
  - nb201: {{dataset: cifar10, devices: [raspi4]}}
objectives:
{objectives}
budget: {{evaluations: 10}}
"""


def test_config_task_scores_like_the_builtin_task(
    bench: SimpleNamespace, nb201: SimpleNamespace, tmp_path: Path
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        CONFIG.format(
            objectives="  - {metric: accuracy, direction: maximize}\n"
            "  - {metric: latency_ms@raspi4, direction: minimize}"
        )
    )
    task = bench.scoring.task_of(str(path))
    assert task.name == "mine"
    assert task.metrics == ("accuracy", "latency_ms@raspi4")
    assert task.latency_metrics == ("latency_ms@raspi4",)
    scorer = bench.scoring.TaskScorer(task)
    archs = list(nb201.table.index[::97])
    assert scorer.score(archs) == nb201.scorer.score(archs)
    log = bench.peers.RUNNERS["white:ls"](task, task.make_evaluator(), 0, BUDGET, 60.0)
    assert len(set(log.archs)) == BUDGET


def test_config_task_refuses_objectives_it_cannot_band(
    bench: SimpleNamespace, tmp_path: Path
) -> None:
    path = tmp_path / "upside_down.yaml"
    path.write_text(
        CONFIG.format(
            objectives="  - {metric: latency_ms@raspi4, direction: minimize}\n"
            "  - {metric: accuracy, direction: maximize}"
        )
    )
    task = bench.scoring.task_of(str(path))
    with pytest.raises(ValueError, match="one metric to maximise, then any to minimise"):
        task.metrics  # noqa: B018
    with pytest.raises(ValueError, match="no such config file"):
        bench.scoring.task_of(str(tmp_path / "absent.yaml"))
