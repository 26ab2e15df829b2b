"""PyTorch builder for the CIFAR ResNet of the ``resnet`` space (He et al., CVPR 2016).

Layers as :mod:`hwnas.spaces.resnet` describes: ``stem`` (conv3x3, BN, ReLU), ``blocks`` (the
active basic blocks in order, each ``conv_a``/``bn_a``, ``conv_b``/``bn_b`` and ``shortcut``:
``Identity`` or a 1x1 conv + BN projection), ``pool`` and ``classifier``. Convs are bias-free and
He-initialised (fan-out, as torchvision's ResNet and TAS's ``initialize_resnet``).

The parameter count equals :func:`hwnas.spaces.resnet.plan_params_macs`, and the FLOPs that
``torch.utils.flop_counter`` counts are twice its MACs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.spaces.resnet import BlockPlan, ResNetPlan


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(plan.c_in, plan.mid, 3, plan.stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(plan.mid)
        self.conv_b = nn.Conv2d(plan.mid, plan.out, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(plan.out)
        self.shortcut: nn.Module = nn.Identity()
        if plan.projects:
            self.shortcut = nn.Sequential(
                nn.Conv2d(plan.c_in, plan.out, 1, plan.stride, 0, bias=False),
                nn.BatchNorm2d(plan.out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn_a(self.conv_a(x)))
        out = self.bn_b(self.conv_b(out))
        return F.relu(out + self.shortcut(x))


class ResNetNetwork(nn.Module):
    """The standalone network of one :class:`~hwnas.spaces.resnet.ResNetPlan`."""

    def __init__(self, plan: ResNetPlan) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(plan.in_channels, plan.stem, 3, 1, 1, bias=False),
            nn.BatchNorm2d(plan.stem),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*(BasicBlock(b) for b in plan.blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        last = plan.blocks[-1].out if plan.blocks else plan.stem
        self.classifier = nn.Linear(last, plan.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(self.pool(out), 1))


def build_resnet_network(plan: ResNetPlan) -> nn.Module:
    """Build the network of a plan (see :meth:`hwnas.spaces.resnet.ResNetSpace.network_plan`).

    Example:
        >>> from hwnas.spaces.resnet import ResNetSpace
        >>> space = ResNetSpace()
        >>> net = build_resnet_network(space.network_plan(space.full_arch()))
        >>> sum(p.numel() for p in net.parameters())
        272474
    """
    return ResNetNetwork(plan)
