"""BatchNorm recalibration and inherited-weight accuracy of sub-networks.

A sub-network's weights come from the supernet, but its BatchNorm running statistics do not
fit it: during training every sampled sub-network updated the shared statistics. Once-for-All
(Cai et al., ICLR 2020, section 3.4; ``ofa/utils/my_modules.py``, ``set_running_statistics``)
therefore re-estimates them for each sub-network on 2,000 training images before scoring it.
:func:`recalibrate_bn` does so with PyTorch's cumulative average (``momentum=None``): the running
mean is the mean of the batch means, the running variance the mean of the (unbiased) batch
variances. :class:`SupernetScorer` scores sub-networks that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.supernet import MBV3Supernet
from hwnas.spaces.base import Arch
from hwnas.training import evaluate

if TYPE_CHECKING:
    from hwnas.data import Dataset

CALIBRATION_IMAGES = 2000  # OFA's sub-train set for BatchNorm statistics
CALIBRATION_BATCH = 200


def resize_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """``x`` (N, C, H, W) resized bilinearly to ``resolution`` square, as the supernet does;
    ``x`` itself when it already has that size."""
    if tuple(x.shape[-2:]) == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


def recalibrate_bn(
    model: nn.Module,
    x_batches: torch.Tensor | Iterable[torch.Tensor],
    arch: Arch | None = None,
    *,
    batch_size: int = CALIBRATION_BATCH,
) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them on ``x_batches``.

    The forward passes run without gradients, with BatchNorm layers in training mode with
    ``momentum=None`` (a cumulative average over the batches) and every other layer in eval mode
    (no dropout), so the result depends only on the weights and the images. Afterwards each
    module has the train/eval mode and BatchNorm momentum it had before.

    Args:
        model: an :class:`MBV3Supernet` (with ``arch``: that sub-network is made active and its
            statistics estimated; the statistics of channels and blocks it does not use are left
            reset) or any module, e.g. one :meth:`MBV3Supernet.extract` returned (``arch`` None).
        x_batches: images: one tensor, cut into batches of ``batch_size``, or an iterable of
            batches. Inputs of another size are resized to the sub-network's resolution.
        arch: the sub-network of a supernet; must be None for other modules.
        batch_size: images per batch when ``x_batches`` is one tensor.

    Example:
        >>> from hwnas.spaces import create_space
        >>> space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
        >>> net = MBV3Supernet(space).extract(space.from_string(
        ...     "r8-w1.0|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3"))
        >>> recalibrate_bn(net, torch.randn(50, 1, 8, 8))
        >>> float(net.stem.bn.num_batches_tracked)
        1.0
    """
    if isinstance(model, MBV3Supernet):
        if arch is not None:
            model.set_active(arch)
        resolution: int | None = model.active_arch["r"]
    elif arch is not None:
        raise ConfigError(
            f"recalibrate_bn: arch is for an MBV3Supernet; got a {type(model).__name__} "
            "(extract the sub-network first, or pass arch=None)"
        )
    else:
        resolution = None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"recalibrate_bn: batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(x_batches, torch.Tensor):
        batches: Iterable[torch.Tensor] = torch.split(x_batches, batch_size)
    else:
        batches = x_batches
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(m, m.momentum) for m in norms]
    device = next(model.parameters()).device
    seen = 0
    try:
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        with torch.no_grad():
            for xb in batches:
                xb = xb.to(device)
                if resolution is not None:
                    xb = resize_to(xb, resolution)
                model(xb)
                seen += int(xb.shape[0])
    finally:
        for m, momentum in momenta:
            m.momentum = momentum
        for module, mode in modes:
            module.training = mode
    if seen == 0:
        raise ConfigError("recalibrate_bn: x_batches held no images; pass training images")


class SupernetScorer:
    """Inherited-weight accuracy of sub-networks of a trained supernet.

    ``accuracy(arch)`` extracts the sub-network (the supernet is not changed), re-estimates its
    BatchNorm statistics on a fixed calibration set (the first ``calibration_images`` of a
    seeded shuffle of the training split, cached), and returns its accuracy on a split, resized
    to the architecture's resolution. Results are cached per (architecture, split); every step
    is deterministic, so one arch always scores the same.

    Args:
        supernet: the trained supernet.
        dataset: the data it was trained on (:func:`hwnas.data.load_dataset`).
        calibration_images: training images for the BatchNorm statistics (OFA: 2,000; all of
            them when the split is smaller).
        batch_size: images per calibration and evaluation batch.
        seed: seeds the choice of calibration images.

    Example:
        >>> scorer = SupernetScorer(supernet, dataset)  # doctest: +SKIP
        >>> scorer.accuracy(arch, split="valid")  # doctest: +SKIP
        0.93
    """

    def __init__(
        self,
        supernet: MBV3Supernet,
        dataset: Dataset,
        *,
        calibration_images: int = CALIBRATION_IMAGES,
        batch_size: int = CALIBRATION_BATCH,
        seed: int = 0,
    ) -> None:
        if not isinstance(supernet, MBV3Supernet):
            raise ConfigError(
                f"SupernetScorer needs an MBV3Supernet, got {type(supernet).__name__}"
            )
        for name, value in (("calibration_images", calibration_images), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SupernetScorer: {name} must be an integer >= 1, got {value!r}")
        self.supernet, self.dataset = supernet, dataset
        self.calibration_images, self.batch_size, self.seed = calibration_images, batch_size, seed
        self._calibration: torch.Tensor | None = None
        self._cache: dict[tuple[str, str], float] = {}

    def calibration_batch(self) -> torch.Tensor:
        """The calibration images (computed once)."""
        if self._calibration is None:
            x, _ = self.dataset.tensors("train")
            if x.shape[0] == 0:
                raise ConfigError("SupernetScorer: the dataset's train split is empty")
            order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(self.seed))
            self._calibration = x[order[: self.calibration_images]].clone()
        return self._calibration

    def subnet(self, arch: Arch) -> nn.Module:
        """The standalone sub-network of ``arch`` with recalibrated BatchNorm, in eval mode."""
        arch = self.supernet.space.validate(arch)
        net = self.supernet.extract(arch)
        recalibrate_bn(
            net, resize_to(self.calibration_batch(), arch["r"]), batch_size=self.batch_size
        )
        return net.eval()

    def accuracy(self, arch: Arch, split: str = "valid") -> float:
        """Accuracy in [0, 1] of ``arch``'s sub-network on ``split`` after recalibration."""
        arch = self.supernet.space.validate(arch)
        key = (self.supernet.space.to_string(arch), split)
        if key not in self._cache:
            x, y = self.dataset.tensors(split)
            if x.shape[0] == 0:
                raise ConfigError(f"SupernetScorer: the {split!r} split is empty; score another")
            _, acc = evaluate(self.subnet(arch), resize_to(x, arch["r"]), y, self.batch_size)
            self._cache[key] = acc
        return self._cache[key]

    def clear(self) -> None:
        """Forget cached accuracies (after the supernet's weights changed)."""
        self._cache.clear()
