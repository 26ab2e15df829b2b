"""A weight-sharing supernet for the ``mbv3`` space: Once-for-All's ``OFAMobileNetV3`` (Cai et
al., ICLR 2020; mit-han-lab/once-for-all, ``ofa/imagenet_classification/elastic_nn/networks/
ofa_mbv3.py``), with the width multiplier made elastic too.

:class:`MBV3Supernet` holds the largest network of a space (every stage 4 blocks deep, kernel
7, expansion 6, the largest width) built from the elastic layers of
:mod:`hwnas.oneshot.dynamic`. :meth:`~MBV3Supernet.set_active` picks a sub-network; ``forward``
then runs only its blocks, kernels and channels. :meth:`~MBV3Supernet.extract` copies a
sub-network's weights into the standalone ``space.build_network(arch)`` module, whose eval-mode
outputs equal the supernet's. Module names follow :mod:`hwnas.spaces.mbv3`, with ``blocks.{i}``
numbered over all 20 block positions (``4 * stage + j``) rather than over the active blocks.

Every elastic dimension keeps the *first* channels, so channels that matter most should come
first: :meth:`~MBV3Supernet.sort_channels` reorders each block's expanded channels by the L1 norm
of the projection weights that read them (OFA's ``re_organize_middle_weights``) without
changing the largest network's function.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.dynamic import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, DynamicSE
from hwnas.spaces.base import Arch
from hwnas.spaces.mbv3 import (
    MBV3_DEPTHS,
    MBV3_EXPANSIONS,
    MBV3_KERNELS,
    MBV3_MAX_DEPTH,
    MBV3_STAGES,
    BlockPlan,
    MBV3Space,
    NetworkPlan,
    make_divisible,
)

_ACTS = {"relu": nn.ReLU, "hswish": nn.Hardswish}


def uniform_arch(
    space: MBV3Space, *, kernel: int, expansion: int, depth: int, largest: bool
) -> Arch:
    """The architecture with one kernel, expansion and depth everywhere, at the largest (or,
    with ``largest=False``, the smallest) resolution and width the space offers."""
    pick = max if largest else min
    return space.validate(
        {
            "ks": [kernel] * MBV3_STAGES * MBV3_MAX_DEPTH,
            "e": [expansion] * MBV3_STAGES * MBV3_MAX_DEPTH,
            "d": [depth] * MBV3_STAGES,
            "r": pick(space.resolutions),
            "w": pick(space.widths),
        }
    )


def largest_arch(space: MBV3Space) -> Arch:
    """Kernel 7, expansion 6, depth 4 everywhere; the largest resolution and width."""
    return uniform_arch(
        space,
        kernel=max(MBV3_KERNELS),
        expansion=max(MBV3_EXPANSIONS),
        depth=max(MBV3_DEPTHS),
        largest=True,
    )


def smallest_arch(space: MBV3Space) -> Arch:
    """Kernel 3, expansion 3, depth 2 everywhere; the smallest resolution and width."""
    return uniform_arch(
        space,
        kernel=min(MBV3_KERNELS),
        expansion=min(MBV3_EXPANSIONS),
        depth=min(MBV3_DEPTHS),
        largest=False,
    )


class _ConvBN(nn.Module):
    """``conv``, ``bn`` and an optional ``act``, named as the standalone network's layers."""

    def __init__(self, conv: DynamicConv2d, act: str | None) -> None:
        super().__init__()
        self.conv = conv
        self.bn = DynamicBatchNorm2d(conv.out_channels)
        self.act = _ACTS[act](inplace=True) if act is not None else None

    def forward(
        self, x: torch.Tensor, *, out_channels: int | None = None, kernel_size: int | None = None
    ) -> torch.Tensor:
        x = self.bn(self.conv(x, out_channels=out_channels, kernel_size=kernel_size))
        return x if self.act is None else self.act(x)


