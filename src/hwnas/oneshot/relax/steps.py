"""One training step of each method: the weights' step, the architecture's step (first order,
DARTS's unrolled second order, ProxylessNAS's binarized paths), RARTS's coupled step, and the
hardware term every architecture loss adds.

The loop (:mod:`hwnas.oneshot.relax.search`) owns the data, the schedules and the checkpoints; a
:class:`StepContext` hands a step everything it touches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hwnas.oneshot.relax.arch import ArchParams, draw
from hwnas.oneshot.relax.cost import SlotCost
from hwnas.oneshot.relax.formulas import fbnet_loss, proxyless_loss
from hwnas.oneshot.relax.methods import MethodSettings

# log(LAT) must stay positive in FBNet's and ProxylessNAS's mul#log losses.
_LOG_FLOOR = 1.0 + 1e-3


@dataclass
class StepContext:
    """What the steps of one search share."""

    settings: MethodSettings
    net: nn.Module
    params: ArchParams
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    generator: torch.Generator
    cost: SlotCost | None
    latency_weight: float
    reference: float  # the cost a run is measured against (the target, or the uniform mixture)
    net_y: nn.Module | None = None  # RARTS's second network
    y_opt: torch.optim.Optimizer | None = None
    tau: float = 1.0
    lr: float = 0.0
    # per-slot weights -> per cost slot (the relaxation's; the same slots for nb201 and fbnet)
    cost_weights: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] = list

    def sample(self, *, for_arch: bool) -> tuple[object, list[torch.Tensor]]:
        s = self.settings
        return draw(
            s.mode,
            self.params,
            generator=self.generator,
            tau=self.tau,
            for_arch=for_arch,
            max_w=s.max_w,
            inactive_grad=s.gradient == "all",
        )


def hardware_loss(ctx: StepContext, ce: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """``ce`` with the method's hardware term over the expected cost under ``weights`` (per
    slot; the relaxation's ``cost_weights`` turns them into the cost slots' weights)."""
    s, cost = ctx.settings, ctx.cost
    if cost is None:
        return ce
    expected = cost.expected(ctx.cost_weights(weights))
    lw = ctx.latency_weight
    if s.method == "fbnet":
        loss = torch.as_tensor(fbnet_loss(ce, expected.clamp(min=_LOG_FLOOR), a=s.a, b=lw))
    elif s.method == "proxyless":
        lat = expected.clamp(min=_LOG_FLOOR) if s.form == "mul#log" else expected
        loss = torch.as_tensor(
            proxyless_loss(ce, lat, ctx.reference, form=s.form, alpha=s.a, beta=lw, lam=lw)
        )
    else:
        loss = ce + lw * expected / ctx.reference
    if s.target is not None:
        at = expected if s.target_cost in (None, "expected") else argmax_cost(ctx)
        loss = loss + s.target_weight * torch.relu(at / s.target - 1.0)
    return loss


def argmax_cost(ctx: StepContext) -> torch.Tensor:
    """The cost of the architecture probabilities' argmax, straight-through: the value is the
    argmax network's cost, the gradient that of the expected cost at the probabilities."""
    assert ctx.cost is not None
    hard = []
    for p in ctx.params.probs():
        one_hot = torch.zeros_like(p).scatter_(-1, p.argmax(-1, keepdim=True), 1.0)
        hard.append(one_hot + p - p.detach())
    return ctx.cost.expected(ctx.cost_weights(hard))


def _ce(
    net: nn.Module, sample: object, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, int]:
    logits = net(x, sample)
    return nn.functional.cross_entropy(logits, y), int((logits.detach().argmax(1) == y).sum())


