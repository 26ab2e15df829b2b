"""Architecture parameters of a relaxed space and the per-forward samples each method draws.

One logit vector per slot (initialised at ``1e-3 * N(0, 1)`` as in DARTS), optionally one logit
per slot for PC-DARTS's edge normalisation (a softmax over the edges into the same node). The
modes (:data:`hwnas.oneshot.relax.methods.MODES`):

* ``softmax`` / ``partial``: every choice, weighted by ``softmax(alpha)`` (DARTS, PC-DARTS;
  sharpDARTS's max-W turns the weights into ``1 - max(w) + w``);
* ``gumbel_hard``: one choice per slot by Gumbel top-1, straight-through weights (GDAS); with
  ``inactive_grad`` every weight of a slot gets a gradient (see
  :class:`~hwnas.oneshot.relax.nb201_net.ArchSample`), else the sampled one's alone;
* ``gumbel_soft``: every choice, weighted by a Gumbel-softmax sample (FBNet);
* ``binary``: ProxylessNAS's binarized paths: one choice sampled from ``softmax(alpha)`` for a
  weight step; for an architecture step two distinct choices, one of them active by their
  renormalised probabilities, with straight-through gates whose gradient is BinaryConnect's
  ``dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)`` over the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hwnas.oneshot.relax.formulas import gumbel_softmax_sample, max_w_weights
from hwnas.oneshot.relax.nb201_net import ArchSample


class ArchParams(nn.Module):
    """The architecture logits: ``alpha[i]`` per slot, ``beta`` per slot when edges are
    normalised over ``groups`` (lists of slots that feed the same node)."""

    def __init__(
        self,
        choices: Sequence[int],
        *,
        generator: torch.Generator,
        groups: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        self.alpha = nn.ParameterList(
            nn.Parameter(1e-3 * torch.randn(n, generator=generator)) for n in choices
        )
        self.groups = [list(g) for g in groups] if groups is not None else None
        self.beta = (
            nn.Parameter(1e-3 * torch.randn(len(choices), generator=generator))
            if groups is not None
            else None
        )

    def probs(self) -> list[torch.Tensor]:
        """``softmax(alpha)`` per slot."""
        return [torch.softmax(a, dim=-1) for a in self.alpha]

    def edge_norm(self) -> list[torch.Tensor] | None:
        """Per slot, its weight among the slots into the same node (None without groups)."""
        if self.beta is None or self.groups is None:
            return None
        out: list[torch.Tensor | None] = [None] * len(self.alpha)
        for group in self.groups:
            w = torch.softmax(self.beta[group], dim=-1)
            for pos, slot in enumerate(group):
                out[slot] = w[pos]
        return [w for w in out if w is not None]


def draw(
    mode: str,
    params: ArchParams,
    *,
    generator: torch.Generator,
    tau: float = 1.0,
    for_arch: bool = False,
    max_w: bool = False,
    inactive_grad: bool = False,
) -> tuple[ArchSample, list[torch.Tensor]]:
    """One forward's :class:`ArchSample` and the per-slot weights its hardware cost is taken
    over (``softmax(alpha)``; the Gumbel sample itself for ``gumbel_soft``, as FBNet does)."""
    probs = params.probs()
    if mode in ("softmax", "partial"):
        weights = [max_w_weights(p) for p in probs] if max_w else probs
        norm = params.edge_norm() if mode == "partial" else None
        return ArchSample(weights=weights, edge_norm=norm), probs
    if mode in ("gumbel_hard", "gumbel_soft"):
        hard = mode == "gumbel_hard"
        weights, active = [], []
        for a in params.alpha:
            w, index = gumbel_softmax_sample(a, tau, generator, hard=hard)
            weights.append(w)
            active.append([int(index)])
        if hard:
            return ArchSample(weights=weights, active=active, inactive_grad=inactive_grad), probs
        return ArchSample(weights=weights), weights
    if mode == "binary":
        return _binary(params, probs, generator, for_arch), probs
    raise ValueError(f"unknown mode {mode!r}")


def _binary(
    params: ArchParams, probs: list[torch.Tensor], generator: torch.Generator, for_arch: bool
) -> ArchSample:
    weights, active = [], []
    for a, p in zip(params.alpha, probs):
        n = a.shape[0]
        if not for_arch or n < 2:
            j = int(torch.multinomial(p.detach(), 1, generator=generator))
            weights.append(torch.zeros(n).index_fill_(0, torch.tensor([j]), 1.0))
            active.append([j])
            continue
        two = torch.multinomial(p.detach(), 2, replacement=False, generator=generator)
        q = torch.softmax(a[two], dim=-1)
        pick = int(torch.multinomial(q.detach(), 1, generator=generator))
        gate = torch.zeros(2).index_fill_(0, torch.tensor([pick]), 1.0) + (q - q.detach())
        weights.append(torch.zeros(n).index_put((two,), gate))
        active.append([int(i) for i in two])
    return ArchSample(weights=weights, active=active)
