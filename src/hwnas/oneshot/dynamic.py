"""Elastic layers of a weight-sharing supernet, after Once-for-All's ``elastic_nn/modules``
(Cai et al., ICLR 2020; mit-han-lab/once-for-all, ``ofa/imagenet_classification/elastic_nn/
modules/dynamic_op.py``).

Each layer holds the weights of its largest setting and runs a smaller one on slices of them:
the first ``c`` input and output channels, and for depthwise convolutions a smaller kernel
made from the centre of the largest one. Which setting runs is an argument of ``forward`` (the
input's channel count fixes the input width), so one module serves every sub-network.

Elastic kernel (OFA section 3.2): the ``k x k`` kernel of a ``K x K`` depthwise conv is the
centre ``k x k`` crop of the ``K x K`` weights passed through a learned linear map of its
``k * k`` entries, one matrix per kernel step (``7 -> 5`` then ``5 -> 3``), shared by all
channels of the layer and initialised to the identity, so at initialisation a small kernel is
exactly the centre crop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError


class DynamicConv2d(nn.Module):
    """A conv whose first ``c`` input and output channels, and (depthwise) whose kernel size,
    can shrink.

    Args:
        in_channels: largest input width.
        out_channels: largest output width (equal to ``in_channels`` when ``depthwise``).
        kernel_sizes: the kernel sizes it can run, e.g. ``(3, 5, 7)``; the weights are stored at
            the largest. More than one needs ``depthwise``.
        stride: the conv's stride; padding is ``k // 2`` ("same" for odd kernels).
        depthwise: one filter per channel (``groups`` = channels).
        bias: whether the conv has a bias.
        transform: learn OFA's kernel transformation matrices (else a smaller kernel is the bare
            centre crop).

    Example:
        >>> conv = DynamicConv2d(8, 8, (3, 5, 7), depthwise=True)
        >>> conv(torch.zeros(1, 4, 6, 6), kernel_size=5).shape
        torch.Size([1, 4, 6, 6])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: tuple[int, ...] = (1,),
        *,
        stride: int = 1,
        depthwise: bool = False,
        bias: bool = False,
        transform: bool = True,
    ) -> None:
        super().__init__()
        sizes = tuple(sorted(set(kernel_sizes)))
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ConfigError(f"DynamicConv2d: kernel sizes must be odd and >= 1, got {sizes}")
        if len(sizes) > 1 and not depthwise:
            raise ConfigError("DynamicConv2d: an elastic kernel needs depthwise=True")
        if depthwise and in_channels != out_channels:
            raise ConfigError(
                f"DynamicConv2d: a depthwise conv keeps its width, got in_channels="
                f"{in_channels}, out_channels={out_channels}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_sizes = sizes
        self.stride, self.depthwise = stride, depthwise
        k = sizes[-1]
        self.weight = nn.Parameter(torch.empty(out_channels, 1 if depthwise else in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._steps: list[tuple[int, int]] = list(zip(sizes[:0:-1], sizes[-2::-1]))
        if transform:
            for big, small in self._steps:
                self.register_parameter(
                    self.transform_name(big, small), nn.Parameter(torch.eye(small * small))
                )
        self.transform = transform

    @staticmethod
    def transform_name(big: int, small: int) -> str:
        """The parameter name of the ``big -> small`` kernel transformation matrix."""
        return f"transform_{big}to{small}"

    def active_filter(self, out_channels: int, in_channels: int, kernel_size: int) -> torch.Tensor:
        """The weights of the ``(out_channels, in_channels, kernel_size)`` setting: the first
        channels, and for a smaller kernel the centre crops transformed step by step from the
        largest kernel down (``7 -> 5 -> 3``). ``in_channels`` is ignored for a depthwise conv."""
        if kernel_size not in self.kernel_sizes:
            raise ConfigError(
                f"DynamicConv2d: kernel size {kernel_size} is not one of {self.kernel_sizes}"
            )
        filt = (
            self.weight[:out_channels]
            if self.depthwise
            else self.weight[:out_channels, :in_channels]
        )
        for big, small in self._steps:
            if big <= kernel_size:
                break
            start = (big - small) // 2
            crop = filt[:, :, start : start + small, start : start + small]
            if self.transform:
                matrix = getattr(self, self.transform_name(big, small))
                flat = F.linear(crop.reshape(-1, small * small), matrix)
                crop = flat.reshape(crop.shape[0], crop.shape[1], small, small)
            filt = crop
        return filt

    def forward(
        self,
        x: torch.Tensor,
        *,
        out_channels: int | None = None,
        kernel_size: int | None = None,
    ) -> torch.Tensor:
        c_in = x.shape[1]
        c_out = c_in if self.depthwise else (out_channels or self.out_channels)
        k = kernel_size or self.kernel_sizes[-1]
        weight = self.active_filter(c_out, c_in, k)
        # Taps further than size - 1 from the centre only ever read padding: drop them, which
        # gives the same output much faster on the 1x1 and 2x2 maps of small inputs.
        reach = 2 * min(x.shape[-2], x.shape[-1]) - 1
        if k > reach:
            start = (k - reach) // 2
            weight, k = weight[:, :, start : start + reach, start : start + reach], reach
        bias = None if self.bias is None else self.bias[:c_out]
        groups = c_in if self.depthwise else 1
        return F.conv2d(x, weight, bias, self.stride, k // 2, 1, groups)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """OFA's ``he_fout`` initialisation: normal with std ``sqrt(2 / (k * k * out))``; zero
        bias; identity transforms."""
        k = self.kernel_sizes[-1]
        std = math.sqrt(2.0 / (k * k * self.out_channels))
        with torch.no_grad():
            self.weight.normal_(0.0, std, generator=generator)
            if self.bias is not None:
                self.bias.zero_()
            if self.transform:
                for big, small in self._steps:
                    getattr(self, self.transform_name(big, small)).copy_(torch.eye(small * small))


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``c`` channels of its statistics and affine parameters, ``c``
    being the input's channel count (OFA's ``DynamicBatchNorm2d``).

    In training mode it updates the running statistics of those channels only (in place, on
    views of the full buffers); with ``momentum=None`` it keeps a cumulative average, as
    :func:`hwnas.oneshot.recalibrate_bn` uses.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.num_features:
            raise ConfigError(
                f"DynamicBatchNorm2d: got {c} channels, at most {self.num_features} allowed"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        mean = None if self.running_mean is None else self.running_mean[:c]
        var = None if self.running_var is None else self.running_var[:c]
        weight = None if self.weight is None else self.weight[:c]
        bias = None if self.bias is None else self.bias[:c]
        return F.batch_norm(x, mean, var, weight, bias, use_batch, factor, self.eps)


class DynamicLinear(nn.Module):
    """A linear layer whose first ``c`` input features are used, ``c`` being the input's width
    (OFA's ``DynamicLinear`` with a fixed output)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default: uniform in ``+-1/sqrt(in_features)``; zero bias (as OFA)."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.zero_()


class DynamicSE(nn.Module):
    """Squeeze-excite with elastic channels (OFA's ``DynamicSE``): mean over space, 1x1
    ``reduce`` to the first ``se_channels``, ReLU, 1x1 ``expand`` back to the input's width,
    hard-sigmoid gate. Module names match :class:`hwnas.spaces.mbv3_torch.SqueezeExcite`."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = DynamicConv2d(channels, reduced, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = DynamicConv2d(reduced, channels, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor, *, se_channels: int) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        y = self.act(self.reduce(y, out_channels=se_channels))
        return x * self.gate(self.expand(y, out_channels=x.shape[1]))
