"""The fixed layout of the ``mbv3`` space (Once-for-All's elastic MobileNetV3): its choices, its
two presets, and the plan of one sub-network with its closed-form parameters and MACs.

The search space itself (strings, validation, encodings) is :mod:`hwnas.spaces.mbv3`; the PyTorch
builder :mod:`hwnas.spaces.mbv3_torch` and the cheap metrics both read a :class:`NetworkPlan`, so
the parameter count of a built network equals ``params_m`` exactly.

Presets (channels before the width multiplier; every channel count ``c`` becomes
``make_divisible(c * w, 8)`` as in MobileNet, hidden widths are ``make_divisible(c_in * e, 8)``
and squeeze-excite widths ``make_divisible(hidden // 4, 8)``)::

    layer            full (OFA MBv3-Large)        small (28x28 / 32x32 inputs)
    stem             3x3 conv s2 -> 16, h-swish   3x3 conv s1 -> 16, h-swish
    first_block      MBConv k3 e1 s1 16 -> 16, relu (fixed, not searched; both presets)
    stage 1          24,  s2, relu                16, s2, relu
    stage 2          40,  s2, relu,    SE         24, s2, relu,    SE
    stage 3          80,  s2, h-swish             40, s2, h-swish
    stage 4          112, s1, h-swish, SE         48, s1, h-swish, SE
    stage 5          160, s2, h-swish, SE         64, s2, h-swish, SE
    final_expand     1x1 conv -> 960, h-swish     1x1 conv -> 384, h-swish
    feature_mix      global pool, 1x1 -> 1280     global pool, 1x1 -> 256
                     (no BN, no bias), h-swish    (no BN, no bias), h-swish
    classifier       dropout 0.1, linear          linear (no dropout)
    resolutions      128, 132, ..., 224           [input_size] (default 32)
    output stride    32 (224 px -> 7x7)           16 (28 px -> 2x2, 32 px -> 2x2)
    num_classes      1000                         10

Only the first block of a stage has the stage's stride; a block keeps a residual connection when
its stride is 1 and its input and output widths are equal (all but each stage's first block).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.spaces.hooks import BlockNetwork

MBV3_KERNELS: tuple[int, ...] = (3, 5, 7)
MBV3_EXPANSIONS: tuple[int, ...] = (3, 4, 6)
MBV3_DEPTHS: tuple[int, ...] = (2, 3, 4)
MBV3_STAGES = 5
MBV3_MAX_DEPTH = max(MBV3_DEPTHS)
MBV3_BLOCKS = MBV3_STAGES * MBV3_MAX_DEPTH
OFA_RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
VECTOR_LENGTH = 2 * MBV3_BLOCKS + MBV3_STAGES + 2


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: the nearest multiple of ``divisor`` (at least ``divisor``),
    rounded up where rounding down would lose more than 10% (as OFA's ``make_divisible``)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class StageSpec:
    """One searchable stage: output channels (before the width multiplier), the stride of its
    first block, its activation (``relu`` or ``hswish``) and whether its blocks squeeze-excite."""

    width: int
    stride: int
    act: str
    se: bool


@dataclass(frozen=True)
class Preset:
    """The fixed macro architecture around the searchable blocks (see the module docstring)."""

    stem_channels: int
    stem_stride: int
    first_block_channels: int
    stages: tuple[StageSpec, ...]
    final_expand: int
    feature_mix: int
    dropout: float
    num_classes: int


_SE_STAGES = (False, True, False, True, True)
_ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
PRESETS: dict[str, Preset] = {
    "full": Preset(
        stem_channels=16,
        stem_stride=2,
        first_block_channels=16,
        stages=tuple(
            StageSpec(c, s, a, se)
            for c, s, a, se in zip((24, 40, 80, 112, 160), (2, 2, 2, 1, 2), _ACTS, _SE_STAGES)
        ),
        final_expand=960,
        feature_mix=1280,
        dropout=0.1,
        num_classes=1000,
    ),
    "small": Preset(
        stem_channels=16,
        stem_stride=1,
        first_block_channels=16,
        stages=tuple(
            StageSpec(c, s, a, se)
            for c, s, a, se in zip((16, 24, 40, 48, 64), (2, 2, 2, 1, 2), _ACTS, _SE_STAGES)
        ),
        final_expand=384,
        feature_mix=256,
        dropout=0.0,
        num_classes=10,
    ),
}


@dataclass(frozen=True)
class BlockPlan:
    """One MBConv block of a built network, channels after the width multiplier."""

    c_in: int
    c_out: int
    kernel: int
    expansion: int
    hidden: int
    stride: int
    act: str
    se_channels: int  # 0: no squeeze-excite

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out


@dataclass(frozen=True)
class NetworkPlan:
    """Every layer width of one sub-network; the torch builder and the cheap metrics share it."""

    in_channels: int
    resolution: int
    stem_channels: int
    stem_stride: int
    first_block: BlockPlan
    blocks: tuple[BlockPlan, ...]
    final_expand: int
    feature_mix: int
    dropout: float
    num_classes: int


def _block_plan(
    c_in: int, c_out: int, kernel: int, expansion: int, stride: int, act: str, se: bool
) -> BlockPlan:
    hidden = make_divisible(round(c_in * expansion))
    return BlockPlan(
        c_in,
        c_out,
        kernel,
        expansion,
        hidden,
        stride,
        act,
        make_divisible(hidden // 4) if se else 0,
    )


def network_plan(preset: Preset, arch: Arch, *, in_channels: int, num_classes: int) -> NetworkPlan:
    """The plan of ``arch``'s sub-network on ``preset``; ``arch`` must already be validated (as
    :meth:`hwnas.spaces.mbv3.MBV3Space.plan` does before calling this)."""
    w = arch["w"]
    stem = make_divisible(preset.stem_channels * w)
    first_out = make_divisible(preset.first_block_channels * w)
    first = _block_plan(stem, first_out, 3, 1, 1, "relu", False)
    blocks = []
    c_in = first_out
    for s, (stage, d) in enumerate(zip(preset.stages, arch["d"])):
        c_out = make_divisible(stage.width * w)
        for j in range(d):
            i = s * MBV3_MAX_DEPTH + j
            stride = stage.stride if j == 0 else 1
            blocks.append(
                _block_plan(c_in, c_out, arch["ks"][i], arch["e"][i], stride, stage.act, stage.se)
            )
            c_in = c_out
    return NetworkPlan(
        in_channels=in_channels,
        resolution=arch["r"],
        stem_channels=stem,
        stem_stride=preset.stem_stride,
        first_block=first,
        blocks=tuple(blocks),
        final_expand=make_divisible(preset.final_expand * w),
        feature_mix=make_divisible(preset.feature_mix * w),
        dropout=preset.dropout,
        num_classes=num_classes,
    )


def block_network(plan: NetworkPlan) -> BlockNetwork:
    """The :class:`~hwnas.spaces.hooks.BlockNetwork` of a sub-network's plan, what the closed-form
    MCU memory model reads (:meth:`MBV3Space.mcu_network`); layer names follow
    :mod:`hwnas.spaces.mbv3_torch` (``first_block``, ``blocks.{i}``)."""
    if not isinstance(plan, NetworkPlan):
        raise ConfigError(
            f"block_network takes a NetworkPlan (MBV3Space.plan(arch)), got {type(plan).__name__}"
        )
    return BlockNetwork(
        in_channels=plan.in_channels,
        resolution=plan.resolution,
        stem_channels=plan.stem_channels,
        stem_stride=plan.stem_stride,
        blocks=(
            ("first_block", plan.first_block),
            *((f"blocks.{i}", b) for i, b in enumerate(plan.blocks)),
        ),
        final_expand=plan.final_expand,
        feature_mix=plan.feature_mix,
        num_classes=plan.num_classes,
    )


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def plan_params_macs(plan: NetworkPlan) -> tuple[int, int]:
    """Parameters (BatchNorm's weight and bias included) and conv/linear multiply-accumulates of
    ``plan`` at its resolution; BatchNorm, activations, pooling and additions cost no MACs (the
    convention of :mod:`hwnas.spaces.nb201_cost`, half of ``torch.utils.flop_counter``'s count)."""
    params = macs = 0
    size = plan.resolution

    def conv(c_in: int, c_out: int, kernel: int, stride: int, groups: int, bias: bool) -> None:
        nonlocal params, macs, size
        size = _conv_out(size, kernel, stride)
        weights = c_out * (c_in // groups) * kernel * kernel
        params += weights + (c_out if bias else 0)
        macs += weights * size * size

    def block(b: BlockPlan) -> None:
        nonlocal params, macs
        if b.expansion != 1:
            conv(b.c_in, b.hidden, 1, 1, 1, False)
            params += 2 * b.hidden
        conv(b.hidden, b.hidden, b.kernel, b.stride, b.hidden, False)
        params += 2 * b.hidden
        if b.se_channels:
            pair = 2 * b.hidden * b.se_channels  # reduce and expand 1x1 convs on the pooled map
            params += pair + b.se_channels + b.hidden
            macs += pair
        conv(b.hidden, b.c_out, 1, 1, 1, False)
        params += 2 * b.c_out

    conv(plan.in_channels, plan.stem_channels, 3, plan.stem_stride, 1, False)
    params += 2 * plan.stem_channels
    for b in (plan.first_block, *plan.blocks):
        block(b)
    last = plan.blocks[-1].c_out
    conv(last, plan.final_expand, 1, 1, 1, False)
    params += 2 * plan.final_expand
    size = 1  # global pooling
    conv(plan.final_expand, plan.feature_mix, 1, 1, 1, False)
    conv(plan.feature_mix, plan.num_classes, 1, 1, 1, True)  # the classifier, as a 1x1 conv
    return params, macs
