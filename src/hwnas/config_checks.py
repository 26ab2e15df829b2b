"""Checks of a config that need its parts: option types against each component's type hints,
executor settings that must go together, constraints no architecture in the tables meets."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Constraint
from hwnas.registry import check_options, check_required, factory_parameters

if TYPE_CHECKING:
    from hwnas.config_schema import ExecutionConfig


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
    check_required(factory, options, what, supplied=("context",))
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
    for name, param in factory_parameters(factory).items():
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
