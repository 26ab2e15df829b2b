"""PyTorch builder for the standard NAS-Bench-201 network (Dong & Yang, ICLR 2020).

Macro skeleton (the benchmark's published training network): a 3x3 stem conv + BN, three stages
of ``N`` cells at ``C``, ``2C`` and ``4C`` channels separated by ResNet basic-block reduction
cells (stride-2 3x3 ReLU-Conv-BN, 3x3 ReLU-Conv-BN, shortcut 2x2 average pool + 1x1 conv), then
BN + ReLU, global average pooling and a linear classifier. Each cell has 4 nodes; node ``i`` is
the sum of the 6 edge operations from its predecessors.

The parameter count equals :func:`hwnas.spaces.nb201_cost.nb201_params_flops` exactly, and the
FLOPs that ``torch.utils.flop_counter`` counts are twice its ``flops_m`` (MACs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.spaces.nb201 import NB201_EDGES, NB201_OPS


def _ops_of(arch_or_ops: Any) -> list[str]:
    """The 6 op names of an arch dict ``{"ops": [...]}`` or of a list of names."""
    ops = arch_or_ops.get("ops") if isinstance(arch_or_ops, dict) else arch_or_ops
    if isinstance(ops, str) or not isinstance(ops, Sequence) or len(ops) != len(NB201_EDGES):
        raise ConfigError(
            f"nb201: expected an arch dict {{'ops': [...]}} or a list of 6 op names, "
            f"got {arch_or_ops!r}"
        )
    for op in ops:
        if op not in NB201_OPS:
            raise ConfigError(f"nb201: unknown op {op!r}; allowed: {', '.join(NB201_OPS)}")
    return list(ops)


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _edge_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(channels, channels, 3, 1)
    # avg_pool_3x3: NB201 excludes the zero padding from the average.
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class _Cell(nn.Module):
    """A 4-node NB201 cell; ``ops`` follow the canonical-string edge order."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_edge_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            total: torch.Tensor | None = None
            for i, (t, src) in enumerate(NB201_EDGES):
                if t == target:
                    out = self.edges[i](nodes[src])
                    total = out if total is None else total + out
            assert total is not None
            nodes.append(total)
        return nodes[3]


class _ResNetReduction(nn.Module):
    """The basic residual block NB201 puts between stages (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """The NB201 evaluation network for one cell; see the module docstring."""

    def __init__(
        self, ops: Sequence[str], *, C: int, N: int, num_classes: int, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C)
        )
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                layers.append(_ResNetReduction(channels, 2 * channels))
                channels *= 2
            layers.extend(_Cell(ops, channels) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(out), 1))


def build_nb201_network(
    arch_or_ops: Any, *, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3
) -> nn.Module:
    """Build the standard NAS-Bench-201 network for one cell.

    Args:
        arch_or_ops: an arch dict ``{"ops": [6 op names]}`` or the list itself, in canonical-string
            edge order (0->1), (0->2), (1->2), (0->3), (1->3), (2->3).
        C: channels of the first stage (16 in the benchmark).
        N: cells per stage (5 in the benchmark).
        num_classes: classifier outputs (10, 100 or 120 in the benchmark).
        in_channels: channels of the input images (3 in the benchmark).

    Returns:
        An ``nn.Module`` mapping ``(B, 3, H, W)`` images to ``(B, num_classes)`` logits.

    Raises:
        ConfigError: an op name, the op count or a size option is invalid.

    Example:
        >>> net = build_nb201_network(["nor_conv_3x3"] * 6)
        >>> sum(p.numel() for p in net.parameters())
        1531546
    """
    ops = _ops_of(arch_or_ops)
    for name, value in (
        ("C", C),
        ("N", N),
        ("num_classes", num_classes),
        ("in_channels", in_channels),
    ):
        if value < 1:
            raise ConfigError(f"nb201: {name} must be >= 1, got {value}")
    return NB201Network(ops, C=C, N=N, num_classes=num_classes, in_channels=in_channels)
