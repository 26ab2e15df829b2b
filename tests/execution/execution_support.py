"""A study over the misbehaving evaluator, for executor tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas import Objective, Study, create_space, create_strategy
from hwnas.testing import MisbehavingEvaluator

OBJECTIVES = [Objective("accuracy", "maximize"), Objective("latency_ms@test", "minimize")]


def make_study(
    behaviour: Mapping[str, str] | None = None,
    *,
    marker_dir: Path | None = None,
    sleep_s: float = 0.0,
    strategy: str = "random",
    seed: int = 0,
    **kw: Any,
) -> Study:
    space = create_space("nb201")
    ev = MisbehavingEvaluator(
        space=space, behaviour=behaviour, marker_dir=marker_dir, sleep_s=sleep_s
    )
    return Study(
        space=space,
        evaluators=[ev],
        objectives=OBJECTIVES,
        strategy=create_strategy(strategy),
        seed=seed,
        **kw,
    )
