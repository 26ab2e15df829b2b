"""The searchable ResNet of TAS (Dong & Yang, "Network Pruning via Transformable Architecture
Search", NeurIPS 2019) over the ``resnet`` space, its expected FLOPs, the architectures derived
from its logits and the uniform-width baseline (those two in :mod:`hwnas.oneshot.relax.tas_archs`).

Every conv holds the weights of its largest width. Per forward pass (:meth:`TASNetwork.sample`):

* each width slot draws a Gumbel-softmax sample ``y = softmax((alpha + g) / tau)`` and, as TAS's
  ``select2withP`` does, two distinct widths from it, weighted by ``y`` renormalised over the
  two; the conv computes the larger one, slices the smaller, puts each through its own BatchNorm
  (TAS keeps one BN per width choice), and channel-wise interpolation (CWI: adaptive average
  pooling along channels, TAS's ``ChannelWiseInterV2``) brings both to the larger width before
  the weighted sum;
* each stage draws a Gumbel-softmax sample over its depths, and the stage's output is the sum of
  the outputs after block 1, 2, ... weighted by it, each CWI-ed to the widest of them.

A conv's input with fewer channels than its weights uses their first channels (TAS pads the
input with zeros, which computes the same). Shortcuts follow TAS's search model: a projection
(a searchable 1x1 conv sharing ``conv_b``'s sampled widths) where the largest widths or the
stride change, else the identity, added with zero padding when the widths differ. The standalone
network (:mod:`hwnas.spaces.resnet_torch`) instead projects wherever its widths differ; its
weights are not inherited (TAS trains it afresh with distillation).

Expected FLOPs: :meth:`TASNetwork.expected_flops_m` is the exact expectation of the standalone
network's MACs (:meth:`~hwnas.spaces.resnet.ResNetSpace.cheap_metrics`) under independent slots
drawn from ``softmax(alpha)``; TAS's code approximates it, multiplying expected input and output
widths layer by layer and passing the last block's expected width to the next stage whatever the
depth. At one-hot probabilities it equals the architecture's ``flops_m``.

Example:
    >>> import torch
    >>> from hwnas.spaces.resnet import ResNetSpace
    >>> space = ResNetSpace(blocks=2, in_channels=1, input_size=8)
    >>> net = TASNetwork(space, generator=torch.Generator().manual_seed(0))
    >>> g = torch.Generator().manual_seed(1)
    >>> net(torch.zeros(2, 1, 8, 8), net.sample(5.0, g)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.oneshot.calibrate import recalibrate_bn
from hwnas.oneshot.relax.formulas import gumbel_softmax_sample
from hwnas.spaces.base import Arch
from hwnas.spaces.resnet import ResNetSpace
from hwnas.training import evaluate


@dataclass
class TASSample:
    """What one forward pass computes: per width row the choices and their weights, per stage
    the weight of each depth (a zero weight skips the blocks only it would need)."""

    width_index: list[list[int]]
    width_weights: list[torch.Tensor]
    depth_weights: torch.Tensor


class _Fixed(nn.Module):
    """The search network computing one fixed sample, as a plain ``forward(x)`` module."""

    def __init__(self, net: TASNetwork, sample: TASSample) -> None:
        super().__init__()
        self.net = net
        self.sample = sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.sample)


def channel_interpolate(x: torch.Tensor, channels: int) -> torch.Tensor:
    """CWI (TAS, section 3.2): resize the channel dimension of ``x`` to ``channels`` by adaptive
    average pooling over channels, as TAS's ``ChannelWiseInterV2``."""
    if x.shape[1] == channels:
        return x
    return F.adaptive_avg_pool3d(x.unsqueeze(1), (channels, x.shape[2], x.shape[3])).squeeze(1)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` with the narrower one zero-padded in channels (TAS's ``additive_func``)."""
    if a.shape[1] < b.shape[1]:
        a, b = b, a
    if a.shape[1] == b.shape[1]:
        return a + b
    return a + F.pad(b, (0, 0, 0, 0, 0, a.shape[1] - b.shape[1]))


class SearchConv(nn.Module):
    """A bias-free conv at the largest of ``channels`` and one BatchNorm per width choice."""

    def __init__(self, c_in: int, channels: Sequence[int], kernel: int, stride: int) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max(channels), c_in, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in self.channels)

    def forward(self, x: torch.Tensor, index: list[int], weights: torch.Tensor) -> torch.Tensor:
        widths = [self.channels[i] for i in index]
        top = max(widths)
        kernel = self.weight.shape[-1]
        full = F.conv2d(x, self.weight[:top, : x.shape[1]], None, self.stride, kernel // 2)
        outs = [self.bns[i](full[:, :c]) for i, c in zip(index, widths)]
        total = weights[0] * channel_interpolate(outs[0], top)
        for w, out in zip(weights[1:], outs[1:]):
            total = total + w * channel_interpolate(out, top)
        return total


class SearchBlock(nn.Module):
    """A basic block of searchable convs; ``project`` is None for an identity shortcut."""

    def __init__(self, c_in: int, mid: Sequence[int], out: Sequence[int], stride: int) -> None:
        super().__init__()
        self.conv_a = SearchConv(c_in, mid, 3, stride)
        self.conv_b = SearchConv(max(mid), out, 3, 1)
        projects = stride != 1 or c_in != max(out)
        self.project = SearchConv(c_in, out, 1, stride) if projects else None

    def forward(
        self,
        x: torch.Tensor,
        sel_a: tuple[list[int], torch.Tensor],
        sel_b: tuple[list[int], torch.Tensor],
    ) -> torch.Tensor:
        out = self.conv_b(F.relu(self.conv_a(x, *sel_a)), *sel_b)
        residual = x if self.project is None else self.project(x, *sel_b)
        return F.relu(_add_padded(residual, out))


class SearchBody(nn.Module):
    """The network weights (what SGD trains): stem, blocks per stage, classifier."""

    def __init__(self, space: ResNetSpace) -> None:
        super().__init__()
        self.stem = SearchConv(space.in_channels, space.slot_channels(0), 3, 1)
        c = max(space.slot_channels(0))
        self.stages = nn.ModuleList()
        for s, (_, pairs) in enumerate(space.stage_slots):
            blocks = nn.ModuleList()
            for j, (slot_a, slot_b) in enumerate(pairs):
                mid, out = space.slot_channels(slot_a), space.slot_channels(slot_b)
                blocks.append(SearchBlock(c, mid, out, 2 if s > 0 and j == 0 else 1))
                c = max(out)
            self.stages.append(blocks)
        self.classifier = nn.Linear(c, space.num_classes)


class TASNetwork(nn.Module):
    """TAS's searchable ResNet: the weights (:attr:`body`) and the architecture logits, one row
    of :attr:`width_logits` per width slot and one of :attr:`depth_logits` per stage, both
    initialised from ``N(0, 0.01^2)`` as in TAS's code (drawn from ``generator``)."""

    def __init__(self, space: ResNetSpace, *, generator: torch.Generator) -> None:
        super().__init__()
        self.space = space
        self.width_slots = [i for i, c in enumerate(space.slots) if c == space.width_choices]
        self.row_of = {slot: row for row, slot in enumerate(self.width_slots)}
        self.body = SearchBody(space)
        k, rows = len(space.width_choices), len(self.width_slots)
        self.width_logits = nn.Parameter(0.01 * torch.randn(rows, k, generator=generator))
        self.depth_logits = nn.Parameter(0.01 * torch.randn(3, space.blocks, generator=generator))
        channels = [space.slot_channels(s) for s in self.width_slots]
        self.channels: torch.Tensor
        self.register_buffer("channels", torch.tensor(channels, dtype=torch.float64))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.width_logits, self.depth_logits]

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, tau: float, generator: torch.Generator) -> TASSample:
        """Gumbel-softmax samples at temperature ``tau``: two widths per width slot (one when
        there is one choice), every depth per stage (TAS's ``select2withP``)."""
        y, _ = gumbel_softmax_sample(self.width_logits, tau, generator)
        num = min(2, y.shape[1])
        # + 1e-7 as TAS does: at a low temperature y may hold exact zeros.
        index = torch.multinomial(y.detach() + 1e-7, num, replacement=False, generator=generator)
        picked = y.gather(1, index)
        weights = picked / picked.sum(dim=1, keepdim=True)
        depth, _ = gumbel_softmax_sample(self.depth_logits, tau, generator)
        return TASSample(index.tolist(), list(weights), depth)

    def mean_sample(self) -> TASSample:
        """The relaxed network without Gumbel noise: per width slot its two most probable
        widths weighted by their renormalised probabilities, per stage every depth weighted by
        its probability (what :meth:`sample` draws around)."""
        with torch.no_grad():
            p = torch.softmax(self.width_logits, dim=1)
            num = min(2, p.shape[1])
            top = p.topk(num, dim=1)
            weights = top.values / top.values.sum(dim=1, keepdim=True)
            depth = torch.softmax(self.depth_logits, dim=1)
        return TASSample(top.indices.tolist(), list(weights), depth)

    def hard(self, indices: Sequence[int]) -> TASSample:
        """The sample that computes one architecture (choice indices per slot, space order)."""
        one = torch.ones(1)
        depth = torch.zeros(3, self.space.blocks)
        for s, (depth_slot, _) in enumerate(self.space.stage_slots):
            depth[s, indices[depth_slot]] = 1.0
        index = [[indices[s]] for s in self.width_slots]
        return TASSample(index, [one] * len(self.width_slots), depth)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, sample: TASSample) -> torch.Tensor:
        def sel(slot: int) -> tuple[list[int], torch.Tensor]:
            row = self.row_of[slot]
            return sample.width_index[row], sample.width_weights[row]

        x = F.relu(self.body.stem(x, *sel(0)))
        for s, (_, pairs) in enumerate(self.space.stage_slots):
            w = sample.depth_weights[s]
            present = [float(v) != 0.0 for v in w.detach()]
            last = max(j for j, on in enumerate(present) if on)
            outs = []
            for j in range(last + 1):
                slot_a, slot_b = pairs[j]
                block: SearchBlock = self.body.stages[s][j]  # type: ignore[index]
                x = block(x, sel(slot_a), sel(slot_b))
                outs.append(x)
            top = max(o.shape[1] for o in outs)
            x = w[0] * channel_interpolate(outs[0], top)
            for j in range(1, last + 1):
                x = x + w[j] * channel_interpolate(outs[j], top)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        fc = self.body.classifier
        return F.linear(features, fc.weight[:, : features.shape[1]], fc.bias)

    # -- the distribution -----------------------------------------------------------------------
    def probabilities(self) -> list[torch.Tensor]:
        """``softmax(logits)`` of every slot, in the space's slot order."""
        width = torch.softmax(self.width_logits, dim=1)
        depth = torch.softmax(self.depth_logits, dim=1)
        out: list[torch.Tensor] = [width[self.row_of[0]]]
        for s, (_, pairs) in enumerate(self.space.stage_slots):
            out.append(depth[s])
            for slot_a, slot_b in pairs:
                out += [width[self.row_of[slot_a]], width[self.row_of[slot_b]]]
        return out

    def rows(self) -> list[list[float]]:
        """:meth:`probabilities` as plain floats (a trajectory row)."""
        with torch.no_grad():
            return [[float(v) for v in p] for p in self.probabilities()]

    def argmax_arch(self) -> Arch:
        """The architecture of the most probable choice of every slot (TAS's genotype)."""
        with torch.no_grad():
            return self.space.decode([int(p.argmax()) for p in self.probabilities()])

    def evaluate(
        self, sample: TASSample, x: torch.Tensor, y: torch.Tensor, calibration: torch.Tensor
    ) -> tuple[float, float]:
        """Cross-entropy and accuracy of this network computing ``sample`` (:meth:`hard` for one
        architecture, :meth:`mean_sample`), after re-estimating its BatchNorm statistics for it
        on ``calibration`` images: the search's running statistics average over mixtures of
        widths and depths. Training uses batch statistics, so this leaves the search as it was.
        """
        fixed = _Fixed(self, sample)
        recalibrate_bn(fixed, calibration)
        return evaluate(fixed, x, y)

    def expected_flops_m(self) -> torch.Tensor:
        """Expected MACs (millions, float64) of the standalone network, differentiable in the
        logits."""
        return expected_flops_m(
            self.space,
            torch.softmax(self.width_logits.double(), dim=1),
            torch.softmax(self.depth_logits.double(), dim=1),
            self.channels,
            self.row_of,
        )


def expected_flops_m(
    space: ResNetSpace,
    width_probs: torch.Tensor,
    depth_probs: torch.Tensor,
    channels: torch.Tensor,
    row_of: dict[int, int],
) -> torch.Tensor:
    """Exact expected conv/linear MACs (millions) with independent slots (module docstring).

    A block is present when its stage's depth reaches it (probability ``P(d >= j)``), and given
    that its input is the previous block's ``conv_b`` (or the stem, or the last present block of
    the previous stage), independent of its own widths, so each conv's expectation is the product
    of expected widths. A stride-1 shortcut projects only when its input and output widths
    differ; its term subtracts the expected ``c^2`` over equal widths.
    """
    mean = (width_probs * channels).sum(dim=1)
    stem = row_of[0]
    size = space.input_size
    total = space.in_channels * mean[stem] * 9 * size * size
    # the expected input width, and the row it comes from (None after a stage: a mixture)
    c_in: torch.Tensor = mean[stem]
    prev_row: int | None = stem
    for s, (_, pairs) in enumerate(space.stage_slots):
        out_size = space.stage_sizes[s]
        area = out_size * out_size
        p_depth = depth_probs[s]
        reach = torch.flip(torch.cumsum(torch.flip(p_depth, [0]), 0), [0])  # P(d >= j + 1)
        stage_out = torch.zeros((), dtype=mean.dtype)
        for j, (slot_a, slot_b) in enumerate(pairs):
            ra, rb = row_of[slot_a], row_of[slot_b]
            macs = 9 * area * (c_in * mean[ra] + mean[ra] * mean[rb])
            if prev_row is None:  # stride 2: always a projection
                macs = macs + area * c_in * mean[rb]
            else:
                same = channels[prev_row][:, None] == channels[rb][None, :]
                square = same * channels[prev_row][:, None] ** 2
                equal = width_probs[prev_row] @ square @ width_probs[rb]
                macs = macs + area * (c_in * mean[rb] - equal)
            total = total + reach[j] * macs
            stage_out = stage_out + p_depth[j] * mean[rb]
            c_in, prev_row = mean[rb], rb
        c_in, prev_row = stage_out, None
    total = total + c_in * space.num_classes
    return total / 1e6
