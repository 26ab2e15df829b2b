"""Study configs built into a :class:`~hwnas.study.Study`: the space, the evaluators (which load
and check their data), the strategy and the run policy, all checked before any file is written.

The YAML shape lives in :mod:`hwnas.config_schema`, the checks that need the parts in
:mod:`hwnas.config_checks`; both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.config_checks import check_execution, check_feasible, check_option_types
from hwnas.config_schema import (
    BudgetConfig,
    ConstraintConfig,
    ExecutionConfig,
    ObjectiveConfig,
    SpaceConfig,
    StrategyConfig,
    StudyConfig,
    load_config,
    parse_config,
)
from hwnas.errors import ConfigError
from hwnas.evaluation import EVALUATORS, Evaluator, EvaluatorContext, create_evaluator
from hwnas.evaluation.data import cache_dir
from hwnas.execution.base import RunPolicy
from hwnas.problem import Constraint, Objective, Problem
from hwnas.spaces import SPACES, SearchSpace, create_space
from hwnas.storage.base import Store
from hwnas.storage.cache import EvaluationCache
from hwnas.strategies import STRATEGIES, create_strategy, default_strategy_spec
from hwnas.strategies.base import Strategy
from hwnas.study import Study, check_metrics, check_seed

__all__ = [
    "BudgetConfig",
    "BuiltStudy",
    "ConstraintConfig",
    "ExecutionConfig",
    "ObjectiveConfig",
    "SpaceConfig",
    "StrategyConfig",
    "StudyConfig",
    "StudyParts",
    "build_evaluators",
    "build_parts",
    "build_study",
    "check_execution",
    "check_feasible",
    "check_option_types",
    "load_config",
    "parse_config",
]


@dataclass
class StudyParts:
    """Everything a config builds, checked, before any file of the study is touched."""

    space: SearchSpace
    evaluators: list[Evaluator]
    objectives: list[Objective]
    constraints: list[Constraint]
    strategy: Strategy
    strategy_name: str
    seed: int
    budget: int
    cache: EvaluationCache | None
    policy: RunPolicy
    execution: ExecutionConfig
    config: StudyConfig

    def make_study(self, store: Store | None = None) -> Study:
        """The study on ``store`` (resumed when the store holds it)."""
        return Study(
            space=self.space,
            evaluators=self.evaluators,
            objectives=self.objectives,
            constraints=self.constraints,
            strategy=self.strategy,
            store=store,
            seed=self.seed,
            budget=self.budget,
            cache=self.cache,
        )


@dataclass
class BuiltStudy:
    study: Study
    budget: int
    config: StudyConfig
    strategy_name: str
    policy: RunPolicy
    execution: ExecutionConfig


def build_evaluators(config: StudyConfig, *, base_dir: Path) -> tuple[SearchSpace, list[Evaluator]]:
    """The space and the evaluators of a config (they load and check their data)."""
    if config.space.name not in SPACES:
        SPACES.get(config.space.name)  # raises with the closest names
    name = config.space.name
    check_option_types(SPACES.get(name), config.space.options, f"space {name!r}")
    space: SearchSpace = create_space(name, **config.space.options)
    data_dir = None
    if config.data_dir is not None:
        data_dir = Path(config.data_dir).expanduser()
        if not data_dir.is_absolute():
            data_dir = base_dir / data_dir
    ctx = EvaluatorContext(space=space, base_dir=base_dir, data_dir=data_dir)
    evaluators: list[Evaluator] = []
    for entry in config.evaluators:
        ((name, opts),) = entry.items()
        check_option_types(EVALUATORS.get(name), opts, f"evaluator {name!r}")
        evaluators.append(create_evaluator(name, ctx, **opts))
    return space, evaluators


def build_parts(
    config: StudyConfig,
    *,
    base_dir: Path,
    budget: int | None = None,
    seed: int | None = None,
) -> StudyParts:
    """Turn a validated config into checked parts (space, evaluators, strategy, ...)."""
    space, evaluators = build_evaluators(config, base_dir=base_dir)
    objectives = [Objective(o.metric, o.direction) for o in config.objectives]
    constraints = [Constraint(c.metric, le=c.le, ge=c.ge) for c in config.constraints]
    seed = check_seed(config.seed if seed is None else seed)
    n = config.budget.evaluations if budget is None else budget
    if n <= 0:
        raise ConfigError(f"the budget must be a positive number of evaluations, got {n}")
    if space.size is not None and n > space.size:
        raise ConfigError(
            f"budget {n} exceeds the {space.size} architectures of space {space.name!r}; "
            f"set budget.evaluations <= {space.size}"
        )

    check_execution(config.execution)
    problem = Problem(space, tuple(objectives), tuple(constraints))
    check_metrics(space, evaluators, objectives, constraints)
    check_feasible(constraints, evaluators)
    if config.strategy is not None:
        strategy_name, options = config.strategy.name, config.strategy.options
    else:
        strategy_name, options = default_strategy_spec(problem)
    check_option_types(STRATEGIES.get(strategy_name), options, f"strategy {strategy_name!r}")
    strategy = create_strategy(strategy_name, **options)
    # Options a strategy can only check against the problem (e.g. a cheap metric's name) fail
    # here, before a study file exists; the study sets it up again with its own generator.
    strategy.setup(problem, np.random.default_rng(seed))
    cache = None
    if config.cache is not None:
        cache_path = Path(config.cache).expanduser()
        cache = EvaluationCache(cache_path if cache_path.is_absolute() else base_dir / cache_path)
    elif any(ev.cacheable for ev in evaluators):
        # Measurements are worth keeping across studies: share one cache per user by default.
        cache = EvaluationCache(cache_dir() / "evaluations.db")
    ex = config.execution
    policy = RunPolicy(
        timeout_s=ex.timeout_s,
        retries=ex.retries,
        max_failures_in_row=ex.max_failures_in_row,
        ordered=ex.ordered,
    )
    return StudyParts(
        space=space,
        evaluators=evaluators,
        objectives=objectives,
        constraints=constraints,
        strategy=strategy,
        strategy_name=strategy_name,
        seed=seed,
        budget=n,
        cache=cache,
        policy=policy,
        execution=ex,
        config=config,
    )


def build_study(
    config: StudyConfig,
    *,
    base_dir: Path,
    store: Store | None = None,
    budget: int | None = None,
    seed: int | None = None,
) -> BuiltStudy:
    """Turn a validated config into a ready :class:`Study` (checks everything first)."""
    parts = build_parts(config, base_dir=base_dir, budget=budget, seed=seed)
    return BuiltStudy(
        study=parts.make_study(store),
        budget=parts.budget,
        config=config,
        strategy_name=parts.strategy_name,
        policy=parts.policy,
        execution=parts.execution,
    )
