"""Once-for-All's elastic MobileNetV3 space (Cai et al., ICLR 2020), with a small preset for
28x28 / 32x32 inputs.

The ``full`` preset is OFA's MobileNetV3-Large supernet (mit-han-lab/once-for-all,
``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py``, class ``OFAMobileNetV3``): a
fixed stem and first block, then five searchable stages of up to four MBConv blocks, each block
choosing its depthwise kernel ``k`` in {3, 5, 7} and expansion ``e`` in {3, 4, 6}, each stage its
depth ``d`` in {2, 3, 4}, plus the input resolution ``r`` and the width multiplier ``w``. The
layer tables of both presets, and the plan of a sub-network, are in :mod:`hwnas.spaces.mbv3_plan`;
the checks, variation operators and encodings of architecture dicts, as plain functions, in
:mod:`hwnas.spaces.mbv3_arch`. The public names of :mod:`~hwnas.spaces.mbv3_plan` are importable
from here too.

Architecture dict (OFA's ``set_active_subnet`` arguments plus resolution and width)::

    {"ks": [20 ints], "e": [20 ints], "d": [5 ints], "r": 224, "w": 1.0}

Entry ``4 * s + j`` of ``ks`` and ``e`` belongs to block ``j`` of stage ``s`` (both from 0). Blocks
``j >= d[s]`` are inactive; a normalised architecture (what every method here returns) holds 0 for
their ``ks`` and ``e``, so one sub-network has exactly one dict and one string. Methods accept
any valid choice (or 0) there and normalise it away.

Canonical string: ``r<resolution>-w<width>`` then the five stages, each the comma-separated list
of its active blocks ``k<kernel>e<expansion>``, all joined by ``|``; the depth of a stage is its
number of blocks. For example (a stage of depth 2, then 3, 2, 4, 2)::

    r224-w1.0|k3e4,k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6

Vector encoding (:meth:`MBV3Space.encode`): 47 integers, the 20 kernels, the 20 expansions
(0 for inactive blocks), the 5 depths, the resolution in pixels and the index of the width in
the space's width choices.

PyTorch module names (:mod:`hwnas.spaces.mbv3_torch`), chosen so a weight-sharing supernet can copy
its weights into a sub-network by name: ``stem.{conv,bn,act}``; ``first_block`` and
``blocks.{i}`` (``i`` counts the ACTIVE blocks in order, from 0), each with ``expand.{conv,bn,act}``
(absent when the expansion is 1, i.e. in ``first_block``), ``depthwise.{conv,bn,act}``,
``se.{reduce,act,expand,gate}`` (only in SE stages; 1x1 convs with bias, reduction 4,
hard-sigmoid gate) and ``project.{conv,bn}``; then ``final_expand.{conv,bn,act}``, ``pool``,
``feature_mix.{conv,act}``, ``dropout`` and ``classifier`` (a ``Linear``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, require_torch
from hwnas.registry import closest
from hwnas.spaces import mbv3_arch
from hwnas.spaces.base import Arch, SearchSpace, whole_number
from hwnas.spaces.hooks import BlockNetwork
from hwnas.spaces.mbv3_arch import check_resolution, check_width, choices_text
from hwnas.spaces.mbv3_plan import (
    MBV3_BLOCKS,
    MBV3_DEPTHS,
    MBV3_EXPANSIONS,
    MBV3_KERNELS,
    MBV3_MAX_DEPTH,
    MBV3_STAGES,
    OFA_RESOLUTIONS,
    PRESETS,
    VECTOR_LENGTH,
    BlockPlan,
    NetworkPlan,
    Preset,
    StageSpec,
    block_network,
    make_divisible,
    network_plan,
    plan_params_macs,
)

__all__ = [
    "MBV3_BLOCKS",
    "MBV3_DEPTHS",
    "MBV3_EXPANSIONS",
    "MBV3_KERNELS",
    "MBV3_MAX_DEPTH",
    "MBV3_STAGES",
    "OFA_RESOLUTIONS",
    "PRESETS",
    "VECTOR_LENGTH",
    "BlockPlan",
    "MBV3Space",
    "NetworkPlan",
    "Preset",
    "StageSpec",
    "block_network",
    "make_divisible",
    "network_plan",
    "plan_params_macs",
]

_BLOCK = re.compile(r"k(\d+)e(\d+)")
_HEADER = re.compile(r"r(\d+)-w([0-9.]+)")


class MBV3Space(SearchSpace):
    """Once-for-All's elastic MobileNetV3 (Cai et al., ICLR 2020): per-block kernel and
    expansion, per-stage depth, resolution and width multiplier.

    Args:
        preset: ``"full"`` (OFA MobileNetV3-Large, ImageNet) or ``"small"`` (28x28 / 32x32
            inputs, trains on a CPU); the tables are in :mod:`hwnas.spaces.mbv3_plan`.
        resolutions: input sizes to search over; default OFA's 128, 132, ..., 224 (``full``) or
            ``[input_size]`` (``small``).
        input_size: shorthand for ``resolutions=[input_size]``; the ``small`` preset's default
            is 32. Give it or ``resolutions``, not both.
        widths: width multipliers to search over (OFA trained 1.0 and 1.2); default ``[1.0]``.
        in_channels: image channels (1 for MNIST).
        num_classes: classifier outputs; default 1000 (``full``) or 10 (``small``).

    Example:
        >>> space = MBV3Space(input_size=224)
        >>> space.size
        21758655492572485851
        >>> arch = space.from_string(
        ...     "r224-w1.0|k3e4,k5e6|k7e3,k3e3,k5e4|k3e3,k3e3|k5e6,k5e6,k7e4,k3e3|k7e6,k7e6")
        >>> arch["d"], arch["ks"][4:8]
        ([2, 3, 2, 4, 2], [7, 3, 5, 0])
    """

    name = "mbv3"

    def __init__(
        self,
        *,
        preset: str = "full",
        resolutions: list[int] | None = None,
        input_size: int | None = None,
        widths: list[float] | None = None,
        in_channels: int = 3,
        num_classes: int | None = None,
    ) -> None:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ConfigError(
                f"mbv3: unknown preset {preset!r}; {closest(str(preset), list(PRESETS))}"
            )
        self.preset = preset
        self._preset: Preset = PRESETS[preset]
        if resolutions is not None and input_size is not None:
            raise ConfigError(
                "mbv3: give either input_size or resolutions, not both "
                f"(got input_size={input_size!r}, resolutions={resolutions!r})"
            )
        if input_size is not None:
            resolutions = [whole_number("mbv3", "input_size", input_size)]
        elif resolutions is None:
            resolutions = list(OFA_RESOLUTIONS) if preset == "full" else [32]
        self.resolutions: tuple[int, ...] = self._distinct(
            "resolutions",
            [
                whole_number("mbv3", "a resolution", r)
                for r in self._list("resolutions", resolutions)
            ],
        )
        self.widths: tuple[float, ...] = self._distinct(
            "widths",
            [self._width(w) for w in self._list("widths", [1.0] if widths is None else widths)],
        )
        self.in_channels = whole_number("mbv3", "in_channels", in_channels)
        self.num_classes = whole_number(
            "mbv3", "num_classes", self._preset.num_classes if num_classes is None else num_classes
        )

    # -- option checks --------------------------------------------------------------------------
    @staticmethod
    def _list(name: str, value: object) -> list[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"mbv3: {name} must be a non-empty list, got {value!r}")
        return list(value)

    @staticmethod
    def _width(value: object) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(float(value))
            or float(value) <= 0
        ):
            raise ConfigError(f"mbv3: a width multiplier must be a number > 0, got {value!r}")
        return float(value)

    @staticmethod
    def _distinct(name: str, values: list[Any]) -> tuple[Any, ...]:
        if len(set(values)) != len(values):
            raise ConfigError(f"mbv3: {name} must not repeat a value, got {values!r}")
        return tuple(sorted(values))

    # -- architectures --------------------------------------------------------------------------
    def validate(self, arch: Arch) -> Arch:
        """The normalised copy of ``arch`` (inactive blocks' ``ks`` and ``e`` set to 0); a
        :class:`ConfigError` naming the first entry that is not allowed."""
        return mbv3_arch.validate(arch, **self._offered())

    def _offered(self) -> dict[str, Any]:
        return {"resolutions": self.resolutions, "widths": self.widths}

    # -- strings --------------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        a = self.validate(arch)
        stages = []
        for s, d in enumerate(a["d"]):
            idx = range(s * MBV3_MAX_DEPTH, s * MBV3_MAX_DEPTH + d)
            stages.append(",".join(f"k{a['ks'][i]}e{a['e'][i]}" for i in idx))
        return f"r{a['r']}-w{a['w']!r}|" + "|".join(stages)

    def from_string(self, text: str) -> Arch:
        raw = str(text).strip()
        parts = [p.strip() for p in raw.split("|")]
        form = "'r<resolution>-w<width>|<stage 1>|...|<stage 5>', a stage like 'k3e4,k5e6'"
        if len(parts) != MBV3_STAGES + 1:
            raise ConfigError(
                f"mbv3: expected {MBV3_STAGES} stages after the header, got "
                f"{len(parts) - 1} in {raw!r}; write {form}"
            )
        header = _HEADER.fullmatch(parts[0])
        if header is None:
            raise ConfigError(
                f"mbv3: header {parts[0]!r} must read 'r<resolution>-w<width>', e.g. "
                f"'r{self.resolutions[-1]}-w{self.widths[0]!r}'; write {form}"
            )
        try:
            width = float(header.group(2))
        except ValueError:
            raise ConfigError(f"mbv3: width {header.group(2)!r} is not a number") from None
        ks, es, depths = [0] * MBV3_BLOCKS, [0] * MBV3_BLOCKS, []
        for s, stage in enumerate(parts[1:]):
            blocks = [b.strip() for b in stage.split(",")] if stage else []
            if len(blocks) not in MBV3_DEPTHS:
                raise ConfigError(
                    f"mbv3: stage {s + 1} has {len(blocks)} blocks ({stage!r}); a stage has "
                    f"{', '.join(map(str, MBV3_DEPTHS[:-1]))} or {MBV3_DEPTHS[-1]} blocks"
                )
            depths.append(len(blocks))
            for j, block in enumerate(blocks):
                m = _BLOCK.fullmatch(block)
                if m is None:
                    raise ConfigError(
                        f"mbv3: block {block!r} (stage {s + 1} block {j + 1}) must read "
                        f"'k<kernel>e<expansion>', e.g. 'k3e4'"
                    )
                k, e = int(m.group(1)), int(m.group(2))
                for what, v, allowed in (
                    ("kernel", k, MBV3_KERNELS),
                    ("expansion", e, MBV3_EXPANSIONS),
                ):
                    if v not in allowed:
                        raise ConfigError(
                            f"mbv3: {what} {v} in block {block!r} (stage {s + 1} block {j + 1}) "
                            f"is not allowed; choose from {choices_text(allowed)}"
                        )
                ks[s * MBV3_MAX_DEPTH + j], es[s * MBV3_MAX_DEPTH + j] = k, e
        return {
            "ks": ks,
            "e": es,
            "d": depths,
            "r": check_resolution(int(header.group(1)), self.resolutions),
            "w": check_width(width, self.widths),
        }

    # -- size and operators ---------------------------------------------------------------------
    @property
    def size(self) -> int:
        per_stage = sum((len(MBV3_KERNELS) * len(MBV3_EXPANSIONS)) ** d for d in MBV3_DEPTHS)
        return per_stage**MBV3_STAGES * len(self.resolutions) * len(self.widths)

    def sample(self, rng: np.random.Generator) -> Arch:
        """Each stage's depth, each block's kernel and expansion, the resolution and the width
        drawn uniformly and independently (as OFA samples sub-networks); sub-networks with deeper
        stages are therefore rarer, one by one, than shallow ones."""
        return self.validate(mbv3_arch.sample(rng, **self._offered()))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change each choice with probability 1 / (number of choices), at least one; a changed
        value is drawn uniformly from the other values. Blocks a deeper stage activates get
        uniform kernels and expansions; blocks a shallower one drops become inactive."""
        return self.validate(mbv3_arch.mutate(self.validate(arch), rng, **self._offered()))

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each stage's depth, each block's kernel and expansion, the
        resolution and the width from either parent with probability 1/2; a block active in only
        one parent takes that parent's values."""
        return self.validate(mbv3_arch.crossover(self.validate(a), self.validate(b), rng))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture one choice away: one active block's kernel or expansion, one
        stage's depth, the resolution or the width. A deeper stage repeats its last active
        block's kernel and expansion in the blocks it adds."""
        return mbv3_arch.neighbours(self.validate(arch), **self._offered())

    # -- encodings ------------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        """The 47 integers described in the module docstring (raw kernels, expansions, depths
        and resolution; 0 for inactive blocks; the width as its index in :attr:`widths`)."""
        return mbv3_arch.encode(self.validate(arch), widths=self.widths)

    def decode(self, vector: np.ndarray | list[int]) -> Arch:
        arch = mbv3_arch.decode(vector, widths=self.widths)
        try:
            return self.validate(arch)
        except ConfigError as err:
            raise ConfigError(
                f"{err} (in an encoded vector: entries 0-19 ks, 20-39 e, 40-44 d, 45 r)"
            ) from None

    def one_hot(self, arch: Arch) -> np.ndarray:
        """One-hot features: per block 4 kernel and 4 expansion columns (inactive first), per
        stage 3 depth columns, then one column per resolution and per width."""
        return mbv3_arch.one_hot(self.validate(arch), **self._offered())

    def active_mask(self, arch: Arch) -> np.ndarray:
        """Which entries of :meth:`encode` are live choices of ``arch``: the kernels and
        expansions of its active blocks, every depth, the resolution and the width (False only
        for blocks beyond their stage's depth, which encode as 0)."""
        return mbv3_arch.active_mask(self.validate(arch))

    # -- networks -------------------------------------------------------------------------------
    def plan(self, arch: Arch) -> NetworkPlan:
        """Every layer width of ``arch``'s sub-network (after the width multiplier)."""
        return network_plan(
            self._preset,
            self.validate(arch),
            in_channels=self.in_channels,
            num_classes=self.num_classes,
        )

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        """``params_m`` (millions of parameters of the built network) and ``flops_m`` (millions
        of conv and linear multiply-accumulates at the arch's resolution)."""
        params, macs = plan_params_macs(self.plan(arch))
        return {"params_m": params / 1e6, "flops_m": macs / 1e6}

    def cheap_metric_names(self) -> tuple[str, ...]:
        return ("params_m", "flops_m")

    def mcu_network(self) -> Callable[[Arch], BlockNetwork]:
        """:meth:`block_network`: the closed-form MCU memory model reads an arch's plan."""
        return self.block_network

    def block_network(self, arch: Arch) -> BlockNetwork:
        """``arch``'s sub-network as the closed-form MCU memory model reads it, at the arch's own
        resolution (:func:`~hwnas.spaces.mbv3_plan.block_network` of its plan)."""
        return block_network(self.plan(arch))

    def build_network(self, arch: Arch) -> Any:
        """The sub-network of ``arch`` as a standalone ``torch.nn.Module`` (only its active
        blocks; module names in the module docstring)."""
        require_torch("building MobileNetV3 (mbv3) networks")
        from hwnas.spaces.mbv3_torch import build_mbv3_network

        return build_mbv3_network(self.plan(arch))

    def input_shape_for(self, arch: Arch) -> tuple[int, int, int]:
        """Shape of one input sample of ``arch``'s network: (channels, r, r)."""
        r = self.validate(arch)["r"]
        return (self.in_channels, r, r)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input shape at the largest resolution; :meth:`input_shape_for` gives an arch's own."""
        r = self.resolutions[-1]
        return (self.in_channels, r, r)
