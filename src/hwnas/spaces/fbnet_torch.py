"""PyTorch builder for HW-NAS-Bench's CIFAR FBNet network (22 searchable layers).

The macro architecture (stem, stage channels and strides, block semantics, head) is defined once
in :mod:`hwnas.spaces.fbnet_cost` (``FBNET_STAGES``, ``FBNET_BLOCK_SPECS``, ...), taken from
HW-NAS-Bench's ``hw_nas_bench_api/fbnet_models/model_infer.py``, so the parameter count here equals
:func:`hwnas.spaces.fbnet_cost.fbnet_params_flops` exactly and ``torch.utils.flop_counter`` counts
twice its ``flops_m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.spaces.fbnet_cost import (
    FBNET_BLOCK_SPECS,
    FBNET_BLOCKS,
    FBNET_HEAD_CHANNELS,
    FBNET_LAYERS,
    FBNET_STAGES,
    FBNET_STEM_CHANNELS,
    fbnet_layer_plan,
)


def _ops_of(arch_or_ops: Any) -> list[str]:
    """The 22 block names of an arch dict ``{"ops": [...]}`` or of a list of names."""
    ops = arch_or_ops.get("ops") if isinstance(arch_or_ops, dict) else arch_or_ops
    if isinstance(ops, str) or not isinstance(ops, Sequence) or len(ops) != FBNET_LAYERS:
        raise ConfigError(
            f"fbnet: expected an arch dict {{'ops': [...]}} or a list of {FBNET_LAYERS} block "
            f"names, got {arch_or_ops!r}"
        )
    for i, op in enumerate(ops):
        if op not in FBNET_BLOCKS:
            raise ConfigError(
                f"fbnet: unknown block {op!r} at layer {i}; allowed: {', '.join(FBNET_BLOCKS)}"
            )
    return list(ops)


def _conv_bn(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1, relu: bool = True
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(
            c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class _ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet, Zhang et al., CVPR 2018)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class _InvertedResidual(nn.Module):
    def __init__(self, op: str, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        kernel, expansion, groups = FBNET_BLOCK_SPECS[op]
        hidden = c_in * expansion
        layers = _conv_bn(c_in, hidden, 1, groups=groups)
        if groups > 1:
            layers.append(_ChannelShuffle(groups))
        layers += _conv_bn(hidden, hidden, kernel, stride=stride, groups=hidden)
        layers += _conv_bn(hidden, c_out, 1, groups=groups, relu=False)
        self.body = nn.Sequential(*layers)
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def fbnet_block(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One FBNet layer's block ``op`` mapping ``c_in`` to ``c_out`` channels at ``stride``.

    ``skip`` is the identity where the shape is kept, else a strided 1x1 conv + BN + ReLU.
    Every other block is an inverted residual (see
    :data:`hwnas.spaces.fbnet_cost.FBNET_BLOCK_SPECS`).

    Example:
        >>> fbnet_block("skip", 16, 24, 1)(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 24, 8, 8])
    """
    if op not in FBNET_BLOCKS:
        raise ConfigError(f"fbnet: unknown block {op!r}; allowed: {', '.join(FBNET_BLOCKS)}")
    if op != "skip":
        return _InvertedResidual(op, c_in, c_out, stride)
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    # Where the shape changes, HW-NAS-Bench's "skip" is a strided 1x1 conv + BN + ReLU.
    return nn.Sequential(*_conv_bn(c_in, c_out, 1, stride=stride))


class FBNetNetwork(nn.Module):
    """HW-NAS-Bench's CIFAR FBNet network for one list of 22 blocks."""

    def __init__(self, ops: Sequence[str], *, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, FBNET_STEM_CHANNELS, 3))
        self.layers = nn.Sequential(
            *(fbnet_block(op, *plan) for op, plan in zip(ops, fbnet_layer_plan(), strict=True))
        )
        self.head = nn.Sequential(*_conv_bn(FBNET_STAGES[-1][0], FBNET_HEAD_CHANNELS, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(FBNET_HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.layers(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(out), 1))


def build_fbnet_network(
    arch_or_ops: Any, *, num_classes: int = 100, input_size: int = 32
) -> nn.Module:
    """Build HW-NAS-Bench's CIFAR FBNet network for 22 block choices.

    Args:
        arch_or_ops: an arch dict ``{"ops": [22 block names]}`` or the list itself.
        num_classes: classifier outputs (100 for the HW-NAS-Bench / HELP tables).
        input_size: the input side length the network is meant for; the network itself accepts
            any size (global pooling), the option is validated to match
            :func:`hwnas.spaces.fbnet_cost.fbnet_params_flops`.

    Returns:
        An ``nn.Module`` mapping ``(B, 3, H, W)`` images to ``(B, num_classes)`` logits.

    Raises:
        ConfigError: a block name, the block count or a size option is invalid.

    Example:
        >>> net = build_fbnet_network(["k3_e6"] * 22, num_classes=10)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    ops = _ops_of(arch_or_ops)
    for name, value in (("num_classes", num_classes), ("input_size", input_size)):
        if value < 1:
            raise ConfigError(f"fbnet: {name} must be >= 1, got {value}")
    return FBNetNetwork(ops, num_classes=num_classes)
