"""The training loop: :func:`fit` trains one network on in-memory tensors, :func:`evaluate`
scores it.

A weight-sharing supernet trains through the same loop with its own ``step`` (say, the sandwich
rule: the largest, the smallest and two random subnets per batch, each forward and backward),
since the loop owns only batching, the optimizer, the schedule, checkpoints and reports.

Determinism: the seed drives a private ``torch.Generator`` for shuffling and augmentation and, in
a forked copy of the global CPU random state, the model's own randomness (dropout); the caller's
global random state is the same after :func:`fit` as before. Two runs with the same seed on CPU
give bit-identical weights, and a resumed run the same weights as an uninterrupted one.
``torch.use_deterministic_algorithms`` is not switched on here (it is a process-wide flag, and
CPU kernels need it not); callers on GPU may set it themselves.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from hwnas.training.config import TrainConfig
from hwnas.training.records import (
    BatchReport,
    EpochReport,
    StepOutput,
    TrainingDiverged,
    TrainResult,
)

Data = tuple[torch.Tensor, torch.Tensor]
Step = Callable[[nn.Module, torch.Tensor, torch.Tensor, nn.Module], StepOutput]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Progress = Callable[[Any], None]


def default_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: nn.Module
) -> StepOutput:
    """Forward, loss and backward on one batch (the loop zeroes gradients before and steps the
    optimizer after)."""
    logits = model(x)
    loss = criterion(logits, y)
    loss.backward()
    correct = int((logits.detach().argmax(dim=1) == y).sum())
    return StepOutput(float(loss.detach()), correct, int(y.shape[0]))


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (from 0).

    Warm-up rises linearly over ``W = warmup_epochs * steps_per_epoch`` steps, from ``lr / W`` at
    step 0 to ``lr`` at step ``W - 1``. After it, ``"cosine"`` gives
    ``lr * (1 + cos(pi * t / T)) / 2`` with ``t = step - W`` of ``T`` steps left, so the peak is
    at ``t = 0`` and the rate nears 0 at the last step; ``"constant"`` keeps ``lr``.

    Example:
        >>> cfg = TrainConfig(epochs=3, lr=0.1, warmup_epochs=1)
        >>> [round(learning_rate(cfg, s, 2), 3) for s in range(6)]
        [0.05, 0.1, 0.1, 0.085, 0.05, 0.015]
    """
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    total = config.epochs * steps_per_epoch - warmup
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, total) / total))


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer :func:`fit` uses, with two parameter groups: ``"decay"`` (parameters of two
    or more dimensions: conv and linear weights) gets ``config.weight_decay``; ``"no_decay"``
    (biases and normalisation scales and shifts) gets none. Frozen parameters are left out.

    Raises:
        ConfigError: The model has no trainable parameter.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters; unfreeze some before fit")
    groups: list[dict[str, Any]] = [
        {
            "params": [p for p in params if p.ndim > 1],
            "weight_decay": config.weight_decay,
            "name": "decay",
        },
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "name": "no_decay"},
    ]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> tuple[float, float]:
    """Mean cross-entropy (no label smoothing) and accuracy of ``model`` on ``(x, y)``.

    Runs in eval mode without gradients, then gives every submodule back the train/eval mode
    it had.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> loss, acc = evaluate(net, torch.zeros(5, 1, 2, 2), torch.zeros(5, dtype=torch.long))
        >>> 0.0 <= acc <= 1.0
        True
    """
    _check_data((x, y), "evaluate data")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"evaluate: batch_size must be an integer >= 1, got {batch_size!r}")
    device = _device_of(model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = y[start : start + batch_size].to(device)
                logits = model(xb)
                total_loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
                correct += int((logits.argmax(dim=1) == yb).sum())
    finally:
        for module, mode in modes:
            module.training = mode
    n = x.shape[0]
    return total_loss / n, correct / n


def fit(
    model: nn.Module,
    train: Data,
    valid: Data | None = None,
    *,
    config: TrainConfig,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    report_every: int | None = None,
    augment: Augment | None = None,
    step: Step | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train`` and report each epoch.

    Each epoch shuffles ``train`` with a generator seeded from ``config.seed``, and for each
    batch: sets the scheduled learning rate, zeroes gradients, runs ``step`` (forward and
    backward), clips gradients if ``config.grad_clip`` is set, and steps the optimizer.

    Args:
        model: The network; batches are moved to the device of its first parameter.
        train: ``(x, y)``: float inputs ``(N, C, H, W)`` and int64 class labels ``(N,)``.
        valid: Optional ``(x, y)`` scored by :func:`evaluate` after each epoch.
        config: The training settings.
        checkpoint_dir: If given, ``checkpoint.pt`` there is rewritten after every epoch, and a
            later call with the same folder resumes after the last finished epoch (or, when
            training had finished, loads the final weights and returns the stored result).
        progress: Called with an :class:`EpochReport` after each epoch (after the checkpoint is
            written, so an exception from it loses no finished epoch) and, with
            ``report_every``, with a :class:`BatchReport` every that many steps.
        report_every: Steps between batch reports; None for none.
        augment: ``augment(x_batch, generator)`` returns the augmented training batch; draw all
            randomness from ``generator`` (a CPU generator) to keep runs reproducible.
        step: ``step(model, x, y, criterion)`` does its own forward and backward and returns a
            :class:`StepOutput`; the default is :func:`default_step`. ``criterion`` is
            cross-entropy with ``config.label_smoothing``.

    Returns:
        The :class:`TrainResult`; the model holds the final weights, with the train/eval modes
        of its submodules as they were before the call.

    Raises:
        ConfigError: Bad data or arguments, or a checkpoint written for another run.
        DataError: A damaged checkpoint.
        StoreError: The checkpoint cannot be written.
        TrainingDiverged: The loss became NaN or infinite.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.randn(32, 1, 2, 2), torch.randint(0, 2, (32,))
        >>> result = fit(net, (x, y), (x, y), config=TrainConfig(epochs=2, batch_size=8))
        >>> len(result.history), result.epochs_run, result.resumed
        (2, 2, False)
    """
    if not isinstance(config, TrainConfig):
        raise ConfigError(
            f"fit: config must be a TrainConfig, got {type(config).__name__}; "
            "build one with TrainConfig.from_dict"
        )
    _check_data(train, "train")
    if valid is not None:
        _check_data(valid, "valid")
    if report_every is not None and (
        isinstance(report_every, bool) or not isinstance(report_every, int) or report_every < 1
    ):
        raise ConfigError(
            f"fit: report_every must be an integer >= 1 or None, got {report_every!r}"
        )
    path = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    optimizer = build_optimizer(model, config)
    device = _device_of(model)
    modes = [(m, m.training) for m in model.modules()]
    # Fork the global random state, so dropout is seeded here without changing the caller's.
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            return _run(
                model,
                train,
                valid,
                config,
                optimizer,
                path,
                hooks=(progress, report_every, augment, step or default_step),
            )
    finally:
        for module, mode in modes:
            module.training = mode


def _run(
    model: nn.Module,
    train: Data,
    valid: Data | None,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    path: Path | None,
    *,
    hooks: tuple[Progress | None, int | None, Augment | None, Step],
) -> TrainResult:
    """The epochs of :func:`fit`, inside its forked random state."""
    progress, report_every, augment, step_fn = hooks
    x, y = train
    n = x.shape[0]
    steps = math.ceil(n / config.batch_size)
    device = _device_of(model)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed + 1)  # a stream apart from the shuffling generator's
    history: list[dict[str, Any]] = []
    start_epoch, global_step, resumed = 0, 0, False
    if path is not None and path.exists():
        state = load_checkpoint(
            path, model=model, optimizer=optimizer, config=config, data_shape=tuple(x.shape)
        )
        generator.set_state(state.generator_state)
        torch.set_rng_state(state.rng_state)
        start_epoch, global_step, history = state.epoch, state.step, state.history
        resumed = True
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        loss_sum, correct, count, lr = 0.0, 0, 0, config.lr
        model.train()
        order = torch.randperm(n, generator=generator)
        for b in range(steps):
            index = order[b * config.batch_size : (b + 1) * config.batch_size]
            xb, yb = x[index], y[index]
            if augment is not None:
                xb = augment(xb, generator)
            lr = learning_rate(config, global_step, steps)
            out = _train_step(
                model,
                xb.to(device),
                yb.to(device),
                criterion,
                optimizer,
                lr,
                step_fn,
                config.grad_clip,
            )
            if not math.isfinite(out.loss):
                raise TrainingDiverged(
                    f"training diverged: loss {out.loss} at epoch {epoch + 1}/{config.epochs}, "
                    f"step {b + 1}/{steps} (lr {lr:.3g}); lower lr (now {config.lr:g}) "
                    "or set grad_clip"
                )
            global_step += 1
            loss_sum += out.loss * out.count
            correct += out.correct
            count += out.count
            if progress is not None and report_every is not None and (b + 1) % report_every == 0:
                progress(BatchReport(epoch + 1, config.epochs, b + 1, steps, out.loss, lr))
        valid_loss = valid_acc = None
        if valid is not None:
            valid_loss, valid_acc = evaluate(model, valid[0], valid[1], config.eval_batch_size)
        seconds = time.perf_counter() - started
        spent = [h["seconds"] for h in history] + [seconds]
        report = EpochReport(
            epoch=epoch + 1,
            epochs=config.epochs,
            train_loss=loss_sum / max(count, 1),
            train_acc=correct / max(count, 1),
            valid_loss=valid_loss,
            valid_acc=valid_acc,
            lr=lr,
            seconds=seconds,
            eta_seconds=sum(spent) / len(spent) * (config.epochs - epoch - 1),
        )
        history.append(report.to_dict())
        if path is not None:
            save_checkpoint(
                path,
                model=model,
                optimizer=optimizer,
                config=config,
                data_shape=tuple(x.shape),
                epoch=epoch + 1,
                step=global_step,
                generator=generator,
                history=history,
            )
        if progress is not None:
            progress(report)
    return TrainResult.from_history(
        history, epochs_run=config.epochs - start_epoch, resumed=resumed
    )


def _train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr: float,
    step_fn: Step,
    grad_clip: float | None,
) -> StepOutput:
    """One optimizer step at learning rate ``lr``; the weights are left untouched when the
    loss is not finite."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    out = step_fn(model, x, y, criterion)
    if not isinstance(out, StepOutput):
        raise ConfigError(
            f"fit: step must return a StepOutput(loss, correct, count), got {type(out).__name__}"
        )
    if math.isfinite(out.loss):
        if grad_clip is not None:
            params = [p for g in optimizer.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    return out


def _check_data(data: Any, what: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` is ``(x, y)`` with float ``x`` and int64
    labels ``y >= 0``, both of the same non-zero length."""
    if not (isinstance(data, tuple) and len(data) == 2):
        raise ConfigError(f"{what} must be a tuple (x, y) of tensors, got {type(data).__name__}")
    x, y = data
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        shown = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{what}: x must be a float tensor (N, C, H, W), got {shown}")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
        shown = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ConfigError(
            f"{what}: y must be an int64 tensor of class indices (N,), got {shown}; "
            "convert it with y.long()"
        )
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ConfigError(
            f"{what}: x and y must hold the same number of samples (at least 1), "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    if int(y.min()) < 0:
        raise ConfigError(f"{what}: y holds a negative class index {int(y.min())}; use 0..C-1")


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
