"""What a training run reports: per step, per batch, per epoch and at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hwnas.errors import HwnasError


class TrainingDiverged(HwnasError):
    """The training loss became NaN or infinite; the message names the epoch, step and fix."""


@dataclass(frozen=True)
class StepOutput:
    """What one training step returns.

    Attributes:
        loss: Mean loss over the step's samples (weighted by ``count`` into the epoch's loss).
        correct: Samples predicted right (for the epoch's training accuracy).
        count: Samples the step trained on.
    """

    loss: float
    correct: int
    count: int


@dataclass(frozen=True)
class BatchReport:
    """Progress within an epoch, sent every ``report_every`` steps.

    Attributes:
        epoch: The epoch, from 1.
        epochs: Epochs in the whole run.
        step: The step within the epoch, from 1.
        steps: Steps per epoch.
        loss: The step's training loss.
        lr: The learning rate the step used.
    """

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    lr: float


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch.

    Attributes:
        epoch: The epoch, from 1.
        epochs: Epochs in the whole run.
        train_loss: Mean training loss (with label smoothing) over the epoch's samples.
        train_acc: Fraction of training samples predicted right while training.
        valid_loss: Cross-entropy (no smoothing) on the validation data, or None without it.
        valid_acc: Validation accuracy in [0, 1], or None without validation data.
        lr: The learning rate of the epoch's last step.
        seconds: Wall time of the epoch, evaluation included.
        eta_seconds: Estimated seconds to the end: mean epoch time times epochs left.
    """

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    valid_loss: float | None
    valid_acc: float | None
    lr: float
    seconds: float
    eta_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values (as the history and the checkpoint keep it)."""
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`hwnas.training.fit`.

    Attributes:
        history: One :meth:`EpochReport.to_dict` per finished epoch, from the first (also those
            run before a resume).
        valid_acc: Validation accuracy after the last epoch, or None without validation data.
        seconds: Training time summed over all epochs in ``history``.
        epochs_run: Epochs this call trained (0 when the checkpoint was already finished).
        resumed: True when this call started from a checkpoint.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    valid_acc: float | None = None
    seconds: float = 0.0
    epochs_run: int = 0
    resumed: bool = False

    @classmethod
    def from_history(
        cls, history: list[dict[str, Any]], *, epochs_run: int, resumed: bool
    ) -> TrainResult:
        """The result that ``history`` (a list of epoch dicts) describes."""
        return cls(
            history=[dict(h) for h in history],
            valid_acc=history[-1]["valid_acc"] if history else None,
            seconds=float(sum(h["seconds"] for h in history)),
            epochs_run=epochs_run,
            resumed=resumed,
        )