def weight_step(ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """One SGD step of the network weights on a training batch; returns (loss, correct)."""
    ctx.w_opt.zero_grad(set_to_none=True)
    sample, _ = ctx.sample(for_arch=False)
    loss, correct = _ce(ctx.net, _detached(sample), x, y)
    if ctx.net_y is not None:  # RARTS: w is pulled toward y
        loss = loss + ctx.settings.coupling / 2 * _distance(ctx.net, ctx.net_y)
    loss.backward()
    _clip(ctx.net, ctx.settings.grad_clip)
    ctx.w_opt.step()
    return float(loss.detach()), correct


def arch_step(ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> float:
    """One Adam step of the architecture weights on an architecture batch (first order)."""
    ctx.a_opt.zero_grad(set_to_none=True)
    sample, weights = ctx.sample(for_arch=True)
    ce, _ = _ce(ctx.net, sample, x, y)
    loss = hardware_loss(ctx, ce, weights)
    loss.backward()
    ctx.a_opt.step()
    ctx.net.zero_grad(set_to_none=True)
    return float(loss.detach())


def unrolled_arch_step(
    ctx: StepContext, xt: torch.Tensor, yt: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
) -> float:
    """DARTS's second-order step (Liu et al., ICLR 2019, eq. 7-8): the architecture gradient at
    the weights after one virtual SGD step ``w' = w - xi * grad_w L_train`` (``xi`` the current
    weight lr, momentum left out), minus ``xi`` times the Hessian-vector product, taken by finite
    differences at ``w +- eps * grad_w' L_val`` with ``eps = 0.01 / ||grad_w' L_val||``."""
    net, arch = ctx.net, list(ctx.params.parameters())
    weights = [p for p in net.parameters() if p.requires_grad]
    xi, wd = ctx.lr, ctx.settings.weight_decay
    backup = [p.detach().clone() for p in weights]
    sample, _ = ctx.sample(for_arch=True)
    loss_t, _ = _ce(net, _detached(sample), xt, yt)
    grads = torch.autograd.grad(loss_t, weights, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(weights, grads):
            if g is not None:
                p.sub_(xi * (g + wd * p))
    sample, cw = ctx.sample(for_arch=True)
    ce, _ = _ce(net, sample, xa, ya)
    loss_v = hardware_loss(ctx, ce, cw)
    both = torch.autograd.grad(loss_v, arch + weights, allow_unused=True)
    d_arch, d_w = both[: len(arch)], both[len(arch) :]
    norm = math.sqrt(sum(float((g**2).sum()) for g in d_w if g is not None))
    eps = 0.01 / max(norm, 1e-12)

    def train_grad(sign: float) -> tuple[torch.Tensor | None, ...]:
        with torch.no_grad():
            for p, b, g in zip(weights, backup, d_w):
                p.copy_(b if g is None else b + sign * eps * g)
        s, _ = ctx.sample(for_arch=True)
        loss, _ = _ce(net, s, xt, yt)
        return torch.autograd.grad(loss, arch, allow_unused=True)

    plus, minus = train_grad(1.0), train_grad(-1.0)
    with torch.no_grad():
        for p, b in zip(weights, backup):
            p.copy_(b)
    ctx.a_opt.zero_grad(set_to_none=True)
    for a, d, gp, gm in zip(arch, d_arch, plus, minus):
        g = torch.zeros_like(a) if d is None else d.clone()
        if gp is not None and gm is not None:
            g -= xi * (gp - gm) / (2 * eps)
        a.grad = g
    ctx.a_opt.step()
    net.zero_grad(set_to_none=True)
    return float(loss_v.detach())


def rarts_steps(
    ctx: StepContext,
    xt: torch.Tensor,
    yt: torch.Tensor,
    xa: torch.Tensor,
    ya: torch.Tensor,
    *,
    train_arch: bool,
) -> tuple[float, int]:
    """RARTS's Gauss-Seidel round: ``w`` on ``L_train + c/2 ||w - y||^2``, then ``y`` on
    ``lambda * L_val + c/2 ||w - y||^2``, then the architecture on
    ``L_train(w) + lambda * L_val(y)`` plus the hardware term (Xin et al., 2021; first order)."""
    assert ctx.net_y is not None and ctx.y_opt is not None
    s = ctx.settings
    loss_w, correct = weight_step(ctx, xt, yt)
    ctx.y_opt.zero_grad(set_to_none=True)
    sample, _ = ctx.sample(for_arch=False)
    ce_y, _ = _ce(ctx.net_y, _detached(sample), xa, ya)
    (s.valid_weight * ce_y + s.coupling / 2 * _distance(ctx.net_y, ctx.net)).backward()
    _clip(ctx.net_y, s.grad_clip)
    ctx.y_opt.step()
    if train_arch:
        ctx.a_opt.zero_grad(set_to_none=True)
        sample, weights = ctx.sample(for_arch=True)
        ce_w, _ = _ce(ctx.net, sample, xt, yt)
        ce_v, _ = _ce(ctx.net_y, sample, xa, ya)
        hardware_loss(ctx, ce_w + s.valid_weight * ce_v, weights).backward()
        ctx.a_opt.step()
        ctx.net.zero_grad(set_to_none=True)
        ctx.net_y.zero_grad(set_to_none=True)
    return loss_w, correct


def _distance(a: nn.Module, b: nn.Module) -> torch.Tensor:
    """``||a - b||^2`` over the parameters, with ``b`` held fixed."""
    return sum(((p - q.detach()) ** 2).sum() for p, q in zip(a.parameters(), b.parameters()))  # type: ignore[return-value]


def _detached(sample: object) -> object:
    """The sample with its weights cut from the architecture graph (a weight step)."""
    from hwnas.oneshot.relax.nb201_net import ArchSample

    assert isinstance(sample, ArchSample)
    return ArchSample(
        weights=[w.detach() for w in sample.weights],
        active=sample.active,
        edge_norm=None if sample.edge_norm is None else [w.detach() for w in sample.edge_norm],
        inactive_grad=sample.inactive_grad,
    )


def _clip(net: nn.Module, limit: float) -> None:
    if limit > 0:
        nn.utils.clip_grad_norm_(net.parameters(), limit)
