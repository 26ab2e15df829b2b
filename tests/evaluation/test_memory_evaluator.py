"""The `memory` evaluator: options, registry, and a study constrained on peak SRAM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from hwnas import ConfigError, Constraint, Objective, Study, create_space, create_strategy
from hwnas.config import build_study, parse_config
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.evaluation.base import Evaluator
from hwnas.evaluation.memory import MemoryModel
from hwnas.hardware.memory import memory_of
from hwnas.spaces.base import Arch, SearchSpace

BOUND_KB = 64.0  # most NB201 cells peak at 64 or 80 kB at int8: the 80 kB ones break it


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Accuracy(Evaluator):
    """A made-up accuracy that grows with convolutions (expensive, like training)."""

    def metrics(self) -> tuple[str, ...]:
        return ("accuracy",)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        gain = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0}
        return {"accuracy": 80.0 + sum(gain.get(op, 0.0) for op in arch["ops"])}


def test_registered_and_matches_the_cost_model() -> None:
    space = create_space("nb201")
    ev = create_evaluator("memory", EvaluatorContext(space=space), weight_bits=4)
    assert isinstance(ev, MemoryModel)
    assert ev.metrics() == ("peak_sram_kb", "flash_kb")
    assert not ev.expensive and not ev.cacheable
    arch = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    got = ev.evaluate(arch)
    assert got == memory_of(space, arch, weight_bits=4).metrics()
    assert got["flash_kb"] == pytest.approx(memory_of(space, arch).flash_kb / 2, abs=1e-3)
    assert ev.key() == "memory:a8w4:fold"
    assert create_evaluator("memory", EvaluatorContext(space=space), fold_bn=False).key() == (
        "memory:a8w8:nofold"
    )


def test_bad_options_fail_where_typed() -> None:
    ctx = EvaluatorContext(space=create_space("fbnet"))
    with pytest.raises(ConfigError, match=r"has no option 'act_bit'; did you mean 'act_bits'"):
        create_evaluator("memory", ctx, act_bit=8)
    with pytest.raises(ConfigError, match=r"memory: weight_bits must be an integer in 1\.\.32"):
        create_evaluator("memory", ctx, weight_bits=64)
    with pytest.raises(ConfigError, match="memory: fold_bn must be true or false, got 'yes'"):
        create_evaluator("memory", ctx, fold_bn="yes")

    class NoTorch(SearchSpace):
        name = "plain"

        def sample(self, rng: np.random.Generator) -> Arch:
            return {}

        def to_string(self, arch: Arch) -> str:
            return ""

        def from_string(self, text: str) -> Arch:
            return {}

    with pytest.raises(ConfigError, match="needs a space with a PyTorch builder; space 'plain'"):
        create_evaluator("memory", EvaluatorContext(space=NoTorch()))


def test_study_with_a_peak_sram_constraint() -> None:
    space = create_space("nb201")
    study = Study(
        space=space,
        evaluators=[Accuracy(), MemoryModel(context=EvaluatorContext(space=space))],
        objectives=[Objective("accuracy", "maximize"), Objective("flash_kb", "minimize")],
        constraints=[Constraint("peak_sram_kb", le=BOUND_KB)],
        strategy=create_strategy("random"),
        seed=3,
    )
    study.optimize(budget=6)
    trials = study.trials
    assert len(trials) == 6 and study.n_charged == 6  # memory itself is free
    for t in trials:
        assert t.metrics["peak_sram_kb"] > 0 and t.metrics["flash_kb"] > 0
        assert study.is_feasible(t) == (t.metrics["peak_sram_kb"] <= BOUND_KB)
    feasible = [t for t in trials if study.is_feasible(t)]
    assert feasible and len(feasible) < len(trials)  # seed 3 draws both kinds
    front = study.pareto_front()
    assert front and all(t in feasible for t in front)


def test_config_with_memory_evaluator(synthetic_table: Path, tmp_path: Path) -> None:
    config = parse_config(
        {
            "space": "nb201",
            "evaluators": [{"table": {"path": str(synthetic_table)}}, {"memory": {}}],
            "objectives": [
                {"metric": "accuracy", "direction": "maximize"},
                {"metric": "latency_ms@raspi4", "direction": "minimize"},
            ],
            "constraints": [{"metric": "peak_sram_kb", "le": BOUND_KB}],
            "strategy": {"name": "random"},
            "budget": {"evaluations": 3},
            "seed": 0,
        }
    )
    built = build_study(config, base_dir=tmp_path)
    built.study.optimize(built.budget)
    assert built.study.n_charged == 3
    assert all("peak_sram_kb" in t.metrics for t in built.study.trials)
