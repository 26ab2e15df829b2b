"""The gradient search loop: one run of a method on a relaxed space, resumable per epoch.

The training split of the dataset is cut once (seeded) into a part that trains the weights and
a part that trains the architecture (``arch_fraction``: 0.5 for the DARTS family, 0.2 for FBNet).
Each epoch walks the weight part in a fresh seeded order; every weight step is preceded by one
architecture step on the next architecture batch (cycling through that part), as DARTS does, once
``warmup_epochs`` are over. The weights' lr follows a per-step cosine from ``lr`` to ``lr_min``
(sharpDARTS: cosine power annealing); Gumbel temperatures follow GDAS's linear or FBNet's
exponential schedule per epoch.

After every epoch the probabilities per slot are appended to the trajectory, and with a folder
``checkpoint.pt`` is rewritten (weights, architecture, optimizers, generator, trajectory), so a
killed run resumes after its last finished epoch and ends with the same result. Checkpoints are
read with ``weights_only=True``: nothing but tensors and plain values is unpickled.

The search network and the batches live on the settings' ``compute_device`` (a checkpoint
written on one device resumes on another); the architecture weights, the generator that draws
batches and Gumbel noise, and the cost model stay on the CPU, so a seed draws the same batches
and samples wherever it runs.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hwnas.compute import torch_device
from hwnas.data import Dataset
from hwnas.errors import ConfigError, DataError
from hwnas.oneshot.relax.arch import ArchParams
from hwnas.oneshot.relax.band import into_target_band
from hwnas.oneshot.relax.cost import SlotCost
from hwnas.oneshot.relax.formulas import cosine_power_lr, fbnet_tau, gdas_tau
from hwnas.oneshot.relax.methods import MethodSettings
from hwnas.oneshot.relax.nb201_net import ArchSample
from hwnas.oneshot.relax.result import SearchRun
from hwnas.oneshot.relax.spaces import relaxation
from hwnas.oneshot.relax.steps import (
    StepContext,
    arch_step,
    rarts_steps,
    unrolled_arch_step,
    weight_step,
)
from hwnas.spaces.base import SearchSpace
from hwnas.training.checkpoint import read_state, write_state

CHECKPOINT = "checkpoint.pt"
_FIX = "delete it to start the search again"
CALIBRATION_IMAGES = 2000  # training images that re-estimate BatchNorm before scoring a path
Progress = Callable[[dict[str, Any]], None]


# Derived candidates per ``top_k`` moved into a target's band (see band.into_target_band).
BAND_CANDIDATES = 4


def run_search(
    space: SearchSpace,
    dataset: Dataset,
    settings: MethodSettings,
    *,
    cost: SlotCost | None,
    latency_weight: float,
    seed: int,
    label: str,
    folder: Path | None = None,
    progress: Progress | None = None,
) -> SearchRun:
    """Search ``space`` on ``dataset`` with one method and one latency weight.

    Returns the :class:`SearchRun`: the derived architectures (argmax first, then the
    ``top_k - 1`` next most probable, see the relaxation's ``derive``), the per-epoch
    probabilities and expected cost, and the run's figures. ``folder`` keeps the per-epoch
    checkpoint. ``cost`` must be fitted on the relaxation's cost slots
    (``relaxation(space, settings).cost_slots(space, settings)``).
    """
    x, y = dataset.tensors("train")
    if x.shape[0] < 4:
        raise ConfigError(
            f"{settings.method}: the training split holds {x.shape[0]} images; need 4+"
        )
    device = torch_device(settings.compute_device, settings.method)
    start_time = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ctx = _context(space, dataset, settings, cost, latency_weight, gen, device)
    order = torch.randperm(x.shape[0], generator=gen)
    n_arch = max(1, round(settings.arch_fraction * x.shape[0]))
    w_idx, a_idx = order[n_arch:], order[:n_arch]
    steps = math.ceil(w_idx.numel() / settings.batch_size)
    state = _State(trajectory=[_probs(ctx)], expected=[_expected(ctx)], losses=[])
    path = None if folder is None else folder / CHECKPOINT
    if path is not None and path.is_file():
        _restore(path, ctx, state, gen, label)
    for epoch in range(state.epoch, settings.epochs):
        ctx.tau = _tau(settings, epoch)
        perm = w_idx[torch.randperm(w_idx.numel(), generator=gen)]
        arch_perm = a_idx[torch.randperm(a_idx.numel(), generator=gen)]
        total, correct, seen = 0.0, 0, 0
        train_arch = epoch >= settings.warmup_epochs
        for i in range(steps):
            ctx.lr = _lr(settings, epoch * steps + i, settings.epochs * steps)
            for opt in (ctx.w_opt, ctx.y_opt):
                if opt is not None:
                    for group in opt.param_groups:
                        group["lr"] = ctx.lr
            bt = perm[i * settings.batch_size : (i + 1) * settings.batch_size]
            start = (i * settings.batch_size) % arch_perm.numel()
            ba = arch_perm[start : start + settings.batch_size]
            xt = dataset.augment(x[bt], gen) if dataset.augmentation.active else x[bt]
            loss, right = _step(
                ctx, xt.to(device), y[bt].to(device), x[ba].to(device), y[ba].to(device), train_arch
            )
            total += loss * bt.numel()
            correct += right
            seen += bt.numel()
        state.epoch = epoch + 1
        state.trajectory.append(_probs(ctx))
        state.expected.append(_expected(ctx))
        state.losses.append([total / seen, correct / seen])
        if path is not None:
            _save(path, ctx, state, gen, label)
        if progress is not None:
            progress(
                {
                    "label": label,
                    "epoch": epoch + 1,
                    "epochs": settings.epochs,
                    "loss": total / seen,
                    "accuracy": correct / seen,
                    "expected_cost": state.expected[-1],
                }
            )
    return _finish(space, dataset, ctx, state, label, time.perf_counter() - start_time)


class _State:
    def __init__(
        self, *, trajectory: list[Any], expected: list[float], losses: list[list[float]]
    ) -> None:
        self.epoch = 0
        self.trajectory = trajectory
        self.expected = expected
        self.losses = losses


def _context(
    space: SearchSpace,
    dataset: Dataset,
    s: MethodSettings,
    cost: SlotCost | None,
    latency_weight: float,
    gen: torch.Generator,
    device: torch.device,
) -> StepContext:
    relax = relaxation(space, s)

    def network() -> torch.nn.Module:
        return relax.build(space, s, dataset.num_classes, dataset.input_shape[0]).to(device)

    net = network()
    groups = [list(g) for g in relax.groups] if s.mode == "partial" and relax.groups else None
    choices = relax.slot_choices(space)
    params = ArchParams([len(c) for c in choices], generator=gen, groups=groups)

    def sgd(module: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            module.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
        )

    net_y, y_opt = None, None
    if s.method == "rarts":
        net_y = network()
        net_y.load_state_dict(net.state_dict())
        y_opt = sgd(net_y)
    a_opt = torch.optim.Adam(
        params.parameters(), lr=s.arch_lr, betas=s.arch_betas, weight_decay=s.arch_weight_decay
    )
    reference = 1.0
    if cost is not None:
        uniform = [torch.full((len(c),), 1.0 / len(c)) for c in choices]
        at_uniform = float(cost.expected(relax.cost_weights(uniform)))
        reference = s.target if s.target is not None else at_uniform
        if s.method == "proxyless" and s.form == "mul#log" and reference <= 1.0:
            raise ConfigError(
                f"proxyless: form mul#log needs a reference cost above 1, got {reference:.4g} "
                f"{cost.unit}; use form add#linear or a target above 1"
            )
    return StepContext(
        settings=s,
        net=net,
        params=params,
        w_opt=sgd(net),
        a_opt=a_opt,
        generator=gen,
        cost=cost,
        latency_weight=latency_weight,
        reference=reference,
        net_y=net_y,
        y_opt=y_opt,
        cost_weights=relax.cost_weights,
    )


def _step(
    ctx: StepContext,
    xt: torch.Tensor,
    yt: torch.Tensor,
    xa: torch.Tensor,
    ya: torch.Tensor,
    train_arch: bool,
) -> tuple[float, int]:
    s = ctx.settings
    if s.method == "rarts":
        return rarts_steps(ctx, xt, yt, xa, ya, train_arch=train_arch)
    if train_arch:
        if s.order == 2:
            unrolled_arch_step(ctx, xt, yt, xa, ya)
        else:
            arch_step(ctx, xa, ya)
    return weight_step(ctx, xt, yt)


def _lr(s: MethodSettings, step: int, total: int) -> float:
    return float(cosine_power_lr(step, total, s.lr, s.lr_min, power=s.lr_power))


def _tau(s: MethodSettings, epoch: int) -> float:
    if s.mode == "gumbel_hard":
        return float(gdas_tau(epoch, s.epochs, tau_max=s.tau_max, tau_min=s.tau_min))
    if s.mode == "gumbel_soft":
        return float(fbnet_tau(epoch, tau0=s.tau_max, decay=s.tau_decay))
    return 1.0


def _probs(ctx: StepContext) -> list[list[float]]:
    with torch.no_grad():
        return [[round(float(v), 6) for v in p] for p in ctx.params.probs()]


def _expected(ctx: StepContext) -> float:
    if ctx.cost is None:
        return float("nan")
    with torch.no_grad():
        return float(ctx.cost.expected(ctx.cost_weights(ctx.params.probs())))


def _finish(
    space: SearchSpace,
    dataset: Dataset,
    ctx: StepContext,
    state: _State,
    label: str,
    wall: float,
) -> SearchRun:
    s = ctx.settings
    relax = relaxation(space, s)
    choices = relax.slot_choices(space)
    probs = [torch.tensor(p).numpy() for p in state.trajectory[-1]]
    # derive: target, the default with a target
    band = s.derive != "argmax" and s.target is not None and ctx.cost is not None
    picks = relax.derive(space, s, probs, s.top_k * (BAND_CANDIDATES if band else 1))
    argmax_cost = None
    if band and ctx.cost is not None:
        argmax_cost, picks = into_target_band(space, s, ctx.cost, probs, picks)
    derived = [relax.to_arch(space, s, t) for t in picks]
    archs = [space.to_string(a) for a in derived]
    best_ops = [choices[i][j] for i, j in enumerate(picks[0])]
    metrics: dict[str, float] = {
        "train_loss": state.losses[-1][0] if state.losses else float("nan"),
        "train_accuracy": state.losses[-1][1] if state.losses else float("nan"),
    }
    if relax.parameter_free:  # a collapse toward weight-free choices can happen
        metrics["parameter_free_edges"] = float(sum(op in relax.parameter_free for op in best_ops))
    metrics.update(search_wall_s=wall, latency_weight=ctx.latency_weight)
    if dataset.indices["valid"].size:
        train_x = dataset.tensors("train")[0]
        metrics["valid_accuracy"] = _accuracy(ctx, picks[0], train_x, *dataset.tensors("valid"))
    if ctx.cost is not None:
        metrics["expected_cost"] = state.expected[-1]
        names = relax.cost_slots(space, s).names(derived[0])
        metrics["derived_cost"] = ctx.cost.predict_ops(names)
        metrics["reference_cost"] = ctx.reference
        if argmax_cost is not None:
            metrics["argmax_cost"] = argmax_cost
    return SearchRun(
        label=label,
        archs=archs,
        slots=list(relax.slot_names),
        choices=[list(c) for c in choices],
        trajectory=state.trajectory,
        picks=[[int(c) for c in t] for t in picks],
        expected_cost=[] if ctx.cost is None else state.expected,
        metrics=metrics,
    )


class _OnePath(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, sample: ArchSample) -> None:
        super().__init__()
        self.net, self.sample = net, sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.sample)


def _accuracy(
    ctx: StepContext, pick: tuple[int, ...], train_x: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> float:
    """Accuracy of the derived architecture's single path with the search weights, after its
    BatchNorm statistics are re-estimated on training images; the network's state is restored
    afterwards (a copy of its state dict: copying the module itself takes seconds for the
    180 candidate blocks of mbv3's)."""
    from hwnas.oneshot.calibrate import recalibrate_bn
    from hwnas.training import evaluate

    sizes = [len(p) for p in ctx.params.alpha]
    weights = [torch.nn.functional.one_hot(torch.tensor(j), n).float() for j, n in zip(pick, sizes)]
    model = _OnePath(ctx.net, ArchSample(weights=weights, active=[[j] for j in pick]))
    saved = copy.deepcopy(ctx.net.state_dict())
    try:
        recalibrate_bn(model, train_x[:CALIBRATION_IMAGES])
        return evaluate(model, x, y)[1]
    finally:
        ctx.net.load_state_dict(saved)


def _save(path: Path, ctx: StepContext, state: _State, gen: torch.Generator, label: str) -> None:
    data: dict[str, Any] = {
        "label": label,
        "epoch": state.epoch,
        "net": ctx.net.state_dict(),
        "arch": ctx.params.state_dict(),
        "w_opt": ctx.w_opt.state_dict(),
        "a_opt": ctx.a_opt.state_dict(),
        "generator": gen.get_state(),
        "trajectory": state.trajectory,
        "expected": state.expected,
        "losses": state.losses,
    }
    if ctx.net_y is not None and ctx.y_opt is not None:
        data["net_y"] = ctx.net_y.state_dict()
        data["y_opt"] = ctx.y_opt.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_state(path, data, fix=_FIX)


def _restore(path: Path, ctx: StepContext, state: _State, gen: torch.Generator, label: str) -> None:
    data = read_state(path, what="gradient-search checkpoint", fix=_FIX)
    try:
        if data["label"] != label:
            raise KeyError("label")
        ctx.net.load_state_dict(data["net"])
        ctx.params.load_state_dict(data["arch"])
        ctx.w_opt.load_state_dict(data["w_opt"])
        ctx.a_opt.load_state_dict(data["a_opt"])
        if ctx.net_y is not None and ctx.y_opt is not None:
            ctx.net_y.load_state_dict(data["net_y"])
            ctx.y_opt.load_state_dict(data["y_opt"])
        gen.set_state(data["generator"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: {exc}); {_FIX}"
        ) from None
    state.epoch = int(data["epoch"])
    state.trajectory = data["trajectory"]
    state.expected = data["expected"]
    state.losses = data["losses"]
