"""Training networks with PyTorch: :func:`fit`, :func:`evaluate` and their settings.

The loop trains one network on in-memory tensors with SGD or AdamW, a warm-up and cosine
schedule, label smoothing, seeded shuffling and augmentation, per-epoch checkpoints that resume
bit for bit, and progress reports; a custom ``step`` lets a weight-sharing supernet train through
the same loop. Importing this package needs the ``torch`` extra.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from hwnas.training import TrainConfig, fit
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x, y = torch.randn(16, 1, 2, 2), torch.randint(0, 2, (16,))
    >>> fit(net, (x, y), config=TrainConfig(epochs=1, batch_size=8)).epochs_run
    1
"""

from __future__ import annotations

from hwnas.errors import require_torch

require_torch("hwnas.training")

from hwnas.training.config import TrainConfig  # noqa: E402
from hwnas.training.loop import (  # noqa: E402
    build_optimizer,
    default_step,
    evaluate,
    fit,
    learning_rate,
)
from hwnas.training.records import (  # noqa: E402
    BatchReport,
    EpochReport,
    StepOutput,
    TrainingDiverged,
    TrainResult,
)

__all__ = [
    "BatchReport",
    "EpochReport",
    "StepOutput",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "build_optimizer",
    "default_step",
    "evaluate",
    "fit",
    "learning_rate",
]
