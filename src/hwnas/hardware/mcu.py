"""Closed-form MCUNet memory model of inverted-residual block networks (Lin et al., NeurIPS 2020).

Peak SRAM and flash of a MobileNet-like network, from its layer widths alone (no tracing, no
PyTorch): thousands of architectures per second, for search-space optimisation
(:mod:`hwnas.hardware.tinynas`) and the ``memory`` evaluator on the ``mbv3`` space.

**Peak SRAM** follows MCUNet's ``count_peak_activation_size`` (mit-han-lab/mcunet,
``mcunet/utils/pytorch_utils.py``): layers run one at a time, batch 1, and a layer needs its input
and its output activations; the peak is the largest layer. Inside a block with a residual
connection the block input stays alive beside the depthwise conv (and the squeeze-excite) until
the add. ``residual_until_add=True`` (default) keeps it beside the projection conv too, as a
runtime that writes the projection into a fresh buffer and then adds must; this equals the
traced schedule of :mod:`hwnas.hardware.memory` exactly. ``False`` is MCUNet's code, which leaves it
out there (the projection accumulates onto the residual in place). Beyond MCUNet's code, which
counts convs and linears only, the global pool and the squeeze-excite are layers too (the gated
map, its pooled vector and the reduced vector are alive at once); neither is ever the peak of
a real network, so MCUNet's figures are unchanged (MobileNetV2-w0.35 at 144 px: 311,040 B,
the "Act 303kB" of MCUNet's model zoo; TinyEngine measured 308 kB on an STM32F746).
Not modelled: in-place depthwise convolution and patch-based inference (MCUNetV2), operator
fusion beyond BN and activations, and the runtime's own buffers (im2col, code, stack).

**Flash**: conv and linear weights at ``weight_bits``; with ``fold_bn`` (default) each
BatchNorm is folded into the conv before it, which gains one bias per output channel; that bias,
and the real biases (squeeze-excite convs, classifier), are stored at ``bias_bits`` (default 32:
TinyEngine and TFLite Micro keep int32 biases). Per-channel requantisation scales are not
modelled. Unfolded BatchNorms (``fold_bn=False``) cost a scale and a shift per channel at
``weight_bits``. With ``bias_bits=weight_bits`` the figure equals the traced model's.

Sizes: ``act_bits`` per activation (default 8, int8); kB = 1024 bytes.

The model reads a :class:`~hwnas.spaces.hooks.BlockNetwork`; a space gives its architectures in
those terms through :meth:`~hwnas.spaces.base.SearchSpace.mcu_network` (``mbv3``: the
conversion of its plans, :func:`~hwnas.spaces.mbv3_plan.block_network`).

Example:
    >>> r = mcu_memory(mobilenet_v2(0.35, 144))
    >>> r.peak_sram_bytes, r.peak_layer
    (311040, 'blocks.1.depthwise')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwnas.errors import ConfigError
from hwnas.spaces.hooks import BlockNetwork
from hwnas.spaces.mbv3_plan import BlockPlan, NetworkPlan, block_network, make_divisible

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch
    from hwnas.spaces.mbv3 import MBV3Space

KB = 1024

# MobileNetV2 (Sandler et al., CVPR 2018), Table 2: expansion t, channels c, repeats n, stride s.
MOBILENET_V2_TABLE: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@dataclass(frozen=True)
class McuMemory:
    """Peak SRAM and flash of one network; ``layers`` has the bytes each layer needs, in order."""

    peak_sram_bytes: int
    flash_bytes: int
    peak_layer: str
    layers: tuple[tuple[str, int], ...] = field(repr=False)

    @property
    def peak_sram_kb(self) -> float:
        return self.peak_sram_bytes / KB

    @property
    def flash_kb(self) -> float:
        return self.flash_bytes / KB

    def metrics(self) -> dict[str, float]:
        """``peak_sram_kb`` and ``flash_kb``, the metric names studies use."""
        return {"peak_sram_kb": self.peak_sram_kb, "flash_kb": self.flash_kb}


def mobilenet_v2(
    width: float = 1.0,
    resolution: int = 224,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    scale_last_channel: bool = False,
) -> BlockNetwork:
    """MobileNetV2 (Sandler et al., CVPR 2018) at width multiplier ``width`` as a
    :class:`BlockNetwork`: stem 32 channels stride 2, :data:`MOBILENET_V2_TABLE`, a 1x1 conv to
    1280, pool, classifier; every width ``make_divisible(c * width, 8)``, hidden widths
    ``c_in * t``. Blocks are named ``blocks.0`` .. ``blocks.16``.

    Args:
        width: the width multiplier.
        resolution: input height and width in pixels.
        num_classes: classifier outputs.
        in_channels: image channels.
        scale_last_channel: scale the 1280 as well. False (default) is the paper and
            torchvision (1280 is not scaled below width 1.0); MCUNet's model-zoo
            ``mbv2-w0.35`` scales it (448 channels, 0.75M parameters). The peak is the same.

    Example:
        >>> mcu_memory(mobilenet_v2(1.0, 224)).peak_sram_bytes
        1505280
    """
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or not math.isfinite(width)
        or width <= 0
    ):
        raise ConfigError(f"mobilenet_v2: width must be a number > 0, got {width!r}")
    for name, value in (
        ("resolution", resolution),
        ("num_classes", num_classes),
        ("in_channels", in_channels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"mobilenet_v2: {name} must be a whole number >= 1, got {value!r}")
    c_in = make_divisible(32 * width)
    blocks: list[tuple[str, BlockPlan]] = []
    for t, c, n, s in MOBILENET_V2_TABLE:
        c_out = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            plan = BlockPlan(c_in, c_out, 3, t, c_in * t, stride, "relu6", 0)
            blocks.append((f"blocks.{len(blocks)}", plan))
            c_in = c_out
    last = make_divisible(1280 * width) if scale_last_channel or width > 1.0 else 1280
    return BlockNetwork(
        in_channels=in_channels,
        resolution=resolution,
        stem_channels=make_divisible(32 * width),
        stem_stride=2,
        blocks=tuple(blocks),
        final_expand=last,
        feature_mix=0,
        num_classes=num_classes,
    )


def _check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ConfigError(f"{name} must be an integer in 1..32, got {value!r}")
    return value


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def mcu_memory(
    net: BlockNetwork | NetworkPlan,
    *,
    act_bits: int = 8,
    weight_bits: int = 8,
    bias_bits: int = 32,
    fold_bn: bool = True,
    residual_until_add: bool = True,
) -> McuMemory:
    """Peak SRAM and flash of a block network by MCUNet's count (see the module docstring).

    Args:
        net: a :class:`BlockNetwork`, or an ``mbv3`` plan (:meth:`MBV3Space.plan`).
        act_bits: bits per activation value.
        weight_bits: bits per conv / linear weight (and unfolded BN scale and shift).
        bias_bits: bits per bias, the ones folded BN gives included (32: int32 biases).
        fold_bn: fold each BatchNorm into the conv before it.
        residual_until_add: keep a block's input alive beside its projection conv (the traced
            schedule); False is MCUNet's count, which leaves it out there.

    Returns:
        An :class:`McuMemory`; kB = 1024 bytes.

    Raises:
        ConfigError: a bit width or flag is invalid, or ``net`` is neither kind of plan.

    Example:
        >>> mcu_memory(mobilenet_v2(0.5, 160)).peak_sram_bytes
        384000
    """
    if isinstance(net, NetworkPlan):
        net = block_network(net)
    elif not isinstance(net, BlockNetwork):
        raise ConfigError(
            f"mcu_memory takes a BlockNetwork or an mbv3 NetworkPlan, got {type(net).__name__}"
        )
    act_bits = _check_bits("act_bits", act_bits)
    weight_bits = _check_bits("weight_bits", weight_bits)
    bias_bits = _check_bits("bias_bits", bias_bits)
    for name, flag in (("fold_bn", fold_bn), ("residual_until_add", residual_until_add)):
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, got {flag!r}")

    def act(channels: int, size: int) -> int:  # bytes of one activation tensor
        return -(-channels * size * size * act_bits // 8)

    weights = biases = 0  # counts of values stored at weight_bits and at bias_bits

    def conv(c_in: int, c_out: int, kernel: int, groups: int, bn: bool, bias: bool) -> None:
        nonlocal weights, biases
        weights += c_out * (c_in // groups) * kernel * kernel
        if bn and fold_bn:
            biases += c_out
        elif bn:
            weights += 2 * c_out
        if bias:
            biases += c_out

    layers: list[tuple[str, int]] = []
    size = _conv_out(net.resolution, 3, net.stem_stride)
    layers.append(("stem", act(net.in_channels, net.resolution) + act(net.stem_channels, size)))
    conv(net.in_channels, net.stem_channels, 3, 1, True, False)
    for name, b in net.blocks:
        x = act(b.c_in, size)
        res = x if b.residual else 0
        if b.expansion != 1:
            hidden_in = act(b.hidden, size)
            layers.append((f"{name}.expand", x + hidden_in))
            conv(b.c_in, b.hidden, 1, 1, True, False)
            beside = res  # the block input waits beside the depthwise conv
        else:
            hidden_in, beside = x, 0  # the depthwise input is the block input itself
        size = _conv_out(size, b.kernel, b.stride)
        hidden_out = act(b.hidden, size)
        layers.append((f"{name}.depthwise", hidden_in + hidden_out + beside))
        conv(b.hidden, b.hidden, b.kernel, b.hidden, True, False)
        if b.se_channels:
            pooled = act(b.hidden, 1) + act(b.se_channels, 1)
            layers.append((f"{name}.se", hidden_out + pooled + res))
            conv(b.hidden, b.se_channels, 1, 1, False, True)
            conv(b.se_channels, b.hidden, 1, 1, False, True)
        out = act(b.c_out, size)
        layers.append((f"{name}.project", hidden_out + out + (res if residual_until_add else 0)))
        conv(b.hidden, b.c_out, 1, 1, True, False)
    last = net.blocks[-1][1].c_out if net.blocks else net.stem_channels
    final = act(net.final_expand, size)
    layers.append(("final_expand", act(last, size) + final))
    conv(last, net.final_expand, 1, 1, True, False)
    pooled = act(net.final_expand, 1)
    layers.append(("pool", final + pooled))
    features = net.final_expand
    if net.feature_mix:
        layers.append(("feature_mix", pooled + act(net.feature_mix, 1)))
        conv(net.final_expand, net.feature_mix, 1, 1, False, False)
        features = net.feature_mix
    layers.append(("classifier", act(features, 1) + act(net.num_classes, 1)))
    conv(features, net.num_classes, 1, 1, False, True)
    peak_name, peak = max(layers, key=lambda layer: layer[1])
    return McuMemory(
        peak_sram_bytes=peak,
        flash_bytes=-(-(weights * weight_bits + biases * bias_bits) // 8),
        peak_layer=peak_name,
        layers=tuple(layers),
    )


def mbv3_memory(
    space: MBV3Space,
    arch: Arch,
    *,
    act_bits: int = 8,
    weight_bits: int = 8,
    bias_bits: int = 32,
    fold_bn: bool = True,
    residual_until_add: bool = True,
) -> McuMemory:
    """:func:`mcu_memory` of ``arch``'s sub-network, at its own resolution ``arch["r"]``.

    Example:
        >>> from hwnas.spaces.mbv3 import MBV3Space
        >>> space = MBV3Space(preset="small", input_size=32)
        >>> arch = space.from_string("r32-w1.0|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3")
        >>> r = mbv3_memory(space, arch)
        >>> r.peak_layer, r.peak_sram_bytes  # input 16 x 32 x 32 + expanded 48 x 32 x 32
        ('blocks.0.expand', 65536)
    """
    return mcu_memory(
        space.plan(arch),
        act_bits=act_bits,
        weight_bits=weight_bits,
        bias_bits=bias_bits,
        fold_bn=fold_bn,
        residual_until_add=residual_until_add,
    )
