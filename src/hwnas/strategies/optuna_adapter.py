"""Any Optuna sampler as an hwnas strategy (optional extra ``peers``).

Each slot of a categorical space becomes one categorical parameter (``s0``, ``s1``, ...).
Objectives keep their directions (Optuna is told ``maximize``/``minimize``); constraints are set
on each trial as ``g = value - bound`` (``Trial.set_constraint``), which the constrained samplers
(TPE, NSGA-II, NSGA-III, GP) use.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from typing import Any

from hwnas.errors import ConfigError, MissingExtraError
from hwnas.registry import check_options, closest
from hwnas.spaces.base import Arch, CategoricalSpace
from hwnas.strategies.base import Strategy
from hwnas.trial import Observation

SAMPLERS = {
    "tpe": "TPESampler",
    "nsgaii": "NSGAIISampler",
    "nsgaiii": "NSGAIIISampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
}


class OptunaSampler(Strategy):
    """Drive an Optuna sampler through hwnas's ask/tell loop.

    Args:
        sampler: one of tpe, nsgaii, nsgaiii, random, gp, qmc.
        sampler_options: keyword options of that sampler (``seed`` comes from the study).

    Example (config)::

        strategy: {name: optuna, sampler: tpe, sampler_options: {multivariate: true}}
    """

    max_repeats = 100

    def __init__(self, *, sampler: str = "tpe", sampler_options: dict[str, Any] | None = None):
        if sampler not in SAMPLERS:
            raise ConfigError(
                f"optuna: unknown sampler {sampler!r}; {closest(sampler, list(SAMPLERS))}"
            )
        self.sampler_name = sampler
        self.sampler_options = dict(sampler_options or {})
        if "seed" in self.sampler_options:
            raise ConfigError(
                "optuna: 'seed' comes from the study's seed; remove it from sampler_options"
            )

    def on_setup(self) -> None:
        try:
            import optuna
        except ImportError:
            raise MissingExtraError("optuna", "peers", "the optuna strategy") from None
        if not isinstance(self.problem.space, CategoricalSpace):
            raise ConfigError(
                f"optuna: space {self.problem.space.name!r} is not categorical; the adapter maps "
                "categorical slots to Optuna parameters"
            )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cls = getattr(optuna.samplers, SAMPLERS[self.sampler_name])
        check_options(cls, self.sampler_options, f"optuna sampler {self.sampler_name!r}")
        options = dict(self.sampler_options)
        seed = int(self.rng.integers(2**31 - 1))
        self._optuna = optuna
        self._study = optuna.create_study(
            directions=[o.direction for o in self.problem.objectives],
            sampler=cls(seed=seed, **options),
        )
        self._open: dict[str, deque[Any]] = defaultdict(deque)
        self._known: dict[str, tuple[list[float], list[float]] | None] = {}

    def ask(self) -> Arch:
        # Optuna samplers repeat themselves; answer repeats at once from what is known and ask
        # again, so that the study's budget buys only new architectures.
        for _ in range(self.max_repeats):
            trial, arch = self._ask_trial()
            s = self.key(arch)
            if s in self._known:
                values = self._known[s]
                if values is None:
                    self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
                else:
                    self._set_constraints(trial, values[1])
                    self._study.tell(trial, values[0])
            elif s in self._open:
                self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            else:
                self._open[s].append(trial)
                return arch
        arch = self.sample_unseen(set(self._known) | set(self._open))
        self._study.enqueue_trial({f"s{i}": op for i, op in enumerate(arch["ops"])})
        trial, arch = self._ask_trial()
        self._open[self.key(arch)].append(trial)
        return arch

    def _ask_trial(self) -> tuple[Any, Arch]:
        trial = self._study.ask()
        slots = self.problem.space.slots  # type: ignore[attr-defined]
        ops = [trial.suggest_categorical(f"s{i}", list(choices)) for i, choices in enumerate(slots)]
        return trial, {"ops": ops}

    def tell(self, observation: Observation) -> None:
        queue = self._open.get(observation.arch_str)
        if not queue:
            return  # a result the sampler did not ask for (another strategy's trial)
        trial = queue.popleft()
        if not queue:
            del self._open[observation.arch_str]
        values = observation.metrics_of(self.problem)
        if observation.failed or any(math.isnan(v) for v in values):
            self._known[observation.arch_str] = None
            self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            return
        g = [c.g(observation.metrics[c.metric]) for c in self.problem.constraints]
        self._known[observation.arch_str] = (values, g)
        self._set_constraints(trial, g)
        self._study.tell(trial, values)

    def _set_constraints(self, trial: Any, g: list[float]) -> None:
        for c, value in zip(self.problem.constraints, g):
            trial.set_constraint(str(c), float(value))
