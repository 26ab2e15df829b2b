"""Study configs: YAML validated with pydantic, then built into a :class:`~hwnas.study.Study`.

Example config::

    space: nb201
    evaluators:
      - nb201: {dataset: cifar10}
    objectives:
      - {metric: accuracy, direction: maximize}
      - {metric: latency_ms@raspi4, direction: minimize}
    constraints:
      - {metric: latency_ms@pixel3, le: 10.0}
    strategy: {name: nsga2}
    budget: {evaluations: 300}
    seed: 0
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PydanticSchemaGenerationError,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from hwnas.errors import ConfigError
from hwnas.evaluation import EVALUATORS, Evaluator, EvaluatorContext, create_evaluator
from hwnas.evaluation.data import cache_dir
from hwnas.execution.base import RunPolicy
from hwnas.problem import Constraint, Objective, Problem
from hwnas.registry import check_options, closest
from hwnas.spaces import SPACES, SearchSpace, create_space
from hwnas.storage.base import Store
from hwnas.storage.cache import EvaluationCache
from hwnas.strategies import STRATEGIES, create_strategy, default_strategy_spec
from hwnas.strategies.base import Strategy
from hwnas.study import Study, check_metrics, check_seed


def _no_bool(what: str) -> BeforeValidator:
    # YAML reads true/yes as True, which pydantic would take as the number 1.
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {what}, got {str(value).lower()}")
        return value

    return BeforeValidator(check)


Int = Annotated[int, _no_bool("a whole number")]
OptInt = Annotated[int | None, _no_bool("a whole number")]
OptFloat = Annotated[float | None, _no_bool("a number")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpaceConfig(_Model):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class ObjectiveConfig(_Model):
    metric: str
    direction: Literal["maximize", "minimize"]


class ConstraintConfig(_Model):
    metric: str
    le: OptFloat = Field(default=None, allow_inf_nan=False)
    ge: OptFloat = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_bound(self) -> ConstraintConfig:
        if (self.le is None) == (self.ge is None):
            raise ValueError(f"constraint on {self.metric!r} needs exactly one of 'le' or 'ge'")
        return self


class StrategyConfig(BaseModel):
    model_config = ConfigDict(extra="allow")  # the extra keys are the strategy's options
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BudgetConfig(_Model):
    evaluations: Int = Field(gt=0)


class ExecutionConfig(_Model):
    """Where evaluations run and how failures are met (``hwnas.execution``); the CLI's
    ``--executor``, ``--workers`` and ``--address`` override the first three."""

    executor: Literal["sequential", "process", "ray"] = "sequential"
    workers: OptInt = Field(default=None, ge=1)
    address: str | None = None
    timeout_s: OptFloat = Field(default=None, gt=0, allow_inf_nan=False)
    retries: Int = Field(default=2, ge=0)
    max_failures_in_row: Int = Field(default=10, ge=1)
    ordered: bool = False


class StudyConfig(_Model):
    """The validated shape of a study config."""

    space: SpaceConfig
    evaluators: list[dict[str, dict[str, Any]]] = Field(min_length=1)
    objectives: list[ObjectiveConfig] = Field(min_length=1)
    constraints: list[ConstraintConfig] = Field(default_factory=list)
    strategy: StrategyConfig | None = None
    budget: BudgetConfig
    seed: Int = Field(default=0, ge=0, lt=2**63)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    data_dir: str | None = None
    cache: str | None = None  # evaluation cache file; default $HWNAS_CACHE_DIR/evaluations.db

    @field_validator("space", mode="before")
    @classmethod
    def _space_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("evaluators", mode="before")
    @classmethod
    def _evaluator_entries(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for i, item in enumerate(v):
            if isinstance(item, str):
                item = {item: {}}
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(
                    f"entry {i} must be one mapping like '- nb201: {{dataset: cifar10}}'"
                )
            ((name, opts),) = item.items()
            out.append({name: opts or {}})
        return out

    @field_validator("objectives")
    @classmethod
    def _distinct_objectives(cls, v: list[ObjectiveConfig]) -> list[ObjectiveConfig]:
        first: dict[str, int] = {}
        for i, o in enumerate(v):
            if o.metric in first:
                raise ValueError(
                    f"metric {o.metric!r} is named by objectives {first[o.metric]} and {i}; "
                    "keep one objective per metric"
                )
            first[o.metric] = i
        return v


_TOP_KEYS = list(StudyConfig.model_fields)


def _one_line(exc: ValidationError, source: str) -> str:
    errors = exc.errors()
    # A misspelt key also makes its correct spelling "missing"; the typo is the news.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = str(err.get("ctx", {}).get("error", msg))
    elif isinstance(err.get("input"), (str, int, float)) and err["type"] != "extra_forbidden":
        msg = f"{msg}, got {err['input']!r}"
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        parent = err["loc"][:-1]
        options = _TOP_KEYS if not parent else _fields_at(parent)
        msg = f"unknown key {key!r}; {closest(key, options)}"
        loc = ".".join(str(p) for p in parent) or "top level"
    elif err["type"] == "missing":
        msg = "this key is required"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {loc}: {msg}{tail}"


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    models: dict[str, type[BaseModel]] = {
        "space": SpaceConfig,
        "objectives": ObjectiveConfig,
        "constraints": ConstraintConfig,
        "budget": BudgetConfig,
        "execution": ExecutionConfig,
    }
    model = models.get(str(loc[0]))
    return list(model.model_fields) if model else []


def parse_config(data: Any, source: str = "config") -> StudyConfig:
    """Validate a loaded config mapping; raise :class:`ConfigError` with one line."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the config must be a YAML mapping of keys such as "
            "space, evaluators, objectives, budget"
        )
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping names one key twice (PyYAML would silently keep the last value)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            # Merged keys (<<: *anchor) may be overridden on purpose; scalars are the rest.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    f"line {line}: key {key!r} is given twice (first on line {seen[key]}); "
                    "keep one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a YAML config file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a folder; give the YAML file itself")
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{p} {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{p} is not a text file in UTF-8; give a YAML config saved as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}{where}: not valid YAML: {problem}") from None
    return parse_config(data, str(p))


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


