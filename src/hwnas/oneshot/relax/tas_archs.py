"""TAS's architectures over the ``resnet`` space, without torch: the networks derived from the
width and depth distributions (:func:`derive_archs`, :func:`derive_at_flops`), the uniform-width
pruning baseline (:func:`uniform_arch`, :func:`uniform_at_flops`) and the space check the TAS
code shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.oneshot.relax.derive import into_band, top_k
from hwnas.spaces.base import Arch
from hwnas.spaces.resnet import ResNetSpace


def uniform_arch(space: ResNetSpace, ratio: float) -> Arch:
    """The uniform-width pruning baseline: every layer at ``ratio`` (one of the space's ratios),
    every stage at full depth."""
    check_space(space)
    number = isinstance(ratio, (int, float)) and not isinstance(ratio, bool)
    percent = round(float(ratio) * 100) if number else None
    if percent not in space.percents or abs(percent / 100 - ratio) > 1e-9:
        shown = ", ".join(f"{r:g}" for r in space.ratios)
        raise ConfigError(
            f"uniform_arch: ratio {ratio!r} is not one of the space's ratios ({shown})"
        )
    width = f"w{percent}"
    ops = [space.depth_choices[-1] if c == space.depth_choices else width for c in space.slots]
    return {"ops": ops}


def uniform_at_flops(space: ResNetSpace, flops_m: float) -> Arch:
    """The uniform-width arch at the largest of the space's ratios whose FLOPs are at most
    ``flops_m`` (MMACs); a space with finer ``ratios`` matches FLOPs more closely."""
    check_space(space)
    for ratio in reversed(space.ratios):
        arch = uniform_arch(space, ratio)
        if space.cheap_metrics(arch)["flops_m"] <= flops_m + 1e-12:
            return arch
    least = space.cheap_metrics(uniform_arch(space, space.ratios[0]))["flops_m"]
    raise ConfigError(
        f"uniform_at_flops: no uniform width fits {flops_m:g} MFLOPs; the smallest ratio "
        f"{space.ratios[0]:g} needs {least:g}; raise flops_m or give the space smaller ratios"
    )


def derive_archs(
    space: ResNetSpace, probs: Sequence[Sequence[float]], alternatives: int
) -> list[Arch]:
    """The argmax architecture, then up to ``alternatives`` other networks by joint probability.

    A network's probability is that of its depths and of the widths of its present blocks
    (widths of blocks past a stage's depth do not change it, and are set to their argmax), so no
    two results build the same network. Stages are independent factors: the best networks come
    from merging each stage's best (depth, widths) candidates.
    """
    p = [np.asarray(row, dtype=float) for row in probs]
    best = [int(np.argmax(row)) for row in p]
    k = alternatives + 1

    def logp(slot: int, choice: int) -> float:
        return math.log(max(float(p[slot][choice]), 1e-300))

    merged: list[tuple[float, dict[int, int]]] = [
        (logp(0, c[0]), {0: c[0]}) for c in top_k([p[0]], k)
    ]
    for depth_slot, pairs in space.stage_slots:
        stage: list[tuple[float, dict[int, int]]] = []
        for d in range(space.blocks):
            active = [slot for pair in pairs[: d + 1] for slot in pair]
            for choice in top_k([p[s] for s in active], k):
                score = logp(depth_slot, d) + sum(logp(s, c) for s, c in zip(active, choice))
                stage.append((score, {depth_slot: d, **dict(zip(active, choice))}))
        stage.sort(key=lambda item: -item[0])
        pairs_ = [(a + b, {**da, **db}) for a, da in merged for b, db in stage[:k]]
        pairs_.sort(key=lambda item: -item[0])
        merged = pairs_[:k]
    out = [space.decode(best)]
    for _, chosen in merged:
        codes = list(best)
        for slot, c in chosen.items():
            codes[slot] = c
        arch = space.decode(codes)
        if arch not in out and len(out) <= alternatives:
            out.append(arch)
    return out


def derive_at_flops(
    space: ResNetSpace, probs: Sequence[Sequence[float]], target_m: float, tolerance: float
) -> Arch:
    """The argmax network moved into the FLOPs band ``target_m * (1 +- tolerance)`` by the
    changes that cost the least log-probability per MMAC.

    From the argmax, while the network is above the band, the one-slot change (width or depth)
    that lowers its FLOPs at the least loss of log-probability per MMAC saved is made; then, while
    it is below the band, the change that raises its FLOPs without leaving the band at the least
    loss per MMAC gained. A band no network reaches gives the closest network found.
    """
    check_space(space)
    p = [np.asarray(row, dtype=float) for row in probs]

    def flops(codes: tuple[int, ...]) -> float:
        return float(space.cheap_metrics(space.decode(list(codes)))["flops_m"])

    argmax = [int(np.argmax(row)) for row in p]
    codes = into_band(p, argmax, flops, target_m * (1 - tolerance), target_m * (1 + tolerance))
    return space.decode(list(codes))


def check_space(space: object) -> None:
    if not isinstance(space, ResNetSpace):
        name = getattr(space, "name", type(space).__name__)
        raise ConfigError(f"tas: needs the 'resnet' space, got {name!r}")
