"""TAS: network pruning via transformable architecture search (Dong & Yang, NeurIPS 2019), for
the CIFAR ResNet of the ``resnet`` space.

TAS searches the width of every layer and the depth of every stage of an unpruned network
(:mod:`hwnas.oneshot.relax.tas_net`: Gumbel-softmax samples, channel-wise interpolation), with a
FLOPs loss pulling the expected FLOPs to a target, then trains the derived (pruned) network with
knowledge distillation from the unpruned one. Settings from the paper and its released code
(D-X-Y/AutoDL-Projects: ``exps/search-transformable.py``, ``scripts-search/search-shape-cifar.sh``,
``configs/search-opts/CIFAR.config``):

* weights by SGD (Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, cosine schedule; the code
  adds 5 warm-up epochs, left out here), architecture logits by Adam (lr 1e-3,
  betas (0.5, 0.999), weight decay 1e-3), alternating one step each per batch; the weight step
  minimises the cross-entropy, the architecture step the cross-entropy plus
  ``flops_weight * L_flops`` on another batch;
* ``L_flops`` = ``log E[F]`` above ``(1 + tolerance) * target``, ``-log E[F]`` below
  ``(1 - tolerance) * target``, else 0, where the band is tested on the FLOPs of the argmax
  architecture (``flop_cur`` in the code) and ``E[F]`` carries the gradient
  (:func:`~hwnas.oneshot.relax.formulas.tas_flops_loss`); weight 2, tolerance 0.05;
* Gumbel temperature annealed by a cosine from 5 to 0.1
  (:func:`~hwnas.oneshot.relax.formulas.tas_tau`);
* distillation: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE`` with alpha 0.9
  and T 4 (Hinton et al., 2015, as TAS's ``KD-main.py``).

The pruned network: the paper's code takes each slot's most probable choice; after a short search
the distributions are still broad and that argmax misses the target (16.75 +- 1.62 MMACs for a
15.5 MMACs target in ``docs/BENCHMARKS.md`` 10.3). By default (``derive: "target"``) hwnas moves
the argmax into the target's band by the changes that cost the least probability
(:func:`~hwnas.oneshot.relax.tas_archs.derive_at_flops`); ``derive: "argmax"`` is the paper's.

Data: TAS optimises both the weights and the logits on the training set (its released script
gives them the two halves of a 50/50 split of the CIFAR training set); here both see the whole
``train`` split, on two independently shuffled batch streams. ``valid`` only reports accuracy.
Same seed, same result on CPU at the same thread count (floating-point sums change with it).
Given a folder, the search checkpoints every epoch and a killed run resumes from its last one
with the same result (:mod:`~hwnas.oneshot.relax.tas_checkpoint`); so does :func:`distill`.

Example:
    >>> from hwnas.data import load_dataset
    >>> from hwnas.spaces import create_space
    >>> data = load_dataset({"name": "digits", "limit": 200})
    >>> space = create_space("resnet", blocks=1, widths=[4, 8, 8], in_channels=1, input_size=8)
    >>> result = tas_search(space, data, TASConfig(epochs=1, batch_size=64, kd_epochs=1))
    >>> result.method, result.runs[0].label
    ('tas', 'flops_ratio=0.5')
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from hwnas.data import Dataset
from hwnas.errors import ConfigError
from hwnas.oneshot.relax.formulas import tas_flops_loss, tas_tau
from hwnas.oneshot.relax.result import GradientResult, SearchRun
from hwnas.oneshot.relax.tas_archs import (
    check_space,
    derive_archs,
    derive_at_flops,
    uniform_arch,
    uniform_at_flops,
)
from hwnas.oneshot.relax.tas_checkpoint import (
    CHECKPOINT,
    SearchState,
    load_search,
    result_key,
    save_done,
    save_search,
    search_settings,
)
from hwnas.oneshot.relax.tas_config import TASConfig
from hwnas.oneshot.relax.tas_net import TASNetwork
from hwnas.spaces.resnet import ResNetSpace
from hwnas.training import (
    EpochReport,
    TrainConfig,
    TrainingDiverged,
    build_optimizer,
    learning_rate,
)

__all__ = [
    "TASConfig",
    "derive_archs",
    "derive_at_flops",
    "distill",
    "kd_loss",
    "tas_search",
    "uniform_arch",
    "uniform_at_flops",
]

_CALIBRATION = 2000  # training images that re-estimate BatchNorm statistics before scoring


def tas_search(
    space: ResNetSpace,
    dataset: Dataset,
    config: TASConfig,
    *,
    folder: str | os.PathLike[str] | None = None,
    progress: Callable[[EpochReport], None] | None = None,
) -> GradientResult:
    """Search widths and depths of ``space``'s ResNet for ``config.target_flops_ratio`` of the
    unpruned network's FLOPs (see the module docstring).

    Returns:
        A :class:`GradientResult` (method ``"tas"``) with one :class:`SearchRun`: the derived
        architecture (``config.derive``) and ``top_k`` alternatives, per epoch (the initial
        logits first) every slot's probabilities and the expected FLOPs (MMACs), and as
        metrics: ``train_acc`` (the sampled networks on the last epoch's weight batches),
        ``valid_acc`` (the relaxed network without noise, :meth:`TASNetwork.mean_sample`) and
        ``derived_valid_acc`` (the derived network), both with the search weights and
        re-estimated BatchNorm statistics; the expected, derived, argmax, target and unpruned
        FLOPs (MMACs), the derived parameters and
        ``wall_s`` (of all calls that ran the search). ``progress`` gets an
        :class:`~hwnas.training.EpochReport` after each epoch (its valid figures: the relaxed
        network's), after the checkpoint is written. With a ``folder``, its ``checkpoint.pt``
        is rewritten after every epoch and a later call resumes from it, or returns the stored
        result of a finished search (:mod:`hwnas.oneshot.relax.tas_checkpoint`).

    Raises:
        ConfigError: another space, a dataset that does not fit the space, a bad config, or a
            checkpoint in ``folder`` made with other settings.
        DataError: a damaged checkpoint in ``folder``.
        StoreError: the checkpoint cannot be written.
        TrainingDiverged: a loss became NaN or infinite.
    """
    _check_inputs(space, dataset, config, "tas_search")
    x, y = dataset.tensors("train")
    xv, yv = dataset.tensors("valid")
    if xv.shape[0] == 0:
        raise ConfigError("tas_search: the dataset has no valid split; set valid_fraction > 0")
    started = time.perf_counter()
    unpruned = space.cheap_metrics(space.full_arch())["flops_m"]
    target = config.target_flops_ratio * unpruned
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = TASNetwork(space, generator=generator)
    train_config = _train_config(config, config.epochs)
    weights_opt = build_optimizer(net.body, train_config)
    arch_opt = torch.optim.Adam(
        net.arch_parameters(),
        lr=config.arch_lr,
        betas=(0.5, 0.999),
        weight_decay=config.arch_weight_decay,
    )
    state = SearchState(trajectory=[net.rows()], expected=[float(net.expected_flops_m().detach())])
    path = None if folder is None else Path(folder) / CHECKPOINT
    settings = search_settings(space, dataset, config)
    if path is not None and path.is_file():
        loaded = load_search(
            path, settings, net=net, optimizers=(weights_opt, arch_opt), generator=generator
        )
        if isinstance(loaded, GradientResult):
            loaded.options, loaded.key = config.to_dict(), result_key(space, dataset, config)
            return loaded
        state = loaded
    spent = state.seconds
    n, batch = x.shape[0], config.batch_size
    steps = math.ceil(n / batch)
    for epoch in range(state.epoch, config.epochs):
        epoch_start = time.perf_counter()
        tau = float(tas_tau(epoch, config.epochs, tau_max=config.tau_max, tau_min=config.tau_min))
        net.train()
        order, arch_order = (torch.randperm(n, generator=generator) for _ in range(2))
        loss_sum, correct, lr = 0.0, 0, config.lr
        for b in range(steps):
            lr = learning_rate(train_config, state.step, steps)
            for group in weights_opt.param_groups:
                group["lr"] = lr
            index = order[b * batch : (b + 1) * batch]
            logits = net(x[index], net.sample(tau, generator))
            loss = F.cross_entropy(logits, y[index])
            _check_finite(loss, "weight", epoch, config.epochs)
            weights_opt.zero_grad(set_to_none=True)
            loss.backward()
            weights_opt.step()
            loss_sum += float(loss.detach()) * index.numel()
            correct += int((logits.detach().argmax(dim=1) == y[index]).sum())

            index = arch_order[b * batch : (b + 1) * batch]
            ce = F.cross_entropy(net(x[index], net.sample(tau, generator)), y[index])
            derived = space.cheap_metrics(net.argmax_arch())["flops_m"]
            flops_loss = tas_flops_loss(
                net.expected_flops_m(), target, tolerance=config.tolerance, current_flops=derived
            )
            arch_loss = ce + config.flops_weight * flops_loss
            _check_finite(arch_loss, "architecture", epoch, config.epochs)
            arch_opt.zero_grad(set_to_none=True)
            arch_loss.backward()
            arch_opt.step()
            state.step += 1
        valid_loss, valid_acc = net.evaluate(net.mean_sample(), xv, yv, x[:_CALIBRATION])
        seconds = time.perf_counter() - epoch_start
        report = EpochReport(
            epoch=epoch + 1,
            epochs=config.epochs,
            train_loss=loss_sum / n,
            train_acc=correct / n,
            valid_loss=valid_loss,
            valid_acc=valid_acc,
            lr=lr,
            seconds=seconds,
            eta_seconds=seconds * (config.epochs - epoch - 1),
        )
        state.epoch = epoch + 1
        state.trajectory.append(net.rows())
        state.expected.append(float(net.expected_flops_m().detach()))
        state.history.append(report.to_dict())
        if path is not None:
            state.seconds = spent + time.perf_counter() - started
            optimizers = (weights_opt, arch_opt)
            save_search(
                path, settings, net=net, optimizers=optimizers, generator=generator, state=state
            )
        if progress is not None:
            progress(report)
    last = state.history[-1]
    trajectory, expected = state.trajectory, state.expected
    archs = derive_archs(space, trajectory[-1], config.top_k)
    argmax_flops = space.cheap_metrics(archs[0])["flops_m"]
    if config.derive == "target":
        fitted = derive_at_flops(space, trajectory[-1], target, config.tolerance)
        archs = [fitted, *(a for a in archs if a != fitted)][: config.top_k + 1]
    derived_metrics = space.cheap_metrics(archs[0])
    sample = net.hard(list(space.encode(archs[0])))
    _, derived_acc = net.evaluate(sample, xv, yv, x[:_CALIBRATION])
    wall = spent + time.perf_counter() - started
    run = SearchRun(
        label=f"flops_ratio={config.target_flops_ratio:g}",
        archs=[space.to_string(a) for a in archs],
        slots=list(space.slot_names),
        choices=[list(c) for c in space.slots],
        trajectory=trajectory,
        expected_cost=expected,
        metrics={
            "train_acc": last["train_acc"],
            "valid_acc": last["valid_acc"],
            "derived_valid_acc": derived_acc,
            "expected_flops_m": expected[-1],
            "derived_flops_m": derived_metrics["flops_m"],
            "argmax_flops_m": argmax_flops,
            "derived_params_m": derived_metrics["params_m"],
            "target_flops_m": target,
            "unpruned_flops_m": unpruned,
            "wall_s": wall,
        },
    )
    result = GradientResult(
        method="tas",
        options=config.to_dict(),
        runs=[run],
        cost={
            "metric": "flops_m",
            "unit": "MMACs",
            "source": {"kind": "flops", "rows": 0, "device_rows": 0},
        },
        wall_s=wall,
        key=result_key(space, dataset, config),
    )
    if path is not None:
        save_done(path, settings, result)
    return result


def _check_inputs(space: ResNetSpace, dataset: Dataset, config: TASConfig, func: str) -> None:
    check_space(space)
    if not isinstance(config, TASConfig):
        raise ConfigError(f"{func}: config must be a TASConfig, got {type(config).__name__}")
    shape, classes = tuple(dataset.input_shape), dataset.num_classes
    if shape != space.input_shape or classes != space.num_classes:
        c, h, _ = shape
        raise ConfigError(
            f"{func}: the dataset has inputs {shape} and {classes} classes, the space "
            f"{space.input_shape} and {space.num_classes}; create the space with "
            f"in_channels={c}, input_size={h}, num_classes={classes}"
        )
    if shape[1] != shape[2]:
        raise ConfigError(f"{func}: the resnet space needs square inputs, got {shape}")


def _train_config(config: TASConfig, epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        label_smoothing=0.0,
        seed=config.seed,
    )


def _check_finite(loss: torch.Tensor, what: str, epoch: int, epochs: int) -> None:
    if not math.isfinite(float(loss.detach())):
        raise TrainingDiverged(
            f"tas_search diverged: {what} loss {float(loss.detach())} at epoch {epoch + 1}/"
            f"{epochs}; lower lr or arch_lr"
        )


# Distillation (kd_loss, distill) lives in tas_distill.py; re-exported here, the module's API.
from hwnas.oneshot.relax.tas_distill import distill, kd_loss  # noqa: E402
