"""PyTorch builder for one sub-network of the ``mbv3`` space (Once-for-All's MobileNetV3).

The widths of every layer come from :meth:`hwnas.spaces.mbv3.MBV3Space.plan` (a
:class:`~hwnas.spaces.mbv3_plan.NetworkPlan`), which also gives the closed-form cheap metrics,
so the parameter count here equals ``params_m`` exactly. Layers follow OFA's static
``MBConvLayer`` (mit-han-lab/once-for-all, ``ofa/utils/layers.py``): 1x1 expand, depthwise conv,
squeeze-excite after the depthwise activation, linear 1x1 projection. Module
names are listed in :mod:`hwnas.spaces.mbv3`'s docstring.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.spaces.mbv3_plan import BlockPlan, NetworkPlan


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ConfigError(f"mbv3: unknown activation {name!r}; choose from relu, hswish")


def _conv_bn_act(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1, act: str | None
) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(
            c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False
        ),
        bn=nn.BatchNorm2d(c_out),
    )
    if act is not None:
        layers["act"] = _act(act)
    return nn.Sequential(layers)


class SqueezeExcite(nn.Module):
    """Channel gating of MobileNetV3 (Howard et al., ICCV 2019): mean over space, 1x1 reduce,
    ReLU, 1x1 expand, hard-sigmoid."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(y))))


class MBConv(nn.Module):
    """One inverted-residual block: ``expand`` (absent for expansion 1), ``depthwise``, optional
    ``se``, ``project``, plus the identity shortcut where stride is 1 and widths match."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.expand: nn.Module | None = None
        if plan.expansion != 1:
            self.expand = _conv_bn_act(plan.c_in, plan.hidden, 1, act=plan.act)
        self.depthwise = _conv_bn_act(
            plan.hidden,
            plan.hidden,
            plan.kernel,
            stride=plan.stride,
            groups=plan.hidden,
            act=plan.act,
        )
        self.se: nn.Module | None = None
        if plan.se_channels:
            self.se = SqueezeExcite(plan.hidden, plan.se_channels)
        self.project = _conv_bn_act(plan.hidden, plan.c_out, 1, act=None)
        self.residual = plan.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.residual else out


class MBV3Network(nn.Module):
    """One sub-network of Once-for-All's MobileNetV3: only its active blocks, each with its own
    kernel and expansion."""

    def __init__(self, plan: NetworkPlan) -> None:
        super().__init__()
        self.stem = _conv_bn_act(
            plan.in_channels, plan.stem_channels, 3, stride=plan.stem_stride, act="hswish"
        )
        self.first_block = MBConv(plan.first_block)
        self.blocks = nn.ModuleList(MBConv(b) for b in plan.blocks)
        self.final_expand = _conv_bn_act(plan.blocks[-1].c_out, plan.final_expand, 1, act="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(plan.final_expand, plan.feature_mix, 1, bias=False),
                act=nn.Hardswish(inplace=True),
            )
        )
        self.dropout = nn.Dropout(plan.dropout)
        self.classifier = nn.Linear(plan.feature_mix, plan.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))
        for block in self.blocks:
            x = block(x)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def build_mbv3_network(plan: NetworkPlan) -> nn.Module:
    """Build the sub-network a :class:`~hwnas.spaces.mbv3.NetworkPlan` describes.

    Args:
        plan: the layer widths of one architecture, from
            :meth:`hwnas.spaces.mbv3.MBV3Space.plan`.

    Returns:
        An ``nn.Module`` mapping ``(B, in_channels, H, W)`` images to ``(B, num_classes)``
        logits; global pooling lets it take any ``H, W``, ``plan.resolution`` is the one searched.

    Example:
        >>> from hwnas.spaces.mbv3 import MBV3Space
        >>> space = MBV3Space(preset="small", input_size=28, in_channels=1)
        >>> arch = space.from_string("r28-w1.0|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3")
        >>> build_mbv3_network(space.plan(arch))(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if not isinstance(plan, NetworkPlan):
        raise ConfigError(
            f"mbv3: build_mbv3_network takes a NetworkPlan (MBV3Space.plan(arch)), "
            f"got {type(plan).__name__}"
        )
    return MBV3Network(plan)
