"""How the ``mbv3`` space is relaxed: its slots, the architecture a choice of every slot is, the
derived top-k, and the additive cost over blocks that may be switched off.

Slots: one per block (20; the 9 choices ``k3e3 .. k7e6``), then one per stage for its depth
(5; ``depth 2``, ``depth 3``, ``depth 4``). The resolution and width multiplier are held fixed
(the ``resolution`` and ``width`` options; default the space's largest resolution and width 1.0,
or the offered width nearest it). The network is :mod:`hwnas.oneshot.relax.mbv3_net`.

Derivation: the argmax of every slot first (blocks beyond the argmax depth are inactive), then
the next architectures by the probability of their most probable slot assignment. Slots of
inactive blocks do not change the architecture, so a plain beam over all 25 slots
(:func:`~hwnas.oneshot.relax.derive.top_k`) would repeat it; :func:`derive` ranks each stage's
(depth, active blocks) options, each scored with its inactive blocks at their argmax, and beams
over the stages, so the ``k`` architectures are distinct and exactly the best ``k``.

Cost: a block beyond its stage's depth is ``off``, so with ``off`` an extra choice of the blocks
a depth can drop (the third and fourth of each stage) the space's cost is a sum over blocks:
exactly, for FLOPs at a fixed resolution and width (a block's input and output shapes do not
depend on the other blocks' choices). Under the relaxed distribution the choice of block ``b``
(block ``j`` of stage ``s``, from 0) is ``off`` with probability ``sum_{d <= j} p_s(d)`` and
``c`` with ``P(on_b) * p_b(c)``, ``P(on_b) = sum_{d > j} p_s(d)``; :func:`cost_weights` turns the
slot weights into these, and the expected cost stays exact (linear in each slot's weights).
A fit reads 400 rows unless the cost spec says otherwise (:data:`DEFAULT_ROWS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.relax.cost_model import CostSlots
from hwnas.oneshot.relax.derive import top_k
from hwnas.oneshot.relax.mbv3_net import BLOCK_PAIRS, RelaxedMBV3
from hwnas.oneshot.relax.methods import MethodSettings
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.spaces.mbv3 import MBV3Space
from hwnas.spaces.mbv3_plan import MBV3_BLOCKS, MBV3_DEPTHS, MBV3_MAX_DEPTH, MBV3_STAGES

BLOCK_CHOICES: tuple[str, ...] = tuple(f"k{k}e{e}" for k, e in BLOCK_PAIRS)
DEPTH_CHOICES: tuple[str, ...] = tuple(f"depth {d}" for d in MBV3_DEPTHS)
OFF = "off"
SLOT_NAMES: tuple[str, ...] = tuple(
    f"stage {s + 1} block {j + 1}" for s in range(MBV3_STAGES) for j in range(MBV3_MAX_DEPTH)
) + tuple(f"stage {s + 1} depth" for s in range(MBV3_STAGES))
MIN_DEPTH = min(MBV3_DEPTHS)
OPTIONS: tuple[str, ...] = ("resolution", "width")
# A fit has 171 free coefficients (10 blocks x 8 + 10 x 9 + 1); with 200 rows its 5-fold CV
# trains on 160 and the full preset's held-out FLOPs were off by up to 9.7 %; with 400 rows
# they were exact (max relative error 8e-16, seed 0, 200 held-out archs, r = 224 and 160).
DEFAULT_ROWS = 400


def _mbv3(space: SearchSpace) -> MBV3Space:
    if not isinstance(space, MBV3Space):
        raise ConfigError(f"the mbv3 relaxation needs the mbv3 space, got {space.name!r}")
    return space


def fixed_size(space: SearchSpace, settings: MethodSettings) -> tuple[int, float]:
    """The resolution and width multiplier the search holds fixed; ConfigError when the space
    does not offer them."""
    sp = _mbv3(space)
    r = sp.resolutions[-1] if settings.resolution is None else settings.resolution
    if r not in sp.resolutions:
        raise ConfigError(
            f"{settings.method}: resolution {r} is not offered by the mbv3 space; choose one of "
            f"{', '.join(map(str, sp.resolutions))} (or widen the space's resolutions)"
        )
    w = (
        min(sp.widths, key=lambda v: (abs(v - 1.0), v))
        if settings.width is None
        else settings.width
    )
    if float(w) not in sp.widths:
        raise ConfigError(
            f"{settings.method}: width {w!r} is not offered by the mbv3 space; choose one of "
            f"{', '.join(map(repr, sp.widths))} (or widen the space's widths)"
        )
    return int(r), float(w)


def check(space: SearchSpace, settings: MethodSettings) -> None:
    """Refuse a resolution or width the space does not offer."""
    fixed_size(space, settings)


def build(space: SearchSpace, s: MethodSettings, num_classes: int, in_channels: int) -> nn.Module:
    """The search network (the settings' ``channels`` and ``cells`` do not apply)."""
    r, w = fixed_size(space, s)
    return RelaxedMBV3(
        preset=_mbv3(space).preset,
        resolution=r,
        width=w,
        in_channels=in_channels,
        num_classes=num_classes,
    )


def slot_choices(space: SearchSpace) -> list[list[str]]:
    """Per slot, its choice names: 20 blocks, then 5 depths."""
    return [list(BLOCK_CHOICES)] * MBV3_BLOCKS + [list(DEPTH_CHOICES)] * MBV3_STAGES


def to_arch(space: SearchSpace, settings: MethodSettings, picks: Sequence[int]) -> Arch:
    """The normalised architecture of one choice per slot (inactive blocks 0)."""
    if len(picks) != len(SLOT_NAMES):
        raise ConfigError(f"mbv3 relaxation: expected {len(SLOT_NAMES)} choices, got {len(picks)}")
    r, w = fixed_size(space, settings)
    depths = [MBV3_DEPTHS[int(i)] for i in picks[MBV3_BLOCKS:]]
    ks, es = [0] * MBV3_BLOCKS, [0] * MBV3_BLOCKS
    for b in range(MBV3_BLOCKS):
        s, j = divmod(b, MBV3_MAX_DEPTH)
        if j < depths[s]:
            ks[b], es[b] = BLOCK_PAIRS[int(picks[b])]
    return _mbv3(space).validate({"ks": ks, "e": es, "d": depths, "r": r, "w": w})


def derive(
    space: SearchSpace, settings: MethodSettings, probs: Sequence[np.ndarray], k: int
) -> list[tuple[int, ...]]:
    """The ``k`` best distinct architectures as slot choices, the per-slot argmax first (see the
    module docstring); inactive blocks hold their argmax."""
    stages: list[list[tuple[float, int, tuple[int, ...]]]] = []
    for s in range(MBV3_STAGES):
        block_p = [
            np.asarray(probs[s * MBV3_MAX_DEPTH + j], dtype=float) for j in range(MBV3_MAX_DEPTH)
        ]
        depth_p = np.asarray(probs[MBV3_BLOCKS + s], dtype=float)
        best = [int(np.argmax(p)) for p in block_p]
        options = []
        for di, d in enumerate(MBV3_DEPTHS):
            rest = math.prod(float(block_p[j][best[j]]) for j in range(d, MBV3_MAX_DEPTH))
            for t in top_k(block_p[:d], k):
                p = float(depth_p[di]) * rest
                p *= math.prod(float(block_p[j][c]) for j, c in enumerate(t))
                options.append((p, di, (*t, *best[d:])))
        options.sort(key=lambda o: (-o[0], o[1], o[2]))
        stages.append(options[:k])
    out = []
    for pick in top_k([np.array([o[0] for o in opts]) for opts in stages], k):
        blocks: list[int] = []
        depths: list[int] = []
        for s, i in enumerate(pick):
            _, di, t = stages[s][i]
            blocks += t
            depths.append(di)
        out.append((*blocks, *depths))
    return out


def cost_slots(space: SearchSpace, settings: MethodSettings) -> CostSlots:
    """One cost slot per block: its 9 choices, ``off`` first for the blocks a depth can drop.
    Fitting rows are the space's samples at the fixed resolution and width."""
    sp = _mbv3(space)
    r, w = fixed_size(space, settings)
    choices = tuple(
        BLOCK_CHOICES if b % MBV3_MAX_DEPTH < MIN_DEPTH else (OFF, *BLOCK_CHOICES)
        for b in range(MBV3_BLOCKS)
    )

    def names(arch: Arch) -> list[str]:
        a = sp.validate(arch)
        if (a["r"], a["w"]) != (r, w):
            raise ConfigError(
                f"mbv3 cost slots: the cost is for resolution {r} and width {w!r}, got "
                f"{a['r']} and {a['w']!r}"
            )
        return [OFF if k == 0 else f"k{k}e{e}" for k, e in zip(a["ks"], a["e"])]

    def sample(rng: np.random.Generator) -> Arch:
        return sp.validate({**sp.sample(rng), "r": r, "w": w})

    per_stage = sum(len(BLOCK_CHOICES) ** d for d in MBV3_DEPTHS)
    return CostSlots(
        space=sp.name,
        choices=choices,
        names=names,
        sample=sample,
        size=per_stage**MBV3_STAGES,
        default_rows=DEFAULT_ROWS,
    )


def cost_weights(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per block, the weights of its cost slot's choices (``off`` first where it can be off)
    from the 25 slot weights (see the module docstring)."""
    out = []
    for b in range(MBV3_BLOCKS):
        s, j = divmod(b, MBV3_MAX_DEPTH)
        if j < MIN_DEPTH:
            out.append(weights[b])
            continue
        depth = weights[MBV3_BLOCKS + s]
        off = sum(depth[i] for i, d in enumerate(MBV3_DEPTHS) if d <= j)
        on = sum(depth[i] for i, d in enumerate(MBV3_DEPTHS) if d > j)
        out.append(torch.cat([torch.as_tensor(off).reshape(1), on * weights[b]]))
    return out
