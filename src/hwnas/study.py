"""The Study: ask -> evaluate -> tell -> commit, until the budget; Pareto front; resume.

Budget = distinct architectures evaluated by expensive evaluators (by any evaluator when none is
expensive). A repeat is served from what the study already knows and costs nothing. Every
finished evaluation is committed before the next ask, and a study reopened on the same store
replays its log through a fresh strategy, so the sequence of architectures is the same whether or
not the run was interrupted.

Example:
    >>> from hwnas import Study, Objective, create_space
    >>> from hwnas.evaluation.base import Evaluator
    >>> class Ops(Evaluator):
    ...     def metrics(self): return ("convs",)
    ...     def evaluate(self, arch): return {"convs": float(sum("conv" in o for o in arch["ops"]))}
    >>> study = Study(space=create_space("nb201"), evaluators=[Ops()],
    ...               objectives=[Objective("convs", "maximize")], seed=0)
    >>> study.optimize(budget=20)
    >>> len(study.trials), study.n_charged
    (20, 20)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, StudyMismatchError
from hwnas.evaluation.base import Evaluator, MissingArchError
from hwnas.pareto import hypervolume, pareto_trials
from hwnas.problem import Constraint, Objective, Problem, objective_matrix
from hwnas.registry import closest
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.storage.base import MemoryStore, Store
from hwnas.storage.cache import EvaluationCache
from hwnas.strategies import default_strategy
from hwnas.strategies.base import SearchExhausted, Strategy
from hwnas.trial import Observation, Trial

log = logging.getLogger(__name__)

Callback = Callable[["Study", Trial], None]


def metric_sources(space: SearchSpace, evaluators: Sequence[Evaluator]) -> dict[str, str]:
    """Each metric a study with these parts can see, and what provides it."""
    out = {m: "space (cheap)" for m in space.cheap_metric_names()}
    for ev in evaluators:
        for m in ev.metrics():
            out.setdefault(m, ev.key())
    return out


def check_metrics(
    space: SearchSpace,
    evaluators: Sequence[Evaluator],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
) -> None:
    """Raise :class:`ConfigError` for an objective or constraint metric nothing provides."""
    available = metric_sources(space, evaluators)
    named = [("objective", o.metric) for o in objectives]
    named += [("constraint", c.metric) for c in constraints]
    for what, metric in named:
        if metric not in available:
            raise ConfigError(
                f"{what} metric {metric!r} is not provided by any evaluator; "
                f"{closest(metric, list(available))}"
            )


class Study:
    """A hardware-aware search: one space, evaluators, objectives, constraints, one strategy.

    Args:
        space: the search space.
        evaluators: what turns an architecture into metrics.
        objectives: metrics with directions.
        constraints: ``metric <= le`` / ``metric >= ge`` bounds.
        strategy: how to search (default: the best multi-objective strategy on the benchmarks).
        store: where trials are committed (default: in memory).
        seed: seeds the strategy's random generator.
        budget: default number of charged evaluations for :meth:`optimize`.
        cache: an evaluation cache shared across studies (for cacheable evaluators).
        definition: what identifies the study in its store (checked on resume); by default the
            names of the space, evaluators, objectives, constraints, strategy and the seed.
    """

    max_repeat_asks = 2000
    max_failures_in_row = 1000

    def __init__(
        self,
        *,
        space: SearchSpace,
        evaluators: Sequence[Evaluator],
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        strategy: Strategy | None = None,
        store: Store | None = None,
        seed: int = 0,
        budget: int | None = None,
        cache: EvaluationCache | None = None,
        definition: Mapping[str, Any] | None = None,
    ) -> None:
        self.problem = Problem(space, tuple(objectives), tuple(constraints))
        self.space = space
        self.evaluators = list(evaluators)
        check_metrics(
            self.space, self.evaluators, self.problem.objectives, self.problem.constraints
        )
        self.strategy = strategy if strategy is not None else default_strategy(self.problem)
        self.store = store if store is not None else MemoryStore()
        self.cache = cache
        self.seed = int(seed)
        self.budget = budget
        self.strategy.setup(self.problem, np.random.default_rng(self.seed))

        self._trials: list[Trial] = []
        self._by_arch: dict[str, Trial] = {}
        self._pending: dict[str, tuple[int, Arch]] = {}
        self._waiting: dict[str, list[Arch]] = {}
        self._asks = 0
        self._charged = 0
        # Metrics a strategy may see besides objectives and constraints: those computed from the
        # architecture alone (the space's, and those of evaluators that are not expensive).
        self._cheap_names = list(space.cheap_metric_names())
        for ev in self.evaluators:
            if not ev.expensive:
                self._cheap_names += [m for m in ev.metrics() if m not in self._cheap_names]
        # With no expensive evaluator at all, every new evaluation counts against the budget.
        self._count_all = not any(ev.expensive for ev in self.evaluators)
        self.definition = dict(definition) if definition is not None else self._default_definition()
        self._resume()

    # -- setup ------------------------------------------------------------------------------------
    def metric_sources(self) -> dict[str, str]:
        """Each available metric and what provides it."""
        return metric_sources(self.space, self.evaluators)

    def _default_definition(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "evaluators": [ev.key() for ev in self.evaluators],
            "objectives": [[o.metric, o.direction] for o in self.problem.objectives],
            "constraints": [str(c) for c in self.problem.constraints],
            "strategy": type(self.strategy).__name__,
            "seed": self.seed,
        }

    def _resume(self) -> None:
        meta, stored = self.store.load()
        known = meta.get("definition")
        if known is None:
            self.store.set_meta({"definition": self.definition, "created": time.time()})
        elif known != self.definition:
            diff = sorted(
                k
                for k in set(known) | set(self.definition)
                if known.get(k) != self.definition.get(k)
            )
            shown = "; ".join(
                f"{k}: stored {known.get(k)!r}, now {self.definition.get(k)!r}" for k in diff
            )
            raise StudyMismatchError(
                f"the stored study was made with different {', '.join(diff)} ({shown}); "
                "use a new output folder, or the original config and seed to resume"
            )
        for trial in stored:
            while self._asks < trial.asks_before:
                self.ask()
            entry = self._pending.get(trial.arch)
            if entry is None or entry[0] != trial.number:
                raise StudyMismatchError(
                    f"replaying the stored study diverged at trial {trial.number} ({trial.arch}): "
                    "the strategy or its code changed since it was stored; "
                    "use a new output folder"
                )
            del self._pending[trial.arch]
            self._record(trial, entry[1])
        if stored:
            log.info("resumed %d stored trials (%d charged)", len(stored), self._charged)

    # -- ask / tell -------------------------------------------------------------------------------
    def ask(self) -> Arch:
        """The next architecture to evaluate: one the study has not seen or handed out yet."""
        for _ in range(self.max_repeat_asks):
            arch = self.strategy.ask()
            s = self.space.to_string(arch)
            if s in self._by_arch:
                self.strategy.tell(self._observation(arch, self._by_arch[s]))
                continue
            if s in self._pending:
                self._waiting.setdefault(s, []).append(arch)
                continue
            self._pending[s] = (self._asks, arch)
            self._asks += 1
            return arch
        raise SearchExhausted(
            f"strategy {type(self.strategy).__name__} proposed {self.max_repeat_asks} "
            "already evaluated architectures in a row"
        )

    def tell(
        self,
        arch: Arch,
        metrics: Mapping[str, float] | None = None,
        *,
        error: str | None = None,
        charged: bool = True,
        duration_s: float = 0.0,
    ) -> Trial:
        """Record the result of an asked architecture (``metrics=None`` with ``error``: failed)."""
        s = self.space.to_string(arch)
        if s not in self._pending:
            raise ConfigError(f"tell() got {s!r}, which was not handed out by ask()")
        number, asked = self._pending.pop(s)
        values = {k: float(v) for k, v in (metrics or {}).items()}
        values.update(self.space.cheap_metrics(asked))
        trial = Trial(
            number=number,
            arch=s,
            metrics=values,
            state="complete" if metrics is not None and error is None else "failed",
            error=error,
            charged=charged,
            asks_before=self._asks,
            tell_seq=len(self._trials),
            duration_s=duration_s,
            finished_at=time.time(),
        )
        self.store.append(trial)
        self._record(trial, asked)
        return trial

    def _record(self, trial: Trial, arch: Arch) -> None:
        self._trials.append(trial)
        self._by_arch[trial.arch] = trial
        self._charged += int(trial.charged)
        self.strategy.tell(self._observation(arch, trial))
        for dup in self._waiting.pop(trial.arch, []):
            self.strategy.tell(self._observation(dup, trial))

    def _observation(self, arch: Arch, trial: Trial) -> Observation:
        shown = {m: trial.metrics[m] for m in self.problem.metric_names if m in trial.metrics}
        for m in self._cheap_names:
            if m in trial.metrics:
                shown[m] = trial.metrics[m]
        failed = not trial.ok
        return Observation(
            arch=arch,
            arch_str=trial.arch,
            objectives=self.problem.objective_vector(shown),
            violation=math.inf if failed else self.problem.violation(shown),
            metrics=shown,
            failed=failed,
        )

    # -- evaluation loop --------------------------------------------------------------------------
    def evaluate(self, arch: Arch) -> tuple[dict[str, float] | None, str | None, bool]:
        """Run every evaluator on ``arch``: (metrics or None, error, charged)."""
        s = self.space.to_string(arch)
        metrics: dict[str, float] = {}
        charged = False
        for ev in self.evaluators:
            use_cache = self.cache is not None and ev.cacheable
            got = self.cache.get(ev.key(), s) if use_cache else None  # type: ignore[union-attr]
            if got is None:
                try:
                    got = ev.evaluate(arch)
                except MissingArchError as exc:
                    return None, str(exc), charged
                charged = charged or ev.expensive or self._count_all
                if use_cache:
                    self.cache.put(ev.key(), s, got)  # type: ignore[union-attr]
            metrics.update(got)
        return metrics, None, charged

    def optimize(self, budget: int | None = None, *, callbacks: Iterable[Callback] = ()) -> None:
        """Ask, evaluate and tell until ``budget`` charged evaluations (or the space runs out)."""
        budget = budget if budget is not None else self.budget
        if budget is None:
            raise ConfigError("optimize() needs a budget (number of evaluations)")
        size = self.space.size
        if size is not None and budget > size:
            raise ConfigError(
                f"budget {budget} exceeds the {size} architectures of space {self.space.name!r}; "
                f"set budget.evaluations <= {size}"
            )
        callbacks = list(callbacks)
        failures = 0
        free_in_row = 0
        while self._charged < budget:
            if self._pending:  # in flight when a previous run stopped: evaluate them first
                arch = min(self._pending.values(), key=lambda e: e[0])[1]
            else:
                try:
                    arch = self.ask()
                except SearchExhausted as exc:
                    log.warning("search stopped early: %s", exc)
                    break
            start = time.perf_counter()
            metrics, error, charged = self.evaluate(arch)
            trial = self.tell(
                arch,
                metrics,
                error=error,
                charged=charged,
                duration_s=time.perf_counter() - start,
            )
            failures = 0 if trial.ok else failures + 1
            free_in_row = 0 if trial.charged else free_in_row + 1
            if failures >= self.max_failures_in_row:
                raise ConfigError(
                    f"{failures} evaluations in a row failed; the last said: {trial.error}"
                )
            if free_in_row >= self.max_repeat_asks * 5:
                log.warning("search stopped early: %d evaluations in a row were free", free_in_row)
                break
            for cb in callbacks:
                cb(self, trial)

    # -- results ----------------------------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Finished trials in the order they were told."""
        return list(self._trials)

    @property
    def n_charged(self) -> int:
        """Evaluations that counted against the budget."""
        return self._charged

    def is_feasible(self, trial: Trial) -> bool:
        return trial.ok and self.problem.violation(trial.metrics) <= 0.0

    def pareto_front(self) -> list[Trial]:
        """Feasible, non-dominated trials, in trial order."""
        return pareto_trials(self._trials, self.problem.objectives, self.problem.constraints)

    def hypervolume(self, ideal: np.ndarray, nadir: np.ndarray) -> float:
        """Hypervolume of the front with objectives normalised to [0, 1] by ``ideal``/``nadir``
        (minimisation form), reference point 1.1 in every objective."""
        front = self.pareto_front()
        if not front:
            return 0.0
        F = objective_matrix(self.problem.objectives, [t.metrics for t in front])
        span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        return hypervolume((F - ideal) / span, np.full(F.shape[1], 1.1))
