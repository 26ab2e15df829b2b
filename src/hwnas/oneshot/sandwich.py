"""Training a supernet through :func:`hwnas.training.fit`: the sandwich rule of BigNAS (Yu et
al., ECCV 2020) with in-place distillation, and the phases of Once-for-All's progressive
shrinking (Cai et al., ICLR 2020).

:class:`SandwichStep` is a ``step`` for :func:`~hwnas.training.fit`. Per batch it trains

1. the largest sub-network on the hard labels (the loop's criterion: cross-entropy with label
   smoothing),
2. the smallest sub-network and
3. ``num_random`` sub-networks drawn uniformly,

the last two by in-place distillation: their target is the largest network's softmax output on
the same batch, detached (BigNAS section 3.1). Each sub-network does its own forward and
backward, so gradients add up over the sandwich; the loop zeroes them before and takes one
optimizer step after.

Which dimensions are elastic depends on the phase (OFA's progressive shrinking order):
``"largest"`` trains the largest network alone; ``"kernel"`` samples kernels and the resolution;
``"depth"`` adds depths; ``"expand"`` adds expansions and the width multiplier, as does
``"all"`` (plain sandwich training, every dimension at once). Dimensions not yet elastic stay at
their largest value, and the "smallest" sub-network of a phase is smallest only in its elastic
dimensions.

Determinism: the loop cannot save a generator owned by the step, so the sub-networks of a batch
are drawn from ``numpy.random.default_rng([seed, t])``, ``t`` being the number of sandwich steps
the supernet has taken, which it keeps in its ``sample_step`` buffer. The buffer is part of the
model's state dict, so the training checkpoint stores it and a resumed run draws exactly the
sub-networks the uninterrupted run would have.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.supernet import MBV3Supernet, largest_arch, smallest_arch
from hwnas.registry import closest
from hwnas.spaces.base import Arch
from hwnas.spaces.mbv3 import MBV3_MAX_DEPTH, MBV3Space
from hwnas.training import StepOutput

PHASES: tuple[str, ...] = ("largest", "kernel", "depth", "expand")
DISTILL: tuple[str, ...] = ("kl", "soft_ce")
_ELASTIC: dict[str, tuple[str, ...]] = {
    "largest": (),
    "kernel": ("ks", "r"),
    "depth": ("ks", "d", "r"),
    "expand": ("ks", "d", "e", "r", "w"),
    "all": ("ks", "d", "e", "r", "w"),
}


class SubnetSampler:
    """The largest, smallest and random sub-networks of one training phase.

    Args:
        space: the ``mbv3`` space.
        phase: ``"all"`` or one of :data:`PHASES` (which dimensions are elastic).
    """

    def __init__(self, space: MBV3Space, phase: str = "all") -> None:
        if phase not in _ELASTIC:
            raise ConfigError(
                f"unknown supernet phase {phase!r}; {closest(str(phase), list(_ELASTIC))}"
            )
        self.space, self.phase = space, phase
        self.elastic = _ELASTIC[phase]
        self.largest = largest_arch(space)
        smallest = smallest_arch(space)
        # Unnormalised, so blocks kept active in a phase without elastic depth get kernel 3 and
        # expansion 3 too.
        small = {
            "ks": [min(v for v in smallest["ks"] if v)] * len(smallest["ks"]),
            "e": [min(v for v in smallest["e"] if v)] * len(smallest["e"]),
            "d": smallest["d"],
            "r": smallest["r"],
            "w": smallest["w"],
        }
        self.smallest = space.validate(self._mix(small))

    def _mix(self, values: Arch) -> Arch:
        """The largest arch with the elastic dimensions taken from ``values``."""
        out = {k: list(v) if isinstance(v, list) else v for k, v in self.largest.items()}
        for key in self.elastic:
            out[key] = list(values[key]) if isinstance(values[key], list) else values[key]
        if "d" in self.elastic:
            return out
        # A stage at full depth needs a kernel and expansion for every block.
        for key in ("ks", "e"):
            out[key] = [v or m for v, m in zip(out[key], self.largest[key])]
        return out

    def sample(self, rng: np.random.Generator) -> Arch:
        """A sub-network with its elastic dimensions drawn uniformly (as OFA samples)."""
        drawn = self.space.sample(rng)
        if "d" not in self.elastic:
            # space.sample zeroes blocks beyond the drawn depths; redraw them for depth 4.
            drawn = {**drawn, "ks": list(drawn["ks"]), "e": list(drawn["e"])}
            for i in range(len(drawn["ks"])):
                if i % MBV3_MAX_DEPTH >= drawn["d"][i // MBV3_MAX_DEPTH]:
                    drawn["ks"][i] = self.largest["ks"][i]
                    drawn["e"][i] = self.largest["e"][i]
        return self.space.validate(self._mix(drawn))


def distill_loss(student: torch.Tensor, soft: torch.Tensor, kind: str = "kl") -> torch.Tensor:
    """In-place distillation loss of ``student`` logits against teacher probabilities ``soft``:
    ``"kl"`` is KL(teacher || student), ``"soft_ce"`` the cross-entropy with soft targets
    (OFA's ``cross_entropy_loss_with_soft_target``); both give the same gradients."""
    log_q = F.log_softmax(student, dim=1)
    if kind == "kl":
        return F.kl_div(log_q, soft, reduction="batchmean")
    if kind == "soft_ce":
        return -(soft * log_q).sum(dim=1).mean()
    raise ConfigError(f"unknown distillation {kind!r}; {closest(str(kind), DISTILL)}")


class SandwichStep:
    """The sandwich rule as a ``step`` for :func:`hwnas.training.fit`.

    Args:
        space: the supernet's space.
        phase: ``"all"`` (default, BigNAS) or a progressive-shrinking phase of :data:`PHASES`.
        num_random: random sub-networks per batch besides the largest and smallest (BigNAS: 2).
        distill: ``"kl"`` or ``"soft_ce"`` (see :func:`distill_loss`).
        seed: seeds the sub-network draws together with the supernet's step count.

    The returned :class:`~hwnas.training.StepOutput` carries the largest network's loss and
    correct count (so the epoch's training loss and accuracy are the largest network's), or a
    sub-network's loss if that one is not finite, so the loop stops on divergence. The supernet
    is left with its largest sub-network active, which the loop's per-epoch evaluation scores.

    Example:
        >>> from hwnas.spaces import create_space
        >>> from hwnas.training import TrainConfig, fit
        >>> space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
        >>> net = MBV3Supernet(space)
        >>> x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
        >>> fit(net, (x, y), config=TrainConfig(epochs=1, batch_size=8),
        ...     step=SandwichStep(space)).epochs_run
        1
    """

    def __init__(
        self,
        space: MBV3Space,
        *,
        phase: str = "all",
        num_random: int = 2,
        distill: str = "kl",
        seed: int = 0,
    ) -> None:
        if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
            raise ConfigError(f"sandwich: num_random must be an integer >= 0, got {num_random!r}")
        if distill not in DISTILL:
            raise ConfigError(
                f"sandwich: unknown distill {distill!r}; {closest(str(distill), DISTILL)}"
            )
        self.sampler = SubnetSampler(space, phase)
        self.phase, self.num_random, self.distill, self.seed = phase, num_random, distill, seed

    def archs(self, step: int) -> list[Arch]:
        """The sub-networks of sandwich step ``step`` (from 0): the largest first."""
        if self.phase == "largest":
            return [self.sampler.largest]
        rng = np.random.default_rng([self.seed, step])
        drawn = [self.sampler.sample(rng) for _ in range(self.num_random)]
        return [self.sampler.largest, self.sampler.smallest, *drawn]

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: nn.Module
    ) -> StepOutput:
        if not isinstance(model, MBV3Supernet):
            raise ConfigError(f"SandwichStep trains an MBV3Supernet, got {type(model).__name__}")
        archs = self.archs(int(model.sample_step))
        model.sample_step.add_(1)
        model.set_active(archs[0])
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        reported: Any = float(loss.detach())
        correct = int((logits.detach().argmax(dim=1) == y).sum())
        soft = F.softmax(logits.detach(), dim=1)
        try:
            for arch in archs[1:]:
                model.set_active(arch)
                kd = distill_loss(model(x), soft, self.distill)
                kd.backward()
                value = float(kd.detach())
                if not math.isfinite(value) and math.isfinite(reported):
                    reported = value
        finally:
            model.set_active(archs[0])
        return StepOutput(reported, correct, int(y.shape[0]))
