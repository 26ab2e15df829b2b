"""NB201's operator decomposition for per-op latency tables (:meth:`NB201Space.lut_decomposer`).

Module factories import torch lazily, so decomposing (and predicting) needs no torch.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from hwnas.spaces.hooks import OpSpec, hw_key

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch
    from hwnas.spaces.nb201 import NB201Space


def _nb201_part(kind: str, c: int, extra: Any = None, in_channels: int = 3) -> Any:
    from torch import nn

    from hwnas.spaces import nb201_torch

    if kind == "stem":  # as NB201Network.stem
        return nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    if kind == "edge":
        return nb201_torch._edge_op(extra, c)
    if kind == "reduction":
        return nb201_torch._ResNetReduction(c, 2 * c)
    # head: lastact, pool, flatten, classifier
    return nn.Sequential(
        nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, extra)
    )


def nb201_ops(space: NB201Space, arch: Arch) -> list[OpSpec]:
    """NB201 (C channels, N cells per stage; 16 and 5 in the benchmark): stem, 6 edge ops x N
    cells x 3 stages, 2 reductions, head.

    ``none`` edges are listed too: the network computes them (``torch.zeros_like``). The node sums
    and the reductions' residual additions are the same for every cell and fall into the glue.
    """
    ops = space.validate(arch)["ops"]
    c, n, size, n_cls = space.channels, space.cells, space.input_size, space.num_classes
    c_in = space.in_channels
    shape: tuple[int, ...] = (c_in, size, size)
    stem = partial(_nb201_part, "stem", c, in_channels=c_in)
    out = [OpSpec(f"nb201/stem:c{c_in}-{c}:{hw_key(shape)}", shape, stem)]
    for stage in range(3):
        if stage > 0:
            shape = (c, size, size)
            key = f"nb201/reduction:c{c}-{2 * c}:{hw_key(shape)}"
            out.append(OpSpec(key, shape, partial(_nb201_part, "reduction", c)))
            c, size = 2 * c, size // 2
        shape = (c, size, size)
        edges = [
            OpSpec(
                f"nb201/edge:{op}:c{c}:{hw_key(shape)}", shape, partial(_nb201_part, "edge", c, op)
            )
            for op in ops
        ]
        out += edges * n
    key = f"nb201/head:c{c}:{hw_key(shape)}:n{n_cls}"
    out.append(OpSpec(key, shape, partial(_nb201_part, "head", c, n_cls)))
    return out
