"""What a study is made of and identified by: the metrics its parts provide, its definition
(checked on resume), the data its evaluators read (path and content), its seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.problem import Constraint, Objective, Problem
from hwnas.registry import closest
from hwnas.spaces.base import SearchSpace
from hwnas.strategies import strategy_spec
from hwnas.strategies.base import Strategy


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


def study_definition(
    problem: Problem, evaluators: Sequence[Evaluator], strategy: Strategy, seed: int
) -> dict[str, Any]:
    """What identifies a study in its store: a resume with anything else is refused.

    The one place this is built, so a study made from Python and one made from a config agree on
    the same database. The budget is not part of it (a study may be extended).
    """
    name, options = strategy_spec(strategy)
    return {
        "space": {"name": problem.space.name, "options": problem.space.options},
        "evaluators": [ev.key() for ev in evaluators],
        "objectives": [[o.metric, o.direction] for o in problem.objectives],
        "constraints": [str(c) for c in problem.constraints],
        "strategy": {"name": name, "options": options},
        "seed": seed,
    }


def data_provenance(evaluators: Sequence[Evaluator]) -> dict[str, dict[str, str]]:
    """The data files the evaluators' results depend on (path and content hash of each)."""
    out: dict[str, dict[str, str]] = {}
    for ev in evaluators:
        for label, entry in ev.provenance().items():
            out[label] = dict(entry)
    return out


def check_seed(seed: object) -> int:
    """The seed as an int, or a :class:`ConfigError` for anything but a whole number >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
    if int(seed) >= 2**63:
        raise ConfigError(f"seed must be below 2**63, got {seed}")
    return int(seed)


def data_changes(
    known: Mapping[str, Mapping[str, str]], now: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """What differs between two :func:`data_provenance` records, one phrase per file."""
    changes = []
    for label in sorted(set(known) | set(now)):
        old, new = known.get(label), now.get(label)
        if old is None:
            changes.append(f"{label} is new (now {new and new.get('path')})")
        elif new is None:
            changes.append(f"{label} ({old.get('path')}) is no longer used")
        elif old.get("path") != new.get("path"):
            changes.append(f"{label} moved from {old.get('path')} to {new.get('path')}")
        elif old.get("sha256") != new.get("sha256"):
            changes.append(
                f"{label} ({new.get('path')}) changed content (sha256 "
                f"{str(old.get('sha256'))[:12]} -> {str(new.get('sha256'))[:12]})"
            )
    return changes
