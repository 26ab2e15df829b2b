"""Study configs: the YAML shape, validated with pydantic, read with one line per error.

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
    execution: {executor: process, workers: 2}

A config that trains networks adds the dataset and, for inherited-weight accuracy, the supernet
trained before the search (``hwnas search`` trains it, or reuses a finished one)::

    space: {name: mbv3, options: {preset: small, input_size: 28, in_channels: 1}}
    data: {name: mnist}                     # a hwnas.data.load_dataset spec
    supernet:                               # hwnas.oneshot.SupernetConfig keys, plus dir
      train: {epochs: 4, batch_size: 64}
      dir: runs/supernet                    # default: <search --out DIR>/supernet
    evaluators:
      - supernet: {split: valid}            # accuracy (percent) by inherited weights

Relative paths (``data_dir``, ``cache``, ``data.path``, ``supernet.dir``, evaluator files) are
resolved against ``base_dir`` when it is given, else against the config file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hwnas.errors import ConfigError
from hwnas.registry import closest


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


class SupernetBlock(_Model):
    """The ``supernet:`` block: the keys of :class:`hwnas.oneshot.SupernetConfig` (checked with
    its own messages when the config is built; torch is not needed to read a config) and
    ``dir``, the folder the supernet is trained into and read from."""

    train: Any
    schedule: Any = None
    phase_epochs: Any = None
    num_random: Any = None
    distill: Any = None
    calibration_images: Any = None
    zero_init_residual: Any = None
    dir: str | None = None

    def config_dict(self) -> dict[str, Any]:
        """The :class:`~hwnas.oneshot.SupernetConfig` mapping: the keys given, ``dir`` left out."""
        given = self.model_fields_set - {"dir"}
        return {k: getattr(self, k) for k in type(self).model_fields if k in given}


def _data_spec(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):  # data: mnist
        value = {"name": value}
    from hwnas.data.spec import parse_spec

    parse_spec(value)  # raises ConfigError, a ValueError: pydantic reports its line
    return dict(value)


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
    data: Annotated[dict[str, Any] | None, BeforeValidator(_data_spec)] = None
    supernet: SupernetBlock | None = None
    base_dir: str | None = None  # folder relative paths resolve against; default the file's

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
        "supernet": SupernetBlock,
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
        config = StudyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
    _check_supernet_block(config, source)
    return config


def _check_supernet_block(config: StudyConfig, source: str) -> None:
    """A ``supernet:`` block needs the data to train on and a space with a supernet."""
    if config.supernet is None:
        return
    if config.data is None:
        raise ConfigError(
            f"{source}: supernet: a supernet is trained on the config's dataset, but there is no "
            "top-level data: block; add one, e.g. data: {name: mnist}"
        )
    if config.space.name != "mbv3":
        raise ConfigError(
            f"{source}: supernet: supernets are built for space 'mbv3', but the space is "
            f"{config.space.name!r}; use space: {{name: mbv3, options: {{preset: small}}}} "
            "or remove the supernet block"
        )


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
