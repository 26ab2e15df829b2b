"""Closed-form parameter and FLOP counts of HW-NAS-Bench's CIFAR FBNet network (pure Python, no
torch), and its macro architecture, which the PyTorch builder and the latency features share.

FLOPs convention as :mod:`hwnas.spaces.nb201_cost`: millions of conv/linear multiply-accumulates.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.spaces.tally import Tally, check_ops, check_positive

FBNET_BLOCKS: tuple[str, ...] = (
    "k3_e1",
    "k3_e1_g2",
    "k3_e3",
    "k3_e6",
    "k5_e1",
    "k5_e1_g2",
    "k5_e3",
    "k5_e6",
    "skip",
)
FBNET_LAYERS = 22

# --- FBNet macro architecture -------------------------------------------------------------------
# HW-NAS-Bench's FBNet network for CIFAR-10/100 (GATECH-EIC/HW-NAS-Bench,
# hw_nas_bench_api/fbnet_models/model_infer.py, class FBNet_Infer; the FBNet-v1 channels of Wu et
# al., CVPR 2019, Table 1, with the "unofficial CIFAR" strides): stem 3x3 conv stride 1 + BN + ReLU
# to 16 channels; 7 stages; 1x1 head conv + BN + ReLU to 1504 channels; global average pool; linear.
FBNET_STEM_CHANNELS = 16
FBNET_HEAD_CHANNELS = 1504
# (output channels, layers, stride of the first layer) per stage; 1 + 4*5 + 1 = 22 layers.
FBNET_STAGES: tuple[tuple[int, int, int], ...] = (
    (16, 1, 1),
    (24, 4, 1),
    (32, 4, 2),
    (64, 4, 2),
    (112, 4, 1),
    (184, 4, 2),
    (352, 1, 1),
)
# Block name -> (kernel, expansion, groups of the two 1x1 convs). An inverted residual block is
# 1x1 conv (groups g) C_in -> e*C_in + BN + ReLU, [channel shuffle if g > 1], depthwise kxk conv
# with the layer's stride + BN + ReLU, 1x1 conv (groups g) -> C_out + BN, plus the input when
# C_in == C_out and stride 1. The expansion multiplies the block's INPUT channels.
FBNET_BLOCK_SPECS: dict[str, tuple[int, int, int]] = {
    "k3_e1": (3, 1, 1),
    "k3_e1_g2": (3, 1, 2),
    "k3_e3": (3, 3, 1),
    "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1),
    "k5_e1_g2": (5, 1, 2),
    "k5_e3": (5, 3, 1),
    "k5_e6": (5, 6, 1),
}
# "skip" is the identity where C_in == C_out and stride 1; elsewhere (the first layer of stages
# 2, 3, 4, 5, 6, 7 here) it is a 1x1 conv with the layer's stride + BN + ReLU.


def fbnet_layer_plan() -> list[tuple[int, int, int]]:
    """``(in_channels, out_channels, stride)`` of each of the 22 searchable FBNet layers."""
    plan = []
    c_in = FBNET_STEM_CHANNELS
    for c_out, layers, stride in FBNET_STAGES:
        for i in range(layers):
            plan.append((c_in, c_out, stride if i == 0 else 1))
            c_in = c_out
    return plan


def fbnet_params_flops(
    ops: Sequence[str], *, num_classes: int = 100, input_size: int = 32
) -> tuple[float, float]:
    """Parameters and MACs of HW-NAS-Bench's CIFAR FBNet network for 22 block choices.

    Macro architecture: see :data:`FBNET_STAGES` and :data:`FBNET_BLOCK_SPECS` (source:
    HW-NAS-Bench, ``hw_nas_bench_api/fbnet_models/model_infer.py``). The parameter count equals
    that of :func:`hwnas.spaces.fbnet_torch.build_fbnet_network`.

    Args:
        ops: the 22 block names, first layer first.
        num_classes: classifier outputs (100 for the HW-NAS-Bench / HELP tables).
        input_size: input side length (32 for CIFAR).

    Returns:
        ``(params_m, flops_m)``: millions of parameters and millions of conv/linear MACs
        (half of ``torch.utils.flop_counter``'s count).

    Raises:
        ConfigError: a block name, the block count or a size option is invalid.

    Example:
        >>> params_m, flops_m = fbnet_params_flops(["skip"] * 22)
        >>> round(params_m, 3), round(flops_m, 3)
        (0.781, 11.609)
    """
    ops = check_ops(ops, FBNET_BLOCKS, FBNET_LAYERS, "fbnet")
    check_positive("fbnet", num_classes=num_classes, input_size=input_size)
    t = Tally()
    size = t.conv(3, FBNET_STEM_CHANNELS, 3, input_size)
    t.bn(FBNET_STEM_CHANNELS, size)
    for op, (c_in, c_out, stride) in zip(ops, fbnet_layer_plan(), strict=True):
        if op == "skip":
            if stride != 1 or c_in != c_out:
                size = t.conv(c_in, c_out, 1, size, stride=stride)
                t.bn(c_out, size)
            continue
        kernel, expansion, groups = FBNET_BLOCK_SPECS[op]
        hidden = c_in * expansion
        t.conv(c_in, hidden, 1, size, groups=groups)
        t.bn(hidden, size)
        size = t.conv(hidden, hidden, kernel, size, stride=stride, groups=hidden)
        t.bn(hidden, size)
        t.conv(hidden, c_out, 1, size, groups=groups)
        t.bn(c_out, size)
    t.conv(FBNET_STAGES[-1][0], FBNET_HEAD_CHANNELS, 1, size)
    t.bn(FBNET_HEAD_CHANNELS, size)
    t.linear(FBNET_HEAD_CHANNELS, num_classes)
    return t.params / 1e6, t.macs / 1e6
