"""The Study: the bookkeeping of ask -> tell -> commit; Pareto front; budget; resume.

Budget = distinct architectures evaluated by expensive evaluators (by any evaluator when none is
expensive); a result served from the shared evaluation cache counts like a fresh one. A repeat is
answered from what the study already knows and costs nothing. Every told result is committed
before :meth:`Study.tell` returns, and a study reopened on the same store replays its log through
a fresh strategy, so the sequence of architectures is the same whether or not the run was
interrupted. Running evaluations (here, in worker processes or on Ray) is the executors' job
(:mod:`hwnas.execution`); :meth:`Study.optimize` hands the study to one.

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
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from hwnas.definition import (
    check_metrics,
    check_seed,
    data_changes,
    data_provenance,
    metric_sources,
    study_definition,
)
from hwnas.errors import ConfigError, StudyMismatchError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import Backend, RunPolicy
from hwnas.execution.driver import Callback, RunStats
from hwnas.pareto import hypervolume, pareto_trials
from hwnas.problem import Constraint, Objective, Problem, objective_matrix
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.storage.base import MemoryStore, Store
from hwnas.storage.cache import EvaluationCache
from hwnas.strategies import default_strategy
from hwnas.strategies.base import SearchExhausted, Strategy
from hwnas.trial import Observation, Trial

log = logging.getLogger(__name__)

__all__ = ["Callback", "Study", "check_metrics", "metric_sources", "study_definition"]


class Study:
    """A hardware-aware search: one space, evaluators, objectives, constraints, one strategy.

    Args:
        space: the search space.
        evaluators: what turns an architecture into metrics.
        objectives: metrics with directions.
        constraints: ``metric <= le`` / ``metric >= ge`` bounds.
        strategy: how to search (default: :func:`~hwnas.strategies.default_strategy`).
        store: where trials are committed (default: in memory).
        seed: seeds the strategy's random generator (a whole number >= 0).
        budget: default number of charged evaluations for :meth:`optimize`.
        cache: an evaluation cache shared across studies (for cacheable evaluators).

    A store that already holds a study is resumed when its definition (space and options,
    evaluators, objectives, constraints, strategy and options, seed) and its data (the files the
    evaluators read, by path and content) are the same; otherwise it is refused, naming what
    changed.
    """

    max_repeat_asks = 2000

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
        self.seed = check_seed(seed)
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
        self.definition = study_definition(self.problem, self.evaluators, self.strategy, self.seed)
        self.data = data_provenance(self.evaluators)
        self._resume()

    # -- setup ------------------------------------------------------------------------------------
    def metric_sources(self) -> dict[str, str]:
        """Each available metric and what provides it."""
        return metric_sources(self.space, self.evaluators)

    def _resume(self) -> None:
        meta, stored = self.store.load()
        known = meta.get("definition")
        if known is None:
            self.store.set_meta(
                {"definition": self.definition, "data": self.data, "created": time.time()}
            )
        elif known != self.definition:
            diff = sorted(
                k
                for k in set(known) | set(self.definition)
                if known.get(k) != self.definition.get(k)
            )
            if diff == ["evaluators"] and meta.get("data") is not None:
                # A table evaluator's key holds its file's hash: name the file that changed.
                self._check_data(meta["data"])
            shown = "; ".join(
                f"{k}: stored {known.get(k)!r}, now {self.definition.get(k)!r}" for k in diff
            )
            raise StudyMismatchError(
                f"the stored study was made with different {', '.join(diff)} ({shown}); "
                "use a new output folder, or the original config and seed to resume"
            )
        else:
            self._check_data(meta.get("data"))
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

    def _check_data(self, known: Mapping[str, Mapping[str, str]] | None) -> None:
        if known is None:  # stored before data was recorded: record it now
            self.store.set_meta({"data": self.data})
            return
        changes = data_changes(known, self.data)
        if changes:
            raise StudyMismatchError(
                "the data of the stored study changed: "
                + "; ".join(changes)
                + "; restore the original data to resume, or use a new output folder"
            )

    # -- ask / tell -------------------------------------------------------------------------------
    def ask_numbered(self) -> tuple[int, Arch]:
        """Like :meth:`ask`, with the trial number the architecture will be stored under."""
        arch = self.ask()
        return self._asks - 1, arch

    def in_flight(self) -> list[tuple[int, Arch]]:
        """Asked and not yet told (e.g. in flight when a previous run stopped), in ask order."""
        return sorted(self._pending.values(), key=lambda e: e[0])

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
        attempts: int = 1,
        cached: bool = False,
    ) -> Trial:
        """Record the result of an asked architecture (``metrics=None`` with ``error``: failed);
        it is committed to the store before this returns."""
        s = self.space.to_string(arch)
        if s not in self._pending:
            raise ConfigError(f"tell() got {s!r}, which was not handed out by ask()")
        number, asked = self._pending.pop(s)
        values = {k: float(v) for k, v in (metrics or {}).items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad and error is None:  # never store a non-finite result as a complete trial
            error = f"told a non-finite value for {', '.join(bad)}"
        if error is not None:
            values = {}
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
            attempts=attempts,
            cached=cached,
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

    # -- running --------------------------------------------------------------------------------
    def optimize(
        self,
        budget: int | None = None,
        *,
        executor: str | Backend = "sequential",
        workers: int | None = None,
        address: str | None = None,
        policy: RunPolicy | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> RunStats:
        """Evaluate what the strategy asks for until ``budget`` charged evaluations (or the
        space runs out), on an executor: ``sequential`` (here, one at a time), ``process`` (a
        pool of ``workers`` local processes) or ``ray`` (Ray tasks; ``address`` joins a cluster).

        Failed evaluations become failed trials and the search goes on (see
        :class:`~hwnas.execution.RunPolicy` for time limits, retries and when a run of failures
        stops the study). Returns what happened in this run.

        Example:
            >>> study.optimize(100, executor="process", workers=2)  # doctest: +SKIP
        """
        from hwnas.execution import create_backend, run

        budget = budget if budget is not None else self.budget
        if budget is None:
            raise ConfigError("optimize() needs a budget (number of evaluations)")
        size = self.space.size
        if size is not None and budget > size:
            raise ConfigError(
                f"budget {budget} exceeds the {size} architectures of space {self.space.name!r}; "
                f"set budget.evaluations <= {size}"
            )
        policy = policy if policy is not None else RunPolicy()
        backend = (
            executor
            if isinstance(executor, Backend)
            else create_backend(
                executor,
                self.evaluators,
                workers=workers,
                address=address,
                timeout_s=policy.timeout_s,
            )
        )
        return run(self, backend, budget=budget, policy=policy, callbacks=callbacks)

    # -- results ----------------------------------------------------------------------------------
    @property
    def trials(self) -> list[Trial]:
        """Finished trials in the order they were told."""
        return list(self._trials)

    @property
    def n_charged(self) -> int:
        """Evaluations that counted against the budget."""
        return self._charged

    @property
    def n_failed(self) -> int:
        """Trials that failed (their reasons are in ``trial.error``)."""
        return sum(not t.ok for t in self._trials)

    @property
    def n_in_flight(self) -> int:
        """Architectures asked for and not told yet."""
        return len(self._pending)

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
