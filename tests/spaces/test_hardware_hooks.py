"""A space gives the hardware models its features, operator decomposition and MCU block network
by overriding its own hooks: nothing in hwnas.hardware names it."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.hardware.features import (
    FEATURE_SETS,
    degenerate_mask,
    feature_matrix,
    feature_names,
    has_feature_set,
)
from hwnas.hardware.lut_ops import DECOMPOSERS, decompose, has_decomposer, op_configs
from hwnas.hardware.mcu import mcu_memory
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.spaces import MBV3Space, create_space
from hwnas.spaces.base import Arch, CategoricalSpace
from hwnas.spaces.hooks import BlockNetwork, FeatureSet, OpSpec, spaces_with
from hwnas.spaces.mbv3_plan import BlockPlan

KERNELS = ("3", "5")
WIDTHS = ("w8", "w16")


def _conv(kernel: int, c_in: int, c_out: int) -> object:  # a module factory, never called here
    raise AssertionError("decomposing builds no module")


def _toy_ops(space: ToySpace, arch: Arch) -> list[OpSpec]:
    kernel, width = space.validate(arch)["ops"]
    c = int(width[1:])
    shape = (3, space.input_size, space.input_size)
    return [
        OpSpec(f"toy/conv:k{kernel}:c3-{c}:8x8", shape, partial(_conv, int(kernel), 3, c)),
        OpSpec(f"toy/head:c{c}:8x8", (c, 8, 8), partial(_conv, 1, c, 10)),
    ]


class ToySpace(CategoricalSpace):
    """A 3x3 or 5x5 conv to 8 or 16 channels, then a head: four architectures."""

    name = "toyhw"
    slots = (KERNELS, WIDTHS)
    input_size = 8

    def to_string(self, arch: Arch) -> str:
        return "-".join(self._ops(arch))

    def from_string(self, text: str) -> Arch:
        return self.validate({"ops": text.split("-")})

    def latency_feature_set(self) -> FeatureSet:
        k = np.array([int(c) for c in KERNELS])
        w = np.array([int(c[1:]) for c in WIDTHS])

        def matrix(code: np.ndarray) -> np.ndarray:
            kernel, width = k[code[:, 0]], w[code[:, 1]]
            flops = 3 * width * kernel**2 * 64 / 1e6
            return np.column_stack([kernel, width, flops]).astype(np.float64)

        return FeatureSet(self.name, ("kernel", "width", "flops_m"), matrix)

    def lut_decomposer(self) -> Callable[[Arch], list[OpSpec]]:
        return partial(_toy_ops, self)

    def mcu_network(self) -> Callable[[Arch], BlockNetwork]:
        def network(arch: Arch) -> BlockNetwork:
            kernel, width = self.validate(arch)["ops"]
            c = int(width[1:])
            block = BlockPlan(c, c, int(kernel), 3, 3 * c, 1, "relu", 0)
            return BlockNetwork(1, self.input_size, c, 1, (("blocks.0", block),), 32, 0, 10)

        return network


def test_a_new_space_plugs_in_through_its_own_hooks_alone() -> None:
    space = ToySpace()
    archs = list(space.enumerate())
    assert space.name not in FEATURE_SETS and space.name not in DECOMPOSERS
    assert has_feature_set(space) and has_decomposer(space)

    assert feature_names(space) == ["kernel", "width", "flops_m"]
    X = feature_matrix(space, [*archs, "5-w16"])
    assert X.shape == (5, 3) and np.array_equal(X[3], X[4]) and X[3, 0] == 5 and X[3, 1] == 16
    assert not degenerate_mask(space, archs).any()  # no "degenerate" feature: none is

    assert [s.key for s in decompose(space, {"ops": ["5", "w8"]})] == [
        "toy/conv:k5:c3-8:8x8",
        "toy/head:c8:8x8",
    ]
    assert len(op_configs(space, archs)) == 2 * 2 + 2  # every conv, every head

    y = X[:4, 2] * 7.0 + 0.5
    predictor = LatencyPredictor("ridge").fit(space, archs, y)
    assert predictor.feature_names == ["kernel", "width", "flops_m"]
    assert predictor.predict(archs).shape == (4,)

    # No PyTorch builder: the memory evaluator reads the block network in closed form.
    ev = create_evaluator("memory", EvaluatorContext(space=space))
    arch = {"ops": ["3", "w16"]}
    want = mcu_memory(space.mcu_network()(arch), bias_bits=8).metrics()
    assert ev.evaluate(arch) == want


def test_the_shipped_spaces_have_their_hooks() -> None:
    assert spaces_with("latency_feature_set") == ["fbnet", "nb201"]
    assert spaces_with("lut_decomposer") == ["fbnet", "nb201"]
    assert spaces_with("mcu_network") == ["mbv3"]
    for name in ("resnet", "mbv3"):
        assert not has_feature_set(create_space(name))
        assert not has_decomposer(create_space(name))


def test_the_closed_form_memory_evaluator_pickles() -> None:
    space = MBV3Space(preset="small", input_size=28, in_channels=1)
    ev = create_evaluator("memory", EvaluatorContext(space=space))
    arch = space.sample(np.random.default_rng(0))
    again = pickle.loads(pickle.dumps(ev))
    assert again.evaluate(arch) == ev.evaluate(arch)


@pytest.mark.parametrize("name", ["nb201", "fbnet"])
def test_spaces_hand_out_picklable_decomposers(name: str) -> None:
    space = create_space(name)
    fn = space.lut_decomposer()
    assert fn is not None
    arch = space.sample(np.random.default_rng(0))
    assert [s.key for s in pickle.loads(pickle.dumps(fn))(arch)] == [s.key for s in fn(arch)]