def check_feasible(constraints: list[Constraint], evaluators: list[Evaluator]) -> None:
    """Raise :class:`ConfigError` when no architecture can meet all constraints.

    Contradictory bounds on one metric are caught without data; constraints on metrics of
    tabular evaluators are checked against the tables jointly.
    """
    for a in constraints:
        for b in constraints:
            if a.metric == b.metric and a.le is not None and b.ge is not None and b.ge > a.le:
                raise ConfigError(f"constraints {a} and {b} cannot both hold; relax one of them")
    if not constraints:
        return
    import pandas as pd

    columns: dict[str, pd.Series] = {}
    for ev in evaluators:
        table = ev.table()
        if table is None:
            continue
        for c in constraints:
            if c.metric in table.columns and c.metric not in columns:
                columns[c.metric] = table[c.metric]
    checked = [c for c in constraints if c.metric in columns]
    if not checked:
        return
    joined = pd.concat([columns[c.metric] for c in checked], axis=1, join="inner")
    ok = pd.Series(True, index=joined.index)
    for c in checked:
        col = joined[c.metric]
        ok &= (col <= c.le) if c.le is not None else (col >= c.ge)
    if not ok.any():
        worst = []
        for c in checked:
            col = joined[c.metric]
            best = col.min() if c.le is not None else col.max()
            worst.append(f"{c} (best in the table: {best:.4g})")
        raise ConfigError(
            "no architecture in the tables meets all constraints: "
            + "; ".join(worst)
            + "; relax the bounds"
        )


def check_execution(ex: ExecutionConfig) -> None:
    """Raise :class:`ConfigError` for executor settings that do not go together (checked before
    a study file exists; the CLI's flags are merged into ``ex`` first)."""
    if ex.address is not None and ex.executor != "ray":
        raise ConfigError(
            f"an address is for the ray executor, not {ex.executor!r}; drop --address "
            "(execution.address) or use --executor ray"
        )
    if ex.executor == "sequential" and ex.workers not in (None, 1):
        raise ConfigError(
            f"the sequential executor runs one evaluation at a time, got workers={ex.workers}; "
            "use --executor process (or ray) for parallel evaluations"
        )


def check_option_types(factory: Callable[..., Any], options: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ConfigError` for options a component cannot take, before it is built: an
    unknown name, a required option left out, or a value of another type than the one its
    factory declares (``population_size: ten``, ``devices: raspi4`` where a list is wanted).

    Types are checked where a hint resolves to one pydantic understands (others pass unchecked),
    strictly (10.5 is no int, "3" no number) and without converting: the component receives
    what the config holds, and checks its own ranges.
    """
    if isinstance(factory, type) and factory.__init__ is object.__init__:  # type: ignore[misc]
        if options:  # a class without __init__ would swallow its options silently
            key = next(iter(options))
            raise ConfigError(f"{what} has no option {key!r}; it takes no options")
        return
    check_options(factory, options, what)  # before the call: an option 'name' would clash
    for name, param in inspect.signature(factory).parameters.items():
        required = param.default is inspect.Parameter.empty and param.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
        if required and name != "context" and name not in options:
            raise ConfigError(f"{what} needs the option {name!r}; add it to its options")
    hints = _option_hints(factory)
    for key, value in options.items():
        hint = hints.get(key)
        if hint is None:
            continue
        try:
            TypeAdapter(hint).validate_python(value, strict=True)
        except PydanticSchemaGenerationError:
            continue
        except ValidationError:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            wanted = _describe_type(hint)
            fix = (
                f"write it as a list, e.g. [{value}]"
                if wanted.startswith("a list") and isinstance(value, (str, int, float))
                else "fix its value in the config"
            )
            raise ConfigError(
                f"{what}: option {key!r} must be {wanted}, got {shown}; {fix}"
            ) from None


def _option_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The resolved type hint of each keyword option of ``factory`` (unresolvable ones left out)."""
    fn = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    namespace = dict(getattr(fn, "__globals__", {}))
    out: dict[str, Any] = {}
    for name, param in inspect.signature(factory).parameters.items():
        ann = param.annotation
        if name == "context" or ann is inspect.Parameter.empty:
            continue
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)  # the factory's own annotation text
            except Exception:
                continue  # a name only imported for type checking
        if ann is not Any:
            out[name] = ann
    return out


def _describe_type(hint: Any) -> str:
    """A type hint in words: ``int`` -> "a whole number", ``list[str] | None`` -> "a list"."""
    words = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    if hint in words:
        return words[hint]
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe_type(a) for a in args))
    if origin in (list, tuple, set, frozenset) or origin is Sequence:
        return f"a list of {_describe_type(args[0])[2:]}s" if args else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))
