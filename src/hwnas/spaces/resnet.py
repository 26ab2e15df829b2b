"""CIFAR ResNet width-and-depth space (He et al., CVPR 2016, section 4.2), the space TAS prunes
(Dong & Yang, "Network Pruning via Transformable Architecture Search", NeurIPS 2019).

The network: a 3x3 stem conv (+ BN, ReLU), three stages of basic blocks at base widths
``widths`` (16, 32, 64 by default) with stride 2 at the first block of stages 2 and 3, global
average pooling and a linear classifier. ``blocks`` is the most blocks per stage (3 is ResNet-20,
5 ResNet-32, 9 ResNet-56). A basic block is conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut, then
ReLU. The shortcut is the identity when the block keeps its stride and channel count, else a
projection: a bias-free 1x1 conv with the block's stride, then BN (He et al.'s option B, used
wherever widths differ, since pruning makes them differ inside a stage too).

Choices, as TAS searches them: the width of every conv layer (the stem, and both convs of every
block) as a ratio of its base width, and the depth of every stage. A layer at ratio ``r`` of base
width ``C`` has ``max(1, floor(r * C))`` channels (TAS's ``int(nOut * ratio)``). Ratios are read
to two decimals and written as percents: 0.25 is ``w25``, 1.0 is ``w100``; depths are ``d1`` ..
``d<blocks>``.

Architecture dict: ``{"ops": [...]}``, slot order: the stem width, then per stage its depth
followed by ``conv_a, conv_b`` of each of its ``blocks`` blocks. Blocks past a stage's depth keep
their widths in the dict (so every slot is always a choice and mutation stays a one-slot move),
but do not change the network: two dicts that differ only there build the same network.

Canonical string: the stem width, then per stage ``d<depth>:`` and its blocks as ``a-b`` width
pairs joined by commas, all four groups joined by ``|``; every stage lists ``blocks`` pairs,
past its depth too. With ``blocks=2``, a network whose stem and first stage are at half width,
with one block in the first stage and two in the others::

    w50|d1:w50-w50,w50-w50|d2:w100-w75,w75-w100|d2:w100-w100,w25-w100

The unpruned ResNet-20 (``blocks=3``) is ``w100`` followed three times by
``|d3:w100-w100,w100-w100,w100-w100``.

FLOPs convention: ``flops_m`` is millions of multiply-accumulates (MACs) of the conv and linear
layers (as :mod:`hwnas.spaces.nb201_cost`), half of ``torch.utils.flop_counter``'s count;
``params_m`` counts every parameter of the built module, BatchNorm scales and shifts included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwnas.errors import ConfigError, require_torch
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace, whole_number
from hwnas.spaces.tally import Tally

RESNET_WIDTHS: tuple[int, int, int] = (16, 32, 64)
RESNET_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class BlockPlan:
    """One active basic block: channels in, of ``conv_a``, of ``conv_b`` (= out), and stride."""

    c_in: int
    mid: int
    out: int
    stride: int

    @property
    def projects(self) -> bool:
        """Whether the shortcut is a 1x1 conv + BN projection (else the identity)."""
        return self.stride != 1 or self.c_in != self.out


@dataclass(frozen=True)
class ResNetPlan:
    """The concrete layers of one architecture: stem channels and the active blocks in order."""

    in_channels: int
    stem: int
    blocks: tuple[BlockPlan, ...]
    num_classes: int


class ResNetSpace(CategoricalSpace):
    """CIFAR ResNet with per-layer width ratios and per-stage depths (see the module docstring).

    Args:
        blocks: most basic blocks per stage (3: ResNet-20).
        widths: base widths of the three stages; the stem has the first stage's width.
        ratios: width ratios each conv layer chooses from, in (0, 1], two decimals at most.
        input_size: input side length.
        in_channels: image channels (1 for digits and MNIST).
        num_classes: classifier outputs.

    Example:
        >>> space = ResNetSpace(in_channels=1, input_size=8)
        >>> arch = space.from_string("w50|d1:w25-w50,w100-w100,w100-w100"
        ...                          "|d2:w50-w50,w50-w50,w50-w50|d3:w75-w75,w75-w75,w75-w75")
        >>> space.network_plan(arch).blocks[0]
        BlockPlan(c_in=8, mid=4, out=8, stride=1)
    """

    name = "resnet"

    def __init__(
        self,
        *,
        blocks: int = 3,
        widths: list[int] | None = None,
        ratios: list[float] | None = None,
        input_size: int = 32,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> None:
        self.blocks = whole_number("resnet", "blocks", blocks)
        self.widths = _widths(RESNET_WIDTHS if widths is None else widths)
        self.percents = _percents(RESNET_RATIOS if ratios is None else ratios)
        self.ratios = tuple(p / 100 for p in self.percents)
        self.input_size = whole_number("resnet", "input_size", input_size, minimum=4)
        self.in_channels = whole_number("resnet", "in_channels", in_channels)
        self.num_classes = whole_number("resnet", "num_classes", num_classes)
        self.width_choices = tuple(f"w{p}" for p in self.percents)
        self.depth_choices = tuple(f"d{d}" for d in range(1, self.blocks + 1))
        slots: list[tuple[str, ...]] = [self.width_choices]
        names = ["stem"]
        stage_slots: list[tuple[int, tuple[tuple[int, int], ...]]] = []
        for s in range(3):
            depth_slot = len(slots)
            slots.append(self.depth_choices)
            names.append(f"stage{s + 1}.depth")
            pairs: list[tuple[int, int]] = []
            for b in range(self.blocks):
                pairs.append((len(slots), len(slots) + 1))
                slots += [self.width_choices, self.width_choices]
                names += [f"stage{s + 1}.block{b + 1}.conv_a", f"stage{s + 1}.block{b + 1}.conv_b"]
            stage_slots.append((depth_slot, tuple(pairs)))
        self.slots = tuple(slots)
        self.slot_names: tuple[str, ...] = tuple(names)
        # (depth slot, ((conv_a slot, conv_b slot) per block)) per stage
        self.stage_slots = tuple(stage_slots)
        # the stage whose base width a slot scales (the stem: stage 0), None for depth slots
        self._slot_stage: list[int | None] = [0] * len(slots)
        for s, (depth_slot, stage_pairs) in enumerate(self.stage_slots):
            self._slot_stage[depth_slot] = None
            for a, b in stage_pairs:
                self._slot_stage[a] = self._slot_stage[b] = s
        sizes, size = [], self.input_size
        for s in range(3):
            size = size if s == 0 else (size - 1) // 2 + 1
            sizes.append(size)
        self.stage_sizes: tuple[int, ...] = tuple(sizes)

    # -- structure ------------------------------------------------------------------------------
    def slot_channels(self, slot: int) -> tuple[int, ...]:
        """Channel count of each choice of width slot ``slot`` (in the order of its choices)."""
        stage = self._slot_stage[slot]
        if stage is None:
            raise ConfigError(f"resnet: slot {slot} ({self.slot_names[slot]}) is a depth slot")
        return tuple(max(1, self.widths[stage] * p // 100) for p in self.percents)

    def full_arch(self) -> Arch:
        """The unpruned network: every layer at the largest ratio, every stage at full depth."""
        ops = [
            self.depth_choices[-1] if c is self.depth_choices else self.width_choices[-1]
            for c in self.slots
        ]
        return {"ops": ops}

    def network_plan(self, arch: Arch) -> ResNetPlan:
        """The concrete layers ``arch`` builds (its active blocks only)."""
        ops = self.validate(arch)["ops"]

        def channels(slot: int) -> int:
            return self.slot_channels(slot)[self.width_choices.index(ops[slot])]

        c = channels(0)
        stem, plans = c, []
        for s, (depth_slot, pairs) in enumerate(self.stage_slots):
            depth = self.depth_choices.index(ops[depth_slot]) + 1
            for b, (slot_a, slot_b) in enumerate(pairs[:depth]):
                stride = 2 if s > 0 and b == 0 else 1
                plan = BlockPlan(c, channels(slot_a), channels(slot_b), stride)
                plans.append(plan)
                c = plan.out
        return ResNetPlan(self.in_channels, stem, tuple(plans), self.num_classes)

    # -- strings --------------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        ops = self.validate(arch)["ops"]
        groups = [ops[0]]
        for depth_slot, pairs in self.stage_slots:
            blocks = ",".join(f"{ops[a]}-{ops[b]}" for a, b in pairs)
            groups.append(f"{ops[depth_slot]}:{blocks}")
        return "|".join(groups)

    def from_string(self, text: str) -> Arch:
        s = str(text).strip()
        shown = repr(s) if len(s) <= 80 else repr(s[:77] + "...")
        groups = s.split("|")
        if len(groups) != 4:
            raise ConfigError(
                f"resnet: {shown} is not a resnet string; expected 4 '|'-joined groups (the stem "
                f"width, then each stage as d<depth>:<a-b width pairs>), like "
                f"{self.to_string(self.full_arch())}"
            )
        ops = [self._token(groups[0], self.width_choices, "stem width", shown)]
        for stage, group in enumerate(groups[1:], start=1):
            head, sep, body = group.partition(":")
            if not sep:
                raise ConfigError(
                    f"resnet: stage {stage} {group!r} in {shown} must read "
                    f"d<depth>:<a-b width pairs>, like d{self.blocks}:"
                    + ",".join(["w100-w100"] * self.blocks)
                )
            ops.append(self._token(head, self.depth_choices, f"stage {stage} depth", shown))
            pairs = body.split(",")
            if len(pairs) != self.blocks:
                raise ConfigError(
                    f"resnet: stage {stage} of {shown} needs {self.blocks} comma-separated "
                    f"a-b width pairs (blocks past the depth included), got {len(pairs)}"
                )
            for b, pair in enumerate(pairs, start=1):
                parts = pair.split("-")
                if len(parts) != 2:
                    raise ConfigError(
                        f"resnet: block {b} of stage {stage} {pair!r} in {shown} must be two "
                        "widths joined by '-', like w50-w100"
                    )
                what = f"stage {stage} block {b} width"
                ops += [self._token(p, self.width_choices, what, shown) for p in parts]
        return {"ops": ops}

    @staticmethod
    def _token(token: str, allowed: tuple[str, ...], what: str, shown: str) -> str:
        if token not in allowed:
            raise ConfigError(
                f"resnet: unknown {what} {token!r} in {shown}; {closest(token, allowed)}"
            )
        return token

    # -- metrics and modules --------------------------------------------------------------------
    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        params, macs = plan_params_macs(self.network_plan(arch), self.input_size)
        return {"params_m": params / 1e6, "flops_m": macs / 1e6}

    def cheap_metric_names(self) -> tuple[str, ...]:
        return ("params_m", "flops_m")

    def build_network(self, arch: Arch) -> Any:
        """The standalone (pruned) ResNet of ``arch`` as a ``torch.nn.Module``."""
        require_torch("building ResNet networks")
        from hwnas.spaces.resnet_torch import build_resnet_network

        return build_resnet_network(self.network_plan(arch))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.input_size, self.input_size)


def plan_params_macs(plan: ResNetPlan, input_size: int) -> tuple[int, int]:
    """Exact parameters and conv/linear MACs of the network a plan describes.

    Example:
        >>> space = ResNetSpace()
        >>> plan_params_macs(space.network_plan(space.full_arch()), 32)
        (272474, 40813184)
    """
    t = Tally()
    size = input_size
    t.conv(plan.in_channels, plan.stem, 3, size)
    t.bn(plan.stem, size)
    for block in plan.blocks:
        out = t.conv(block.c_in, block.mid, 3, size, stride=block.stride)
        t.bn(block.mid, out)
        t.conv(block.mid, block.out, 3, out)
        t.bn(block.out, out)
        if block.projects:
            t.conv(block.c_in, block.out, 1, size, stride=block.stride)
            t.bn(block.out, out)
        size = out
    last = plan.blocks[-1].out if plan.blocks else plan.stem
    t.linear(last, plan.num_classes)
    return t.params, t.macs


def _widths(widths: Sequence[int]) -> tuple[int, int, int]:
    if isinstance(widths, str) or not isinstance(widths, Sequence) or len(widths) != 3:
        raise ConfigError(
            f"resnet: widths must be a list of 3 stage widths like [16, 32, 64], got {widths!r}"
        )
    a, b, c = (whole_number("resnet", "a stage width", w) for w in widths)
    return (a, b, c)


def _percents(ratios: Sequence[float]) -> tuple[int, ...]:
    """The ratios as sorted integer percents; refuses duplicates and more than two decimals."""
    wanted = "a list of distinct numbers in (0, 1] with at most 2 decimals, like [0.25, 0.5, 1.0]"
    if isinstance(ratios, str) or not isinstance(ratios, Sequence) or not ratios:
        raise ConfigError(f"resnet: ratios must be {wanted}, got {ratios!r}")
    percents = []
    for r in ratios:
        ok = isinstance(r, (int, float)) and not isinstance(r, bool) and 0 < r <= 1
        if not ok or abs(round(r * 100) - r * 100) > 1e-6:
            raise ConfigError(f"resnet: ratios must be {wanted}, got {r!r} in {list(ratios)!r}")
        percents.append(round(r * 100))
    if len(set(percents)) != len(percents):
        raise ConfigError(f"resnet: ratios must be {wanted}, got a repeat in {list(ratios)!r}")
    return tuple(sorted(percents))
