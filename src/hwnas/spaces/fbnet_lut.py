"""FBNet's operator decomposition for per-op latency tables (:meth:`FBNetSpace.lut_decomposer`).

Module factories import torch lazily, so decomposing (and predicting) needs no torch.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from hwnas.spaces.fbnet_cost import FBNET_HEAD_CHANNELS, FBNET_STEM_CHANNELS, fbnet_layer_plan
from hwnas.spaces.hooks import OpSpec, hw_key

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch
    from hwnas.spaces.fbnet import FBNetSpace


def _fbnet_part(kind: str, *args: Any) -> Any:
    from torch import nn

    from hwnas.spaces import fbnet_torch

    if kind == "stem":
        return nn.Sequential(*fbnet_torch._conv_bn(3, args[0], 3))
    if kind == "layer":
        return fbnet_torch.fbnet_block(*args)
    c_in, n_cls = args  # head: 1x1 conv + BN + ReLU, pool, flatten, classifier
    return nn.Sequential(
        *fbnet_torch._conv_bn(c_in, FBNET_HEAD_CHANNELS, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(FBNET_HEAD_CHANNELS, n_cls),
    )


def fbnet_ops(space: FBNetSpace, arch: Arch) -> list[OpSpec]:
    """FBNet (HW-NAS-Bench CIFAR network): stem, the 22 layers' blocks, 1x1 head conv + classifier.

    A layer's key is (block, C_in, C_out, stride, input size); residual additions are inside the
    blocks, so only the Python dispatch between modules is left to the glue.
    """
    ops = space.validate(arch)["ops"]
    c, size, n_cls = FBNET_STEM_CHANNELS, space.input_size, space.num_classes
    shape: tuple[int, ...] = (3, size, size)
    out = [OpSpec(f"fbnet/stem:c3-{c}:{hw_key(shape)}", shape, partial(_fbnet_part, "stem", c))]
    for op, (c_in, c_out, stride) in zip(ops, fbnet_layer_plan(), strict=True):
        shape = (c_in, size, size)
        key = f"fbnet/layer:{op}:c{c_in}-{c_out}:s{stride}:{hw_key(shape)}"
        out.append(OpSpec(key, shape, partial(_fbnet_part, "layer", op, c_in, c_out, stride)))
        size, c = (size - 1) // stride + 1, c_out
    shape = (c, size, size)
    key = f"fbnet/head:c{c}-{FBNET_HEAD_CHANNELS}:{hw_key(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_fbnet_part, "head", c, n_cls)))
    return out