class _Block(nn.Module):
    """One elastic MBConv block (OFA's ``DynamicMBConvLayer``) at its largest width."""

    def __init__(self, big: BlockPlan, kernels: tuple[int, ...], has_expand: bool) -> None:
        super().__init__()
        self.expand: _ConvBN | None = None
        if has_expand:
            self.expand = _ConvBN(DynamicConv2d(big.c_in, big.hidden), big.act)
        self.depthwise = _ConvBN(
            DynamicConv2d(big.hidden, big.hidden, kernels, stride=big.stride, depthwise=True),
            big.act,
        )
        self.se = DynamicSE(big.hidden, big.se_channels) if big.se_channels else None
        self.project = _ConvBN(DynamicConv2d(big.hidden, big.c_out), None)

    def forward(self, x: torch.Tensor, plan: BlockPlan) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x, out_channels=plan.hidden)
        out = self.depthwise(out, kernel_size=plan.kernel)
        if self.se is not None:
            out = self.se(out, se_channels=plan.se_channels)
        out = self.project(out, out_channels=plan.c_out)
        return out + x if plan.residual else out


class _FeatureMix(nn.Module):
    """``conv`` (1x1, no BatchNorm, no bias) and ``act``, after global pooling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = DynamicConv2d(c_in, c_out)
        self.act = nn.Hardswish(inplace=True)

    def forward(self, x: torch.Tensor, *, out_channels: int) -> torch.Tensor:
        return self.act(self.conv(x, out_channels=out_channels))


class MBV3Supernet(nn.Module):
    """OFA's elastic MobileNetV3 for an ``mbv3`` space: every sub-network shares its weights.

    Args:
        space: the :class:`~hwnas.spaces.mbv3.MBV3Space` whose sub-networks it holds.
        seed: seeds the initial weights (OFA's ``he_fout`` for convs), independently of the
            global random state.
        zero_init_residual: start the scale of each residual block's last BatchNorm at 0, so
            every block starts as the identity (BigNAS's initialisation, Yu et al., ECCV 2020;
            without it the 20-block network barely trains in a few epochs on small data).

    Example:
        >>> from hwnas.spaces import create_space
        >>> space = create_space("mbv3", preset="small", input_size=16, in_channels=1)
        >>> net = MBV3Supernet(space)
        >>> net.set_active(smallest_arch(space))
        >>> net(torch.zeros(2, 1, 16, 16)).shape
        torch.Size([2, 10])
    """

    sample_step: torch.Tensor

    def __init__(self, space: MBV3Space, *, seed: int = 0, zero_init_residual: bool = True) -> None:
        super().__init__()
        self.zero_init_residual = zero_init_residual
        if not isinstance(space, MBV3Space):
            raise ConfigError(
                f"MBV3Supernet needs an mbv3 space (create_space('mbv3', ...)), "
                f"got {type(space).__name__}"
            )
        self.space = space
        big = self._largest_plan(space)
        self.stem = _ConvBN(
            DynamicConv2d(big.in_channels, big.stem_channels, (3,), stride=big.stem_stride),
            "hswish",
        )
        self.first_block = _Block(big.first_block, (3,), has_expand=False)
        self.blocks = nn.ModuleList(_Block(b, MBV3_KERNELS, True) for b in big.blocks)
        self.final_expand = _ConvBN(DynamicConv2d(big.blocks[-1].c_out, big.final_expand), "hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = _FeatureMix(big.final_expand, big.feature_mix)
        self.dropout = nn.Dropout(big.dropout)
        self.classifier = DynamicLinear(big.feature_mix, big.num_classes)
        # Optimizer steps the sandwich rule has taken: a buffer, so training checkpoints keep
        # it and a resumed run draws the same sub-networks (see hwnas.oneshot.sandwich).
        self.register_buffer("sample_step", torch.zeros((), dtype=torch.int64))
        self._big = big
        self.reset_parameters(seed)
        self.set_active(largest_arch(space))

    @staticmethod
    def _largest_plan(space: MBV3Space) -> NetworkPlan:
        """The largest network, every width the largest any offered width and expansion gives
        (the plan of k7 e6 d4 at the largest width, widened where rounding says so)."""
        plans = [
            space.plan(uniform_arch(space, kernel=7, expansion=e, depth=4, largest=True) | {"w": w})
            for e in MBV3_EXPANSIONS
            for w in space.widths
        ]
        top = plans[-1]

        def widest(pick: Any) -> int:
            return max(pick(p) for p in plans)

        blocks = tuple(
            BlockPlan(
                c_in=widest(lambda p, i=i: p.blocks[i].c_in),
                c_out=widest(lambda p, i=i: p.blocks[i].c_out),
                kernel=b.kernel,
                expansion=b.expansion,
                hidden=widest(lambda p, i=i: p.blocks[i].hidden),
                stride=b.stride,
                act=b.act,
                se_channels=widest(lambda p, i=i: p.blocks[i].se_channels),
            )
            for i, b in enumerate(top.blocks)
        )
        first = top.first_block
        return NetworkPlan(
            in_channels=top.in_channels,
            resolution=top.resolution,
            stem_channels=widest(lambda p: p.stem_channels),
            stem_stride=top.stem_stride,
            first_block=BlockPlan(
                widest(lambda p: p.first_block.c_in),
                widest(lambda p: p.first_block.c_out),
                first.kernel,
                first.expansion,
                widest(lambda p: p.first_block.hidden),
                first.stride,
                first.act,
                first.se_channels,
            ),
            blocks=blocks,
            final_expand=widest(lambda p: p.final_expand),
            feature_mix=widest(lambda p: p.feature_mix),
            dropout=top.dropout,
            num_classes=top.num_classes,
        )

    def reset_parameters(self, seed: int = 0) -> None:
        """Re-initialise every weight from ``seed``: convs ``he_fout``, BatchNorm scale 1 and
        shift 0 with fresh statistics, the classifier uniform (as OFA's ``init_model``)."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, (DynamicConv2d, DynamicLinear)):
                module.reset_parameters(generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
        if self.zero_init_residual:
            with torch.no_grad():
                for block, plan in zip(self.block_list(), self._big.blocks):
                    if plan.residual:
                        block.project.bn.weight.zero_()

    # -- the active sub-network -----------------------------------------------------------------
    def set_active(self, arch: Arch) -> None:
        """Run ``arch``'s sub-network from now on (validated against the space)."""
        arch = self.space.validate(arch)
        plan = self.space.plan(arch)
        positions = [
            s * MBV3_MAX_DEPTH + j for s in range(MBV3_STAGES) for j in range(arch["d"][s])
        ]
        for pos, b in zip(positions, plan.blocks):
            top = self._big.blocks[pos]
            if b.hidden > top.hidden or b.c_out > top.c_out or b.se_channels > top.se_channels:
                raise ConfigError(f"MBV3Supernet: block {pos} of {arch} exceeds the supernet")
        self._arch, self._plan, self._positions = arch, plan, positions

    @property
    def active_arch(self) -> Arch:
        """The architecture :meth:`forward` runs (a copy)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._arch.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the active sub-network; an input of another size is first resized
        bilinearly to the sub-network's resolution (OFA's elastic resolution)."""
        plan, r = self._plan, self._plan.resolution
        if tuple(x.shape[-2:]) != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        x = self.stem(x, out_channels=plan.stem_channels)
        x = self.first_block(x, plan.first_block)
        for pos, b in zip(self._positions, plan.blocks):
            x = self.blocks[pos](x, b)
        x = self.final_expand(x, out_channels=plan.final_expand)
        x = self.pool(x)
        x = self.feature_mix(x, out_channels=plan.feature_mix)
        return self.classifier(self.dropout(torch.flatten(x, 1)))

    # -- extraction -----------------------------------------------------------------------------
    def extract(self, arch: Arch) -> nn.Module:
        """The standalone ``space.build_network(arch)`` with this supernet's weights: channel
        slices, kernels through the kernel transform, BatchNorm statistics of the first channels.
        Its eval-mode outputs equal the supernet's for ``arch``; it lives on the supernet's
        device, in eval mode. The supernet's active sub-network is left as it was.
        """
        arch = self.space.validate(arch)
        net = self.space.build_network(arch)
        positions = [
            s * MBV3_MAX_DEPTH + j for s in range(MBV3_STAGES) for j in range(arch["d"][s])
        ]
        own = dict(self.named_parameters()) | dict(self.named_buffers())
        with torch.no_grad():
            for name, target in net.state_dict().items():
                source_name = self._source_name(name, positions)
                owner, _, leaf = source_name.rpartition(".")
                module = self.get_submodule(owner)
                if isinstance(module, DynamicConv2d) and leaf == "weight":
                    out_c, in_c, k = target.shape[0], target.shape[1], target.shape[-1]
                    value = module.active_filter(out_c, in_c, k)
                else:
                    value = own[source_name]
                    value = value[tuple(slice(0, n) for n in target.shape)]
                if tuple(value.shape) != tuple(target.shape):
                    raise ConfigError(
                        f"MBV3Supernet.extract: {name} has shape {tuple(target.shape)}, the "
                        f"supernet gives {tuple(value.shape)}"
                    )
                target.copy_(value)
        return net.to(self.sample_step.device).eval()

    @staticmethod
    def _source_name(name: str, positions: list[int]) -> str:
        if name.startswith("blocks."):
            _, index, rest = name.split(".", 2)
            return f"blocks.{positions[int(index)]}.{rest}"
        return name

    # -- channel importance ---------------------------------------------------------------------
    def sort_channels(self, expand_stage: int = 0) -> None:
        """Reorder each block's expanded channels by importance, most important first (OFA's
        ``re_organize_middle_weights``), leaving the largest network's function unchanged.

        The importance of a hidden channel is the L1 norm of the projection weights that read it;
        the expand conv's outputs, its BatchNorm, the depthwise conv and BatchNorm, and the SE
        convs are permuted alike, and the SE's own reduced channels are sorted by the L1 norm of
        the SE expand weights that read them. With ``expand_stage = s > 0`` channels beyond the
        ``s + 1`` largest expansions' widths stay beyond them (OFA sorts so in later expansion
        phases, keeping the channels that smaller expansions already share).
        """
        ranked = sorted(MBV3_EXPANSIONS, reverse=True)
        with torch.no_grad():
            for block in self.block_list():
                assert block.expand is not None
                importance = block.project.conv.weight.abs().sum(dim=(0, 2, 3))
                if expand_stage > 0:
                    c_in = block.expand.conv.in_channels
                    widths = [make_divisible(round(c_in * e)) for e in ranked]
                    right, base = importance.numel(), -len(widths) * 1e5
                    for i in range(min(expand_stage + 1, len(widths))):
                        left = widths[i]
                        importance[left:right] += base
                        base += 1e5
                        right = left
                order = torch.argsort(importance, descending=True, stable=True)
                _permute(block.project.conv.weight, order, dim=1)
                for layer in (block.depthwise, block.expand):
                    _permute(layer.conv.weight, order, dim=0)
                    _permute_bn(layer.bn, order)
                if block.se is not None:
                    se = block.se
                    _permute(se.expand.weight, order, dim=0)
                    _permute(_bias(se.expand), order, dim=0)
                    _permute(se.reduce.weight, order, dim=1)
                    se_order = torch.argsort(
                        se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True
                    )
                    _permute(se.expand.weight, se_order, dim=1)
                    _permute(se.reduce.weight, se_order, dim=0)
                    _permute(_bias(se.reduce), se_order, dim=0)

    def block_list(self) -> list[_Block]:
        """The 20 elastic blocks, typed (``blocks`` is an ``nn.ModuleList``)."""
        return [b for b in self.blocks if isinstance(b, _Block)]


def _bias(conv: DynamicConv2d) -> torch.Tensor:
    assert conv.bias is not None
    return conv.bias


def _permute(tensor: torch.Tensor, order: torch.Tensor, *, dim: int) -> None:
    tensor.copy_(torch.index_select(tensor, dim, order.to(tensor.device)))


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if tensor is not None:
            _permute(tensor, order, dim=0)
