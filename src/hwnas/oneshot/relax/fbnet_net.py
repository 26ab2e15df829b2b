"""The FBNet block space relaxed: every one of the 22 layers a mixture of its 9 candidate blocks.

This is FBNet's supernet (Wu et al., CVPR 2019): layer ``i`` computes
``sum_j w[i][j] * block_j(x)`` with ``w`` drawn from the architecture distribution (a
Gumbel-softmax sample for FBNet, ``softmax(alpha)`` for DARTS, one block for GDAS). The macro
architecture is HW-NAS-Bench's CIFAR FBNet network, built from the same definitions as the
standalone network (:mod:`hwnas.spaces.fbnet_cost`'s stage plan and
:func:`hwnas.spaces.fbnet_torch.fbnet_block`), so each candidate block here has exactly the
modules of the block a derived architecture trains, and a one-hot sample computes that network.
``skip`` keeps fbnet_torch's meaning: the identity where the shape is kept, a strided 1x1 conv +
BN + ReLU where it changes (the first layer of six stages), so it has weights there.

Differences from the NB201 search network, on purpose:

* the candidate blocks' BatchNorm keeps its affine parameters, as fbnet_torch builds them (and
  as FBNet's supernet does); DARTS and NB201's search cells use ``affine=False``;
* the settings' ``channels`` and ``cells`` do not apply (the macro is fixed), and neither does
  PC-DARTS's partial channels: the layers are a chain whose width and stride change, not edges
  of a cell between same-shaped nodes, so the ``partial`` mode is not offered.

The stem takes any ``in_channels`` and the head any ``num_classes``; global pooling lets any
input size through (three stride-2 layers: 8x8 inputs reach 1x1).

Example:
    >>> import torch
    >>> net = RelaxedFBNet(num_classes=3, in_channels=1)
    >>> w = [torch.full((9,), 1 / 9) for _ in range(22)]
    >>> net(torch.zeros(2, 1, 8, 8), ArchSample(weights=w)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.relax.nb201_net import ArchSample, weighted_sum
from hwnas.spaces.fbnet_cost import (
    FBNET_BLOCKS,
    FBNET_HEAD_CHANNELS,
    FBNET_LAYERS,
    FBNET_STAGES,
    FBNET_STEM_CHANNELS,
    fbnet_layer_plan,
)
from hwnas.spaces.fbnet_torch import _conv_bn, fbnet_block

SLOT_NAMES: tuple[str, ...] = tuple(f"layer {i}" for i in range(FBNET_LAYERS))
# "skip" is weight-free only where it is the identity; it is the choice a collapse runs toward.
PARAMETER_FREE: frozenset[str] = frozenset({"skip"})


class MixedLayer(nn.Module):
    """One layer: the weighted sum of its chosen candidate blocks (all 9 held)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(fbnet_block(op, c_in, c_out, stride) for op in FBNET_BLOCKS)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        active: Sequence[int] | None,
        inactive_grad: bool = False,
    ) -> torch.Tensor:
        return weighted_sum(self.ops, x, weights, active, inactive_grad)


class RelaxedFBNet(nn.Module):
    """FBNet's supernet on HW-NAS-Bench's CIFAR macro; the architecture weights live outside it
    (see :class:`~hwnas.oneshot.relax.nb201_net.ArchSample`, one slot per layer)."""

    def __init__(self, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"relaxed fbnet: {name} must be a whole number >= 1, got {value!r}"
                )
        self.stem = nn.Sequential(*_conv_bn(in_channels, FBNET_STEM_CHANNELS, 3))
        self.layers = nn.ModuleList(MixedLayer(*plan) for plan in fbnet_layer_plan())
        self.head = nn.Sequential(*_conv_bn(FBNET_STAGES[-1][0], FBNET_HEAD_CHANNELS, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(FBNET_HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        out = self.stem(x)
        for i, layer in enumerate(self.layers):
            active = None if sample.active is None else sample.active[i]
            out = layer(out, sample.weights[i], active, sample.inactive_grad)
        out = self.head(out)
        return self.classifier(torch.flatten(self.pool(out), 1))
