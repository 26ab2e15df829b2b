"""The closed-form MCUNet memory model (hwnas.hardware.mcu): MCUNet's published count, the traced
model of hwnas.hardware.memory, the parameter count of the mbv3 plan, and the memory evaluator.

One element is one byte unless said otherwise (int8 activations and weights).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.hardware.mcu import (
    BlockNetwork,
    block_network,
    mbv3_memory,
    mcu_memory,
    mobilenet_v2,
)
from hwnas.spaces.mbv3 import MBV3Space, plan_params_macs

SMALL = {"preset": "small", "resolutions": [24, 28, 32], "widths": [0.5, 0.75, 1.0]}


def _archs(space: MBV3Space, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


# -- MCUNet's figures -----------------------------------------------------------------------------
def test_mobilenet_v2_w035_r144_is_mcunets_311040_bytes() -> None:
    net = mobilenet_v2(0.35, 144)
    # make_divisible(c * 0.35, 8): stem 16, then 8, 8, 16, 24, 32, 56, 112; 1280 kept
    widths = [b.c_out for _, b in net.blocks]
    assert net.stem_channels == 16 and net.final_expand == 1280
    assert widths == [8, 8, 8, 16, 16, 16, 24, 24, 24, 24, 32, 32, 32, 56, 56, 56, 112]
    report = mcu_memory(net)
    layers = dict(report.layers)
    # block 2 (blocks.1): 8 -> 48 at 72x72, depthwise stride 2 -> 48 at 36x36
    assert layers["blocks.1.expand"] == 72 * 72 * 8 + 72 * 72 * 48 == 290_304
    assert layers["blocks.1.depthwise"] == 72 * 72 * 48 + 36 * 36 * 48 == 311_040
    assert (report.peak_sram_bytes, report.peak_layer) == (311_040, "blocks.1.depthwise")
    assert report.peak_sram_kb == pytest.approx(303.75)  # the model zoo's "Act: 303kB"
    # MCUNet's own count (no residual beside the projection) gives the same peak
    assert mcu_memory(net, residual_until_add=False).peak_sram_bytes == 311_040


@pytest.mark.parametrize(
    ("width", "resolution", "peak"), [(1.0, 224, 1_505_280), (0.5, 160, 384_000)]
)
def test_mobilenet_v2_other_reference_figures(width: float, resolution: int, peak: int) -> None:
    assert mcu_memory(mobilenet_v2(width, resolution)).peak_sram_bytes == peak


def test_mobilenet_v2_parameters_and_flash() -> None:
    params = {"weight_bits": 8, "bias_bits": 8, "fold_bn": False}  # every parameter, one byte
    zoo = mobilenet_v2(0.35, 144, scale_last_channel=True)
    assert zoo.final_expand == 448  # MCUNet's model zoo: 448-channel head, 0.75M parameters
    assert round(mcu_memory(zoo, **params).flash_bytes / 1e6, 2) == 0.75
    net = mobilenet_v2(0.35, 144)
    unfolded = mcu_memory(net, **params).flash_bytes
    folded8 = mcu_memory(net, bias_bits=8).flash_bytes
    folded32 = mcu_memory(net).flash_bytes
    bn_channels = unfolded - folded8  # each BN: 2 values unfolded, 1 folded bias
    biases = bn_channels + 1000  # the folded biases and the classifier's
    assert folded32 - folded8 == 3 * biases  # int32 biases: 3 more bytes each
    stem = 16
    assert (
        bn_channels
        == stem
        + sum((b.hidden if b.expansion != 1 else 0) + b.hidden + b.c_out for _, b in net.blocks)
        + 1280
    )


def test_activation_bits_scale_each_tensor() -> None:
    assert mcu_memory(mobilenet_v2(0.35, 144), act_bits=4).peak_sram_bytes == 311_040 // 2
    assert mcu_memory(mobilenet_v2(0.35, 144), act_bits=16).peak_sram_bytes == 2 * 311_040


# -- mbv3 plans ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["small", "full"])
def test_unfolded_one_byte_flash_is_the_plans_parameter_count(preset: str) -> None:
    space = MBV3Space(preset=preset, widths=[0.5, 1.0])
    for arch in _archs(space, 10, seed=3):
        plan = space.plan(arch)
        got = mcu_memory(plan, weight_bits=8, bias_bits=8, fold_bn=False).flash_bytes
        assert got == plan_params_macs(plan)[0]


def test_mbv3_memory_uses_the_archs_own_resolution_and_names_layers() -> None:
    space = MBV3Space(preset="small", resolutions=[24, 32])
    arch = space.from_string("r24-w1.0|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3")
    small = mbv3_memory(space, arch)
    big = mbv3_memory(space, {**arch, "r": 32})
    assert small.peak_sram_bytes < big.peak_sram_bytes
    assert small.flash_bytes == big.flash_bytes
    names = [n for n, _ in small.layers]
    assert names[:4] == ["stem", "first_block.depthwise", "first_block.project", "blocks.0.expand"]
    assert "blocks.2.se" in names and "blocks.0.se" not in names  # SE in stages 2, 4, 5 only
    assert names[-4:] == ["final_expand", "pool", "feature_mix", "classifier"]
    # the first block is 16 -> 16, stride 1, expansion 1: its input is the residual, counted once
    layers = dict(small.layers)
    assert layers["first_block.depthwise"] == 2 * 16 * 24 * 24
    assert layers["first_block.project"] == 3 * 16 * 24 * 24
    assert (
        dict(mbv3_memory(space, arch, residual_until_add=False).layers)["first_block.project"]
        == 2 * 16 * 24 * 24
    )  # MCUNet's count: the projection accumulates onto the residual
    # 16 -> 48 channels at 24x24
    assert (small.peak_layer, small.peak_sram_bytes) == ("blocks.0.expand", (16 + 48) * 24 * 24)


def test_thousands_of_archs_per_second() -> None:
    space = MBV3Space(preset="full", widths=[0.5, 1.0])
    plans = [space.plan(a) for a in _archs(space, 1000, seed=0)]
    start = time.perf_counter()
    for plan in plans:
        mcu_memory(plan)
    assert time.perf_counter() - start < 2.0  # about 0.15 s on one core


def test_bad_input_fails_clearly() -> None:
    net = mobilenet_v2(0.35, 144)
    with pytest.raises(ConfigError, match=r"act_bits must be an integer in 1\.\.32, got 0"):
        mcu_memory(net, act_bits=0)
    with pytest.raises(ConfigError, match=r"bias_bits must be an integer in 1\.\.32, got True"):
        mcu_memory(net, bias_bits=True)
    with pytest.raises(ConfigError, match="residual_until_add must be True or False, got 'yes'"):
        mcu_memory(net, residual_until_add="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mcu_memory takes a BlockNetwork or an mbv3 NetworkPlan"):
        mcu_memory({"ks": []})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="block_network takes a NetworkPlan"):
        block_network(net)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mobilenet_v2: width must be a number > 0, got -1"):
        mobilenet_v2(-1)
    with pytest.raises(ConfigError, match="resolution must be a whole number >= 1, got 0"):
        mobilenet_v2(1.0, 0)
    assert isinstance(net, BlockNetwork)


# -- against the traced model -------------------------------------------------------------------
def _traced_at(timeline: dict[str, int], layer: str) -> int:
    """The traced live bytes at the conv (or pool, linear) of one closed-form layer."""
    key = layer.replace(".", "_")
    if layer in ("pool", "classifier"):
        return timeline[layer]
    if layer.endswith(".se"):  # the largest of the squeeze-excite's reduce and expand convs
        return max(timeline[f"{key}_reduce"], timeline[f"{key}_expand"])
    return timeline[f"{key}_conv"]


@pytest.mark.torch
@pytest.mark.slow
def test_closed_form_equals_the_traced_model_on_20_small_archs() -> None:
    pytest.importorskip("torch")
    import torch

    from hwnas.hardware.memory import network_memory

    space = MBV3Space(**SMALL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for arch in _archs(space, 20, seed=0):
            traced = network_memory(space.build_network(arch), space.input_shape_for(arch))
            closed = mbv3_memory(space, arch, bias_bits=8)  # the traced model's bias convention
            assert closed.peak_sram_bytes == traced.peak_bytes, space.to_string(arch)
            assert closed.flash_bytes == traced.flash_bytes, space.to_string(arch)
            timeline = {s.name: s.live_bytes for s in traced.timeline}
            for layer, nbytes in closed.layers:  # every layer, not only the peak
                assert _traced_at(timeline, layer) == nbytes, (space.to_string(arch), layer)
            # MCUNet's count differs only at the projection of residual blocks, by the block input
            mcunet = dict(mbv3_memory(space, arch, residual_until_add=False).layers)
            layers = dict(closed.layers)
            plan = space.plan(arch)
            size = (plan.resolution - 1) // plan.stem_stride + 1  # odd kernels, "same" padding
            for name, block in block_network(plan).blocks:
                size = (size - 1) // block.stride + 1
                gap = layers[f"{name}.project"] - mcunet[f"{name}.project"]
                assert gap == (block.c_in * size * size if block.residual else 0)
            assert {k: v for k, v in mcunet.items() if not k.endswith(".project")} == {
                k: v for k, v in layers.items() if not k.endswith(".project")
            }
    finally:
        torch.set_num_threads(threads)


# -- the memory evaluator on mbv3 ---------------------------------------------------------------
def test_memory_evaluator_on_mbv3_uses_the_closed_form() -> None:
    space = MBV3Space(preset="small", resolutions=[24, 32], widths=[0.5, 1.0])
    ev = create_evaluator("memory", EvaluatorContext(space=space))
    ev4 = create_evaluator("memory", EvaluatorContext(space=space), weight_bits=4, fold_bn=False)
    for arch in _archs(space, 6, seed=1):
        want = mbv3_memory(space, arch, bias_bits=8).metrics()
        assert ev.evaluate(arch) == want
        plan = space.plan(arch)
        assert ev4.evaluate(arch)["flash_kb"] == pytest.approx(plan_params_macs(plan)[0] / 2 / 1024)
    assert ev.metrics() == ("peak_sram_kb", "flash_kb")


@pytest.mark.torch
def test_memory_evaluator_on_mbv3_matches_the_traced_network_at_its_resolution() -> None:
    pytest.importorskip("torch")
    from hwnas.hardware.memory import network_memory

    space = MBV3Space(preset="small", resolutions=[24, 32])
    ev = create_evaluator("memory", EvaluatorContext(space=space))
    arch = space.from_string("r24-w1.0|k5e6,k3e3|k7e4,k3e3|k3e3,k3e6|k3e3,k3e3|k5e3,k3e3")
    traced = network_memory(space.build_network(arch), (3, 24, 24)).metrics()
    assert ev.evaluate(arch) == traced
