"""Weight-sharing supernets: Once-for-All's elastic MobileNetV3 for the ``mbv3`` space, trained
with BigNAS's sandwich rule or OFA's progressive shrinking, and scored by inherited weights
after BatchNorm recalibration. Importing this package needs the ``torch`` extra.

Example:
    >>> from hwnas.spaces import create_space
    >>> from hwnas.oneshot import MBV3Supernet, smallest_arch
    >>> space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
    >>> supernet = MBV3Supernet(space)
    >>> net = supernet.extract(smallest_arch(space))  # a standalone nn.Module
    >>> type(net).__name__
    'MBV3Network'
"""

from __future__ import annotations

from hwnas.errors import require_torch

require_torch("hwnas.oneshot")

from hwnas.oneshot.calibrate import SupernetScorer, recalibrate_bn, resize_to  # noqa: E402
from hwnas.oneshot.config import SupernetConfig  # noqa: E402
from hwnas.oneshot.dynamic import (  # noqa: E402
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicLinear,
    DynamicSE,
)
from hwnas.oneshot.sandwich import (  # noqa: E402
    PHASES,
    SandwichStep,
    SubnetSampler,
    distill_loss,
)
from hwnas.oneshot.supernet import (  # noqa: E402
    MBV3Supernet,
    largest_arch,
    smallest_arch,
    uniform_arch,
)
from hwnas.oneshot.train import (  # noqa: E402
    SupernetResult,
    load_supernet,
    space_options,
    train_supernet,
)

__all__ = [
    "PHASES",
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicLinear",
    "DynamicSE",
    "MBV3Supernet",
    "SandwichStep",
    "SubnetSampler",
    "SupernetConfig",
    "SupernetResult",
    "SupernetScorer",
    "distill_loss",
    "largest_arch",
    "load_supernet",
    "recalibrate_bn",
    "resize_to",
    "smallest_arch",
    "space_options",
    "train_supernet",
    "uniform_arch",
]
