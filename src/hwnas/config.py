"""Study configs built into a :class:`~hwnas.study.Study`: the space, the evaluators (which load
and check their data), the strategy and the run policy, all checked before any file is written.

The YAML shape lives in :mod:`hwnas.config_schema`, the checks that need the parts in
:mod:`hwnas.config_checks`; both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    SupernetBlock,
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

if TYPE_CHECKING:
    from hwnas.data import Dataset

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
    "SupernetBlock",
    "SupernetSetup",
    "build_evaluators",
    "build_parts",
    "build_space",
    "build_study",
    "check_execution",
    "check_feasible",
    "check_option_types",
    "config_base_dir",
    "load_config",
    "load_config_data",
    "parse_config",
    "supernet_setup",
]


@dataclass(frozen=True)
class SupernetSetup:
    """The supernet a config trains before its search (its ``supernet:`` block, checked).

    Attributes:
        dir: the folder it is trained into and read from (absolute).
        config: the :class:`hwnas.oneshot.SupernetConfig` mapping (``to_dict()``, defaults filled).
    """

    dir: Path
    config: dict[str, Any]


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
    dataset: Dataset | None = None  # the config's data: block, loaded
    supernet: SupernetSetup | None = None  # train it (train_supernet) before make_study

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


def config_base_dir(config: StudyConfig, base_dir: Path) -> Path:
    """The folder relative paths of ``config`` resolve against: its ``base_dir`` key (itself
    relative to ``base_dir``) when given, else ``base_dir``, the config file's folder."""
    if config.base_dir is None:
        return base_dir
    return _resolve(config.base_dir, base_dir)


