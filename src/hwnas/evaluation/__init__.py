"""Evaluators: one ABC, one registry (``create_evaluator``, ``list_evaluators``)."""

from __future__ import annotations

from typing import Any

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator, EvaluatorContext, MissingArchError
from hwnas.evaluation.measured import MeasuredLatency
from hwnas.evaluation.memory import MemoryModel
from hwnas.evaluation.nb201 import NB201Benchmark
from hwnas.evaluation.predicted import PredictedLatency
from hwnas.evaluation.supernet import SupernetAccuracy
from hwnas.evaluation.table import TableEvaluator
from hwnas.evaluation.train import TrainAccuracy
from hwnas.evaluation.zero_cost import ZeroCostProxies
from hwnas.registry import Registry

EVALUATORS: Registry[Evaluator] = Registry("evaluator")
EVALUATORS.register("nb201")(NB201Benchmark)
EVALUATORS.register("table")(TableEvaluator)
EVALUATORS.register("predicted")(PredictedLatency)
EVALUATORS.register("measured")(MeasuredLatency)
EVALUATORS.register("memory")(MemoryModel)
EVALUATORS.register("zero_cost")(ZeroCostProxies)
EVALUATORS.register("supernet")(SupernetAccuracy)
EVALUATORS.register("train")(TrainAccuracy)


def create_evaluator(name: str, context: EvaluatorContext, **options: Any) -> Evaluator:
    """Create a registered evaluator, e.g. ``create_evaluator("nb201", ctx, dataset="cifar10")``."""
    if "context" in options:
        raise ConfigError(f"evaluator {name!r}: 'context' is not an option")
    return EVALUATORS.create(name, context=context, **options)


def list_evaluators() -> list[str]:
    return EVALUATORS.names()


__all__ = [
    "EVALUATORS",
    "Evaluator",
    "EvaluatorContext",
    "MissingArchError",
    "NB201Benchmark",
    "TableEvaluator",
    "create_evaluator",
    "list_evaluators",
]
