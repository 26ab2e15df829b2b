"""MobileNetV2 (Sandler et al., CVPR 2018) as a PyTorch module: the hand-designed width family
that issue #10's front is compared with (benchmarks/front_vs_family.py).

The layer table is the paper's Table 2 (:data:`hwnas.hardware.mcu.MOBILENET_V2_TABLE`); every
width is ``make_divisible(c * width, 8)`` and the last 1x1 conv keeps 1280 channels for widths
below 1 (the paper's section 6.1). ``stem_stride`` 1 is the small-input form (the stride the
``mbv3`` small preset's stem also drops for 28-px images: output stride 16 instead of 32).
"""

from __future__ import annotations

from torch import nn

from hwnas.hardware.mcu import MOBILENET_V2_TABLE
from hwnas.spaces.mbv3_plan import make_divisible

LAST_CHANNELS = 1280


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, groups: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out)]


class InvertedResidual(nn.Module):
    """Expand 1x1 (absent at expansion 1), depthwise 3x3, project 1x1 (linear bottleneck);
    identity shortcut at stride 1 with equal widths."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [*_conv_bn(c_in, hidden, 1, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(inplace=True)]
        layers += _conv_bn(hidden, c_out, 1, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = self.body(x)
        return x + out if self.residual else out


def mobilenet_v2(
    width: float = 1.0,
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    stem_stride: int = 2,
    dropout: float = 0.0,
) -> nn.Sequential:
    """MobileNetV2 at width multiplier ``width`` (0.35, 0.5, 0.75, 1.0 in the paper).

    Example:
        >>> net = mobilenet_v2(1.0)
        >>> sum(p.numel() for p in net.parameters())  # the paper's 3.4M (torchvision's count)
        3504872
    """
    c = make_divisible(32 * width)
    layers: list[nn.Module] = [*_conv_bn(in_channels, c, 3, stem_stride), nn.ReLU6(inplace=True)]
    for t, channels, n, s in MOBILENET_V2_TABLE:
        out = make_divisible(channels * width)
        for i in range(n):
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    last = make_divisible(LAST_CHANNELS * max(1.0, width))
    layers += [*_conv_bn(c, last, 1, 1), nn.ReLU6(inplace=True)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(last, num_classes))
    net = nn.Sequential(*layers)
    for m in net.modules():  # the paper's initialisation as torchvision writes it
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net