def _resolve(path: str | Path, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def load_config_data(config: StudyConfig, *, base_dir: Path) -> Dataset | None:
    """The dataset of the config's ``data:`` block (a relative ``path`` resolved against the
    config's folder), loaded and split; None without the block."""
    if config.data is None:
        return None
    from hwnas.data import load_dataset

    spec = dict(config.data)
    if spec.get("path") is not None:
        spec["path"] = str(_resolve(spec["path"], config_base_dir(config, base_dir)))
    return load_dataset(spec)


def supernet_setup(
    config: StudyConfig, *, base_dir: Path, out_dir: Path | None = None
) -> SupernetSetup | None:
    """Where and how the config's supernet is trained; None without a ``supernet:`` block.

    ``supernet.dir`` resolves against the config's folder; without it the supernet lives in
    ``out_dir / "supernet"`` (the search's output folder).
    """
    block = config.supernet
    if block is None:
        return None
    from hwnas.oneshot import SupernetConfig  # needs torch: only configs with the block get here

    cfg = SupernetConfig.from_dict(block.config_dict())
    if block.dir is not None:
        folder = _resolve(block.dir, config_base_dir(config, base_dir))
    elif out_dir is not None:
        folder = Path(out_dir) / "supernet"
    else:
        raise ConfigError(
            "supernet.dir is not set and there is no output folder to put the supernet in; "
            "set supernet.dir in the config"
        )
    return SupernetSetup(dir=folder.resolve(), config=cfg.to_dict())


def build_space(config: StudyConfig) -> SearchSpace:
    """The config's search space, its options checked against the space's type hints."""
    if config.space.name not in SPACES:
        SPACES.get(config.space.name)  # raises with the closest names
    name = config.space.name
    check_option_types(SPACES.get(name), config.space.options, f"space {name!r}")
    space: SearchSpace = create_space(name, **config.space.options)
    return space


def build_evaluators(
    config: StudyConfig,
    *,
    base_dir: Path,
    seed: int | None = None,
    out_dir: Path | None = None,
) -> tuple[SearchSpace, list[Evaluator]]:
    """The space and the evaluators of a config (they load and check their data).

    ``seed`` overrides the config's (``--seed``); ``out_dir`` is the search's output folder, the
    supernet's default home.
    """
    space, evaluators, _ = _build(config, base_dir=base_dir, seed=seed, out_dir=out_dir)
    return space, evaluators


def _build(
    config: StudyConfig, *, base_dir: Path, seed: int | None, out_dir: Path | None
) -> tuple[SearchSpace, list[Evaluator], EvaluatorContext]:
    space = build_space(config)
    base = config_base_dir(config, base_dir)
    data_dir = None
    if config.data_dir is not None:
        data_dir = _resolve(config.data_dir, base)
    dataset = load_config_data(config, base_dir=base_dir)
    setup = supernet_setup(config, base_dir=base_dir, out_dir=out_dir)
    if setup is not None and dataset is not None:
        from hwnas.evaluation.train import check_data_fits

        check_data_fits(space, dataset, "supernet")
    ctx = EvaluatorContext(
        space=space,
        base_dir=base,
        data_dir=data_dir,
        seed=check_seed(config.seed if seed is None else seed),
        dataset=dataset,
        supernet_dir=None if setup is None else setup.dir,
        supernet_config=None if setup is None else setup.config,
    )
    evaluators: list[Evaluator] = []
    for entry in config.evaluators:
        ((name, opts),) = entry.items()
        check_option_types(EVALUATORS.get(name), opts, f"evaluator {name!r}")
        evaluators.append(create_evaluator(name, ctx, **opts))
    _check_accuracy_names(config, evaluators)
    return space, evaluators, ctx


def _check_accuracy_names(config: StudyConfig, evaluators: list[Evaluator]) -> None:
    """The accuracy evaluators name their metric (``metric:``); two sources of one name would
    make the study keep one of them silently."""
    from hwnas.evaluation.supernet import SupernetAccuracy
    from hwnas.evaluation.train import TrainAccuracy

    names = [next(iter(entry)) for entry in config.evaluators]
    for i, ev in enumerate(evaluators):
        if not isinstance(ev, (SupernetAccuracy, TrainAccuracy)):
            continue
        for j, other in enumerate(evaluators):
            shared = sorted(set(ev.metrics()) & set(other.metrics())) if j != i else []
            if shared:
                first, second = sorted((i, j))
                raise ConfigError(
                    f"evaluators {first} ({names[first]}) and {second} ({names[second]}) both "
                    f"yield {shared[0]!r}; give one of them another name with its metric "
                    f"option, e.g. - {names[i]}: {{metric: {shared[0]}_{names[i]}}}"
                )


def build_parts(
    config: StudyConfig,
    *,
    base_dir: Path,
    budget: int | None = None,
    seed: int | None = None,
    out_dir: Path | None = None,
) -> StudyParts:
    """Turn a validated config into checked parts (space, evaluators, strategy, ...).

    ``out_dir`` is the search's output folder: the supernet's default home (see
    :func:`supernet_setup`); the supernet itself is not trained here.
    """
    space, evaluators, ctx = _build(config, base_dir=base_dir, seed=seed, out_dir=out_dir)
    base_dir = config_base_dir(config, base_dir)
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
    _attach_data(strategy, strategy_name, ctx, out_dir)
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
        dataset=ctx.dataset,
        supernet=(
            None
            if ctx.supernet_dir is None or ctx.supernet_config is None
            else SupernetSetup(dir=ctx.supernet_dir, config=ctx.supernet_config)
        ),
    )


def _attach_data(
    strategy: Strategy, name: str, ctx: EvaluatorContext, out_dir: Path | None
) -> None:
    """A gradient strategy trains on the config's dataset, in ``out_dir / "gradient"``."""
    from hwnas.strategies.differentiable import GradientStrategy

    if not isinstance(strategy, GradientStrategy):
        return
    if ctx.dataset is None:
        raise ConfigError(
            f"strategy {name!r} trains a network on the config's dataset, but there is no "
            "top-level data: block; add one, e.g. data: {name: mnist}"
        )
    folder = None if out_dir is None else Path(out_dir) / "gradient"
    strategy.attach(ctx.dataset, folder=folder, data_dir=ctx.data_dir)


def build_study(
    config: StudyConfig,
    *,
    base_dir: Path,
    store: Store | None = None,
    budget: int | None = None,
    seed: int | None = None,
    out_dir: Path | None = None,
) -> BuiltStudy:
    """Turn a validated config into a ready :class:`Study` (checks everything first; a config's
    supernet must be trained already, see :func:`hwnas.oneshot.train_supernet`)."""
    parts = build_parts(config, base_dir=base_dir, budget=budget, seed=seed, out_dir=out_dir)
    return BuiltStudy(
        study=parts.make_study(store),
        budget=parts.budget,
        config=config,
        strategy_name=parts.strategy_name,
        policy=parts.policy,
        execution=parts.execution,
    )
