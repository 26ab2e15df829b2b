"""TAS's last step: train the pruned network with knowledge distillation from the unpruned one
(Dong & Yang, NeurIPS 2019; Hinton et al., 2015), alpha 0.9 and temperature 4 by default.

Example: see :func:`hwnas.oneshot.relax.tas.tas_search`, then ``distill(space, arch, data,
teacher, config)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.data import Dataset
from hwnas.errors import ConfigError
from hwnas.oneshot.relax.tas_checkpoint import check_distill_key, distill_settings
from hwnas.spaces.base import Arch
from hwnas.spaces.resnet import ResNetSpace
from hwnas.training import StepOutput, fit

if TYPE_CHECKING:  # tas.py imports this module at its end
    from hwnas.oneshot.relax.tas_config import TASConfig


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Hinton et al.'s distillation loss as TAS uses it:
    ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE``."""
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.softmax(teacher / temperature, dim=1),
        reduction="batchmean",
    )
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student, targets)


def distill(
    space: ResNetSpace,
    arch: Arch | str,
    dataset: Dataset,
    teacher: nn.Module,
    config: TASConfig,
    *,
    folder: str | os.PathLike[str] | None = None,
    progress: Callable[[Any], None] | None = None,
) -> tuple[nn.Module, float]:
    """Train the pruned network of ``arch`` from scratch with distillation from ``teacher``
    (the trained unpruned network; TAS's ``Simple-KD``) for ``config.kd_epochs`` epochs through
    :func:`hwnas.training.fit` (SGD, cosine schedule, no label smoothing).

    With a ``folder``, fit's ``checkpoint.pt`` there is rewritten after every epoch and a later
    call resumes from it (or, when it had finished, loads the trained student without training);
    ``distill.json`` beside it refuses a folder made for another architecture, teacher, loss or
    data (:mod:`hwnas.oneshot.relax.tas_checkpoint`). ``progress`` gets fit's
    :class:`~hwnas.training.EpochReport` after each epoch, after the checkpoint is written.

    Returns:
        ``(student, valid_accuracy)``; the teacher is left in the train/eval mode it had.

    Raises:
        ConfigError: bad inputs, or a checkpoint in ``folder`` made with other settings.
        DataError: a damaged checkpoint in ``folder``.
        StoreError: the checkpoint cannot be written.
    """
    from hwnas.oneshot.relax.tas import _check_inputs, _train_config

    _check_inputs(space, dataset, config, "distill")
    if not isinstance(teacher, nn.Module):
        raise ConfigError(
            f"distill: teacher must be a torch.nn.Module, got {type(teacher).__name__}"
        )
    arch = space.from_string(arch) if isinstance(arch, str) else space.validate(arch)
    if folder is not None:
        settings = distill_settings(space, space.to_string(arch), dataset, teacher, config)
        check_distill_key(Path(folder), settings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        student = space.build_network(arch)
    alpha, temperature = config.kd_alpha, config.kd_temperature

    def step(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, _: nn.Module) -> StepOutput:
        with torch.no_grad():
            soft = teacher(xb)
        logits = model(xb)
        loss = kd_loss(logits, soft, yb, alpha=alpha, temperature=temperature)
        loss.backward()
        correct = int((logits.detach().argmax(dim=1) == yb).sum())
        return StepOutput(float(loss.detach()), correct, int(yb.shape[0]))

    modes = [(m, m.training) for m in teacher.modules()]
    teacher.eval()
    try:
        result = fit(
            student,
            dataset.tensors("train"),
            dataset.tensors("valid"),
            config=_train_config(config, config.kd_epochs),
            checkpoint_dir=folder,
            progress=progress,
            step=step,
        )
    finally:
        for module, mode in modes:
            module.training = mode
    return student, float(result.valid_acc or 0.0)
