"""The NB201 cell space relaxed: every edge of the cell a mixture of its five operations.

The search network follows NAS-Bench-201's (Dong & Yang, ICLR 2020): a 3x3 stem, three stages of
``cells`` cells at ``C``, ``2C`` and ``4C`` channels with ResNet reduction blocks between them, one
cell structure shared by every cell, so the architecture is 6 slots (edges) of 5 choices. Search
cells use BatchNorm without affine parameters, as DARTS and NB201's search code do.

What an edge computes is decided per forward pass by an :class:`ArchSample`: the weight of each
choice and which choices to compute (all of them for a softmax mixture, one for GDAS, one or two
for ProxylessNAS's binarized paths). PC-DARTS's partial channels (Xu et al., ICLR 2020) send
``1/K`` of an edge's channels through the mixture, pass the rest by, then shuffle the channels in
``K`` groups; its edge normalisation weights each edge into a node by a softmax over that node's
incoming edges.

Example:
    >>> import torch
    >>> net = RelaxedNB201(channels=4, cells=1, num_classes=3, in_channels=1)
    >>> w = [torch.full((5,), 0.2) for _ in range(6)]
    >>> net(torch.zeros(2, 1, 8, 8), ArchSample(weights=w)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hwnas.spaces.nb201 import NB201_EDGES
from hwnas.spaces.nb201_cost import NB201_OPS
from hwnas.spaces.nb201_torch import _ResNetReduction

SLOT_NAMES: tuple[str, ...] = tuple(f"edge {src}->{dst}" for dst, src in NB201_EDGES)
PARAMETER_FREE: frozenset[str] = frozenset({"none", "skip_connect", "avg_pool_3x3"})


@dataclass
class ArchSample:
    """What each edge computes in one forward pass.

    Attributes:
        weights: per slot, one weight per choice (a tensor that may carry gradients).
        active: per slot, the choices to compute; None computes every choice.
        edge_norm: per slot, a weight multiplying the edge's output (PC-DARTS); None for 1.
        inactive_grad: with ``active``, add each inactive choice's weight (a scalar whose value
            is 0) to the slot's output, so that every weight of the slot gets a gradient (the
            sum of the output's gradient), not the active ones alone. GDAS's released code
            does this (Dong & Yang, NB201 code, ``forward_gdas``); the output is unchanged.
    """

    weights: Sequence[torch.Tensor]
    active: Sequence[Sequence[int]] | None = None
    edge_norm: Sequence[torch.Tensor] | None = None
    inactive_grad: bool = False


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _search_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    kernel = 3 if name == "nor_conv_3x3" else 1
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(channels, affine=False),
    )


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``x`` from ``groups`` groups (ShuffleNet; used by PC-DARTS)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def weighted_sum(
    ops: nn.ModuleList,
    x: torch.Tensor,
    weights: torch.Tensor,
    active: Sequence[int] | None,
    inactive_grad: bool = False,
) -> torch.Tensor:
    """``sum_j weights[j] * ops[j](x)`` over ``active`` (every op when None): one mixed slot.
    With ``inactive_grad``, plus ``weights[j]`` of every inactive ``j`` (see
    :class:`ArchSample`)."""
    chosen = range(len(ops)) if active is None else active
    out: torch.Tensor | None = None
    for j in chosen:
        term = weights[j] * ops[j](x)
        out = term if out is None else out + term
    assert out is not None
    return out + inactive_sum(weights, active) if inactive_grad else out


def inactive_sum(weights: torch.Tensor, active: Sequence[int] | None) -> torch.Tensor | float:
    """The sum of the weights of the choices not in ``active`` (0 when every choice is): added
    to a slot's output, it gives each of them a gradient (see :class:`ArchSample`)."""
    if active is None:
        return 0.0
    rest = [weights[j] for j in range(len(weights)) if j not in active]
    return torch.stack(rest).sum() if rest else 0.0


class MixedEdge(nn.Module):
    """One edge: the weighted sum of its chosen operations (on ``1/partial_k`` of the channels)."""

    def __init__(self, channels: int, partial_k: int = 1) -> None:
        super().__init__()
        self.partial_k = partial_k
        width = channels // partial_k
        self.ops = nn.ModuleList(_search_op(name, width) for name in NB201_OPS)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        active: Sequence[int] | None,
        inactive_grad: bool = False,
    ) -> torch.Tensor:
        k = self.partial_k
        part = x if k == 1 else x[:, : x.shape[1] // k]
        out = weighted_sum(self.ops, part, weights, active, inactive_grad)
        if k == 1:
            return out
        return channel_shuffle(torch.cat([out, x[:, x.shape[1] // k :]], dim=1), k)


class _SearchCell(nn.Module):
    def __init__(self, channels: int, partial_k: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels, partial_k) for _ in NB201_EDGES)

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            total: torch.Tensor | None = None
            for i, (t, src) in enumerate(NB201_EDGES):
                if t != target:
                    continue
                active = None if sample.active is None else sample.active[i]
                out = self.edges[i](nodes[src], sample.weights[i], active, sample.inactive_grad)
                if sample.edge_norm is not None:
                    out = sample.edge_norm[i] * out
                total = out if total is None else total + out
            assert total is not None
            nodes.append(total)
        return nodes[3]


class RelaxedNB201(nn.Module):
    """The NB201 search network; the architecture weights live outside it (see ArchSample)."""

    def __init__(
        self,
        *,
        channels: int = 16,
        cells: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        partial_k: int = 1,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        blocks: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                blocks.append(_ResNetReduction(c, 2 * c))
                c *= 2
            blocks.extend(_SearchCell(c, partial_k) for _ in range(cells))
        self.blocks = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        out = self.stem(x)
        for block in self.blocks:
            out = block(out, sample) if isinstance(block, _SearchCell) else block(out)
        out = self.lastact(out)
        return self.classifier(torch.flatten(self.pool(out), 1))
