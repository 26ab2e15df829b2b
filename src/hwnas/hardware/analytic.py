"""Closed-form parameter and FLOP counts for the NB201 and FBNet networks (pure Python, no torch).

FLOPs convention: ``flops_m`` is millions of multiply-accumulates (MACs) of the conv and linear
layers; biases, BatchNorm, activations, pooling and additions are not counted. This is what
NAS-Bench-201 reports as "FLOPs" (7.78 M for a cell without convs up to 220.11 M for the all-3x3
cell on CIFAR-10, Dong & Yang, ICLR 2020), and exactly half of ``torch.utils.flop_counter``'s total
(it counts 2 FLOPs per MAC and only matmul-like ops); the tests check both.

NASLib's zero-cost tables (``flops.score`` in ``zc_nasbench201.json``) instead come from
tensorwatch's torchstat counter (automl/NASLib,
``naslib/predictors/utils/pruners/measures/model_stats.py``), which adds per-element counts for
BatchNorm (2 if affine), ReLU (1 per input element), pooling (kernel area per output element)
and adaptive pooling (``C * (H + 1) * (W + 1)``).
:func:`nb201_torchstat_flops` reproduces those numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from hwnas.errors import ConfigError
from hwnas.registry import closest
from hwnas.spaces.fbnet import FBNET_BLOCKS, FBNET_LAYERS
from hwnas.spaces.nb201 import NB201_OPS

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


@dataclass
class _Tally:
    """Running totals over square feature maps; ``size`` is the side length."""

    params: int = 0
    macs: int = 0
    # torchstat's extra per-element counts (BN, ReLU, pooling); not part of ``macs``.
    elementwise: int = 0

    def conv(
        self, c_in: int, c_out: int, kernel: int, size: int, *, stride: int = 1, groups: int = 1
    ) -> int:
        """A bias-free conv padded by ``kernel // 2``; returns the output side length."""
        out = (size + 2 * (kernel // 2) - kernel) // stride + 1
        weights = c_out * (c_in // groups) * kernel * kernel
        self.params += weights
        self.macs += weights * out * out
        return out

    def bn(self, channels: int, size: int) -> None:
        self.params += 2 * channels
        self.elementwise += 2 * channels * size * size

    def relu(self, channels: int, size: int) -> None:
        self.elementwise += channels * size * size

    def pool(self, channels: int, out_size: int, kernel: int) -> None:
        self.elementwise += channels * out_size * out_size * kernel * kernel

    def global_pool(self, channels: int, size: int) -> None:
        # torchstat's adaptive-pool count spans one extra row and column per output cell.
        self.elementwise += channels * (size + 1) * (size + 1)

    def linear(self, n_in: int, n_out: int) -> None:
        self.params += n_in * n_out + n_out
        self.macs += n_in * n_out


def _check_ops(ops: Sequence[str], allowed: Sequence[str], count: int, space: str) -> list[str]:
    if isinstance(ops, str) or not isinstance(ops, Sequence) or len(ops) != count:
        raise ConfigError(f"{space}: expected a list of {count} op names, got {ops!r}")
    for i, op in enumerate(ops):
        if op not in allowed:
            raise ConfigError(
                f"{space}: unknown op {op!r} at position {i}; {closest(str(op), tuple(allowed))}"
            )
    return list(ops)


def _check_positive(space: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"{space}: {name} must be >= 1, got {value}")


def _nb201_tally(
    ops: Sequence[str], *, num_classes: int, input_size: int, C: int, N: int
) -> _Tally:
    ops = _check_ops(ops, NB201_OPS, 6, "nb201")
    _check_positive("nb201", num_classes=num_classes, C=C, N=N)
    if input_size < 4 or input_size % 4:
        # Odd sizes before a reduction cell make its two branches disagree in shape.
        raise ConfigError(f"nb201: input_size must be a multiple of 4, got {input_size}")
    t = _Tally()
    size, c = input_size, C
    t.conv(3, c, 3, size)
    t.bn(c, size)
    for stage in range(3):
        if stage > 0:
            # ResNet basic block: ReLU-Conv-BN (3x3, stride 2), ReLU-Conv-BN (3x3),
            # shortcut 2x2 average pool + 1x1 conv.
            t.relu(c, size)
            half = t.conv(c, 2 * c, 3, size, stride=2)
            t.bn(2 * c, half)
            t.relu(2 * c, half)
            t.conv(2 * c, 2 * c, 3, half)
            t.bn(2 * c, half)
            t.pool(c, half, 2)
            t.conv(c, 2 * c, 1, half)
            size, c = half, 2 * c
        for _ in range(N):
            for op in ops:
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    t.relu(c, size)
                    t.conv(c, c, 1 if op == "nor_conv_1x1" else 3, size)
                    t.bn(c, size)
                elif op == "avg_pool_3x3":
                    t.pool(c, size, 3)
    t.bn(c, size)
    t.relu(c, size)
    t.global_pool(c, size)
    t.linear(c, num_classes)
    return t


def nb201_params_flops(
    ops: Sequence[str], *, num_classes: int = 10, input_size: int = 32, C: int = 16, N: int = 5
) -> tuple[float, float]:
    """Parameters and MACs of the standard NAS-Bench-201 network for one cell.

    The network is the one :func:`hwnas.spaces.nb201_torch.build_nb201_network` builds; the
    parameter count (BatchNorm affine weights included) equals its ``parameters()`` total.

    Args:
        ops: the 6 op names in canonical-string edge order.
        num_classes: classifier outputs (10, 100, or 120 for ImageNet16-120).
        input_size: input side length, a multiple of 4 (32, or 16 for ImageNet16-120).
        C: channels of the first stage.
        N: cells per stage.

    Returns:
        ``(params_m, flops_m)``: millions of parameters and millions of conv/linear MACs
        (the NAS-Bench-201 "FLOPs" convention, half of ``torch.utils.flop_counter``'s count).

    Raises:
        ConfigError: an op name, the op count or a size option is invalid.

    Example:
        >>> nb201_params_flops(["nor_conv_3x3"] * 6)
        (1.531546, 220.11968)
    """
    checked = _check_ops(ops, NB201_OPS, 6, "nb201")
    base, per_edge = _nb201_edge_table(num_classes, input_size, C, N)
    params, macs = base
    for i, op in enumerate(checked):
        p, m = per_edge[i][op]
        params += p
        macs += m
    return params / 1e6, macs / 1e6


@lru_cache(maxsize=32)
def _nb201_edge_table(
    num_classes: int, input_size: int, C: int, N: int
) -> tuple[tuple[int, int], list[dict[str, tuple[int, int]]]]:
    """Counts of the all-``none`` network plus what each op adds on each edge.

    Edges contribute independently (a node sums its inputs; ``none`` adds nothing), so a
    network's counts are the base plus one table entry per edge: a lookup instead of a walk.
    """
    base_t = _nb201_tally(["none"] * 6, num_classes=num_classes, input_size=input_size, C=C, N=N)
    base = (base_t.params, base_t.macs)
    table: list[dict[str, tuple[int, int]]] = []
    for i in range(6):
        row = {}
        for op in NB201_OPS:
            ops = ["none"] * 6
            ops[i] = op
            t = _nb201_tally(ops, num_classes=num_classes, input_size=input_size, C=C, N=N)
            row[op] = (t.params - base[0], t.macs - base[1])
        table.append(row)
    return base, table


def nb201_torchstat_flops(
    ops: Sequence[str], *, num_classes: int = 10, input_size: int = 32, C: int = 16, N: int = 5
) -> float:
    """Millions of "FLOPs" as tensorwatch's torchstat counts them, i.e. NASLib's ``flops.score``.

    MACs of convs and linears plus BatchNorm (2 per element), ReLU (1 per input element), pooling
    (kernel area per output element) and global pooling (``C * (H + 1) * (W + 1)``). Use it to
    compare with NASLib's zero-cost tables; :func:`nb201_params_flops` is the convention to use
    elsewhere.

    Args:
        ops: the 6 op names in canonical-string edge order.
        num_classes: classifier outputs.
        input_size: input side length, a multiple of 4.
        C: channels of the first stage.
        N: cells per stage.

    Example:
        >>> nb201_torchstat_flops(["nor_conv_3x3"] * 6)
        222.860992
    """
    t = _nb201_tally(ops, num_classes=num_classes, input_size=input_size, C=C, N=N)
    return (t.macs + t.elementwise) / 1e6


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
    ops = _check_ops(ops, FBNET_BLOCKS, FBNET_LAYERS, "fbnet")
    _check_positive("fbnet", num_classes=num_classes, input_size=input_size)
    t = _Tally()
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
