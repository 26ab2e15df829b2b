"""Evaluators for tests: one that misbehaves on purpose, for testing executors and failure
handling, and one that serves a cheap metric of the space, for studies that need no table.

It lives in the package (not in a test folder) so that worker processes and Ray workers can
import it by name. Its metrics are a deterministic function of the NB201-style ``ops`` list.

Example:
    >>> from hwnas import Study, Objective, create_space
    >>> space = create_space("nb201")
    >>> bad = space.to_string(space.decode([0] * 6))
    >>> ev = MisbehavingEvaluator(space=space, behaviour={bad: "raise"})
    >>> ev.evaluate(space.decode([1] * 6))["accuracy"]
    56.0
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator
from hwnas.execution.base import TransientError
from hwnas.spaces.base import Arch, SearchSpace

BEHAVIOURS = (
    "ok",
    "raise",  # RuntimeError
    "nan",  # accuracy = NaN
    "inf",  # latency = inf
    "text",  # accuracy = "high"
    "hang",  # sleeps for an hour
    "crash",  # kills its own process with SIGKILL, every time
    "crash-once",  # kills its own process the first time (a marker file remembers)
    "transient-once",  # raises TransientError the first time
    "hang-once",  # sleeps for an hour the first time
)


class MisbehavingEvaluator(Evaluator):
    """``accuracy`` and ``latency_ms@test`` of NB201-style cells, misbehaving where told.

    Args:
        space: the space (to print canonical strings).
        behaviour: canonical arch string -> one of :data:`BEHAVIOURS`.
        sleep_s: time every evaluation takes (a stand-in for training or measuring).
        marker_dir: folder for the ``-once`` behaviours' marker files (required by them).
        expensive: whether evaluations count against the budget.
    """

    cacheable = False

    def __init__(
        self,
        *,
        space: SearchSpace,
        behaviour: Mapping[str, str] | None = None,
        sleep_s: float = 0.0,
        marker_dir: str | Path | None = None,
        expensive: bool = True,
    ) -> None:
        self.space = space
        self.behaviour = dict(behaviour or {})
        for arch, what in self.behaviour.items():
            if what not in BEHAVIOURS:
                raise ConfigError(
                    f"unknown behaviour {what!r} for {arch}; choose from {BEHAVIOURS}"
                )
            if what.endswith("-once") and marker_dir is None:
                raise ConfigError(f"behaviour {what!r} needs marker_dir")
        self.sleep_s = sleep_s
        self.marker_dir = Path(marker_dir) if marker_dir is not None else None
        self.expensive = expensive

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy", "latency_ms@test")

    def evaluate(self, arch: Arch) -> dict[str, float]:
        s = self.space.to_string(arch)
        what = self.behaviour.get(s, "ok")
        if what.endswith("-once"):
            what = what[: -len("-once")] if self._first_time(s) else "ok"
        if self.sleep_s:
            time.sleep(self.sleep_s)
        ops = arch["ops"]
        acc = (
            50.0 + 5 * sum(o == "nor_conv_3x3" for o in ops) + sum(o == "skip_connect" for o in ops)
        )
        lat = (
            1.0 + 3 * sum(o == "nor_conv_3x3" for o in ops) + sum(o == "nor_conv_1x1" for o in ops)
        )
        out: dict[str, float] = {"accuracy": acc, "latency_ms@test": lat}
        if what == "raise":
            raise RuntimeError(f"planted failure for {s}")
        if what == "transient":
            raise TransientError("planted passing failure")
        if what == "nan":
            out["accuracy"] = math.nan
        elif what == "inf":
            out["latency_ms@test"] = math.inf
        elif what == "text":
            out["accuracy"] = "high"  # type: ignore[assignment]
        elif what == "hang":
            time.sleep(3600)
        elif what == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    def _first_time(self, arch_str: str) -> bool:
        assert self.marker_dir is not None
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        marker = self.marker_dir / hashlib.sha256(arch_str.encode()).hexdigest()[:24]
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return False
        return True

    def key(self) -> str:
        return "misbehaving"


class CheapMetric(Evaluator):
    """One of the space's cheap metrics (``space.cheap_metrics``) under the name ``name`` (default:
    the metric's own): a free stand-in evaluator for a study that only needs some objective.

    Example:
        >>> from hwnas import create_space
        >>> space = create_space("nb201")
        >>> ev = CheapMetric(space, "flops_m", name="score")
        >>> ev.metrics(), ev.evaluate(space.decode([0] * 6))["score"] > 0
        (('score',), True)
    """

    def __init__(self, space: SearchSpace, metric: str = "flops_m", *, name: str | None = None):
        self.space = space
        self.metric = metric
        self.name = name or metric

    def metrics(self) -> tuple[str, ...]:
        return (self.name,)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return {self.name: self.space.cheap_metrics(arch)[self.metric]}
