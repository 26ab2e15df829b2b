"""Once-for-All's elastic MobileNetV3 relaxed: every block a mixture of its 9 candidate MBConv
blocks, every stage a mixture of its depths.

Block ``b`` computes ``sum_c w[b][c] * block_c(x)`` over the 9 (kernel, expansion) pairs
``k3e3 .. k7e6``, as FBNet's supernet does for its layers (Wu et al., CVPR 2019). Depth is
relaxed as in TAS (Dong & Yang, NeurIPS 2019) and FBNetV2's depth search: a stage's output is
``sum_d w_depth[d] * (output after its block d)`` over the depths 2, 3, 4, so its first two
blocks always run. Which depths and candidates run in a forward pass is the
:class:`~hwnas.oneshot.relax.nb201_net.ArchSample`'s ``active`` choice: one depth and one block
per slot for GDAS or a ProxylessNAS weight step, and only the blocks up to the deepest active
depth are computed.

Candidates are the very modules :mod:`hwnas.spaces.mbv3_torch` builds: candidate ``c`` of block
``b`` is block ``b`` of the standalone network whose every block is ``c`` (at full depth), and
the stem, first block and head are that network's. A one-hot sample therefore computes exactly
the standalone network of the derived architecture (its ``blocks.{i}`` are the active blocks in
order). The resolution and width multiplier are fixed for a search; inputs of another size are
resized bilinearly first, as the ``train`` evaluator and the supernet do.

The ``partial`` mode (PC-DARTS's partial channels) is not offered: the blocks are a chain whose
width and stride change, with squeeze-excite and residuals inside, not edges of a cell between
same-shaped nodes (the reason FBNet's relaxation gives too).

Example:
    >>> import torch
    >>> net = RelaxedMBV3(preset="small", resolution=8, in_channels=1, num_classes=3)
    >>> w = [torch.full((9,), 1 / 9)] * 20 + [torch.full((3,), 1 / 3)] * 5
    >>> net(torch.zeros(2, 1, 8, 8), ArchSample(weights=w)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hwnas.errors import ConfigError
from hwnas.oneshot.relax.nb201_net import ArchSample, inactive_sum, weighted_sum
from hwnas.spaces.mbv3_plan import (
    MBV3_BLOCKS,
    MBV3_DEPTHS,
    MBV3_EXPANSIONS,
    MBV3_KERNELS,
    MBV3_MAX_DEPTH,
    MBV3_STAGES,
    PRESETS,
    network_plan,
)
from hwnas.spaces.mbv3_torch import MBV3Network

# (kernel, expansion) of each block choice, kernel first: k3e3, k3e4, k3e6, k5e3, ..., k7e6
BLOCK_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (k, e) for k in MBV3_KERNELS for e in MBV3_EXPANSIONS
)


def uniform_arch(kernel: int, expansion: int, resolution: int, width: float) -> dict:
    """The full-depth architecture whose every block is ``k<kernel>e<expansion>``."""
    return {
        "ks": [kernel] * MBV3_BLOCKS,
        "e": [expansion] * MBV3_BLOCKS,
        "d": [MBV3_MAX_DEPTH] * MBV3_STAGES,
        "r": resolution,
        "w": width,
    }


class MixedBlock(nn.Module):
    """One block: the weighted sum of its chosen candidates (all 9 held)."""

    def __init__(self, candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(candidates)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        active: Sequence[int] | None,
        inactive_grad: bool = False,
    ) -> torch.Tensor:
        return weighted_sum(self.ops, x, weights, active, inactive_grad)


class RelaxedMBV3(nn.Module):
    """The mbv3 search network at one resolution and width; the architecture weights live
    outside it: an :class:`ArchSample` with 20 block slots (9 choices, in
    :data:`BLOCK_PAIRS` order) then 5 depth slots (the depths 2, 3, 4)."""

    def __init__(
        self,
        *,
        preset: str = "small",
        resolution: int,
        width: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise ConfigError(
                f"relaxed mbv3: unknown preset {preset!r}; use one of {list(PRESETS)}"
            )
        for name, value in (
            ("resolution", resolution),
            ("in_channels", in_channels),
            ("num_classes", num_classes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"relaxed mbv3: {name} must be a whole number >= 1, got {value!r}"
                )
        nets = [
            MBV3Network(
                network_plan(
                    PRESETS[preset],
                    uniform_arch(k, e, resolution, float(width)),
                    in_channels=in_channels,
                    num_classes=num_classes,
                )
            )
            for k, e in BLOCK_PAIRS
        ]
        base = nets[0]
        self.resolution = resolution
        self.stem, self.first_block = base.stem, base.first_block
        self.blocks = nn.ModuleList(
            MixedBlock([n.blocks[b] for n in nets]) for b in range(MBV3_BLOCKS)
        )
        self.final_expand, self.pool = base.final_expand, base.pool
        self.feature_mix, self.dropout = base.feature_mix, base.dropout
        self.classifier = base.classifier

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        r = self.resolution
        if tuple(x.shape[-2:]) != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        x = self.first_block(self.stem(x))
        for s in range(MBV3_STAGES):
            x = self._stage(x, s, sample)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))

    def _stage(self, x: torch.Tensor, s: int, sample: ArchSample) -> torch.Tensor:
        slot = MBV3_BLOCKS + s
        depth_w = sample.weights[slot]
        depths = range(len(MBV3_DEPTHS)) if sample.active is None else sample.active[slot]
        deepest = max(MBV3_DEPTHS[i] for i in depths)
        out: torch.Tensor | None = None
        for j in range(deepest):
            b = s * MBV3_MAX_DEPTH + j
            active = None if sample.active is None else sample.active[b]
            x = self.blocks[b](x, sample.weights[b], active, sample.inactive_grad)
            if j + 1 in MBV3_DEPTHS and MBV3_DEPTHS.index(j + 1) in depths:
                term = depth_w[MBV3_DEPTHS.index(j + 1)] * x
                out = term if out is None else out + term
        assert out is not None
        if sample.inactive_grad and sample.active is not None:
            out = out + inactive_sum(depth_w, sample.active[slot])
        return out
