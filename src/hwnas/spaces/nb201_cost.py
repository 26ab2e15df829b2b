"""Closed-form parameter and FLOP counts of the NB201 network (pure Python, no torch).

FLOPs convention: ``flops_m`` is millions of multiply-accumulates (MACs) of the conv and linear
layers; biases, BatchNorm, activations, pooling and additions are not counted. This is what
NAS-Bench-201 reports as "FLOPs" (7.78 M for a cell without convs up to 220.11 M for the all-3x3
cell on CIFAR-10, Dong & Yang, ICLR 2020), and exactly half of ``torch.utils.flop_counter``'s total
(it counts 2 FLOPs per MAC and only matmul-like ops); the tests check both.

NASLib's zero-cost tables (``flops.score`` in ``zc_nasbench201.json``) instead come from
tensorwatch's torchstat counter (automl/NASLib,
``naslib/predictors/utils/pruners/measures/model_stats.py``), which adds per-element counts for
BatchNorm (2 if affine), ReLU (1 per input element), pooling (kernel area per output element)
and adaptive pooling (``C * (H + 1) * (W + 1)``).
:func:`nb201_torchstat_flops` reproduces those numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from hwnas.errors import ConfigError
from hwnas.spaces.tally import Tally, check_ops, check_positive

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)


def _nb201_tally(
    ops: Sequence[str], *, num_classes: int, input_size: int, C: int, N: int, in_channels: int = 3
) -> Tally:
    ops = check_ops(ops, NB201_OPS, 6, "nb201")
    check_positive("nb201", num_classes=num_classes, C=C, N=N, in_channels=in_channels)
    if input_size < 4 or input_size % 4:
        # Odd sizes before a reduction cell make its two branches disagree in shape.
        raise ConfigError(f"nb201: input_size must be a multiple of 4, got {input_size}")
    t = Tally()
    size, c = input_size, C
    t.conv(in_channels, c, 3, size)
    t.bn(c, size)
    for stage in range(3):
        if stage > 0:
            # ResNet basic block: ReLU-Conv-BN (3x3, stride 2), ReLU-Conv-BN (3x3),
            # shortcut 2x2 average pool + 1x1 conv.
            t.relu(c, size)
            half = t.conv(c, 2 * c, 3, size, stride=2)
            t.bn(2 * c, half)
            t.relu(2 * c, half)
            t.conv(2 * c, 2 * c, 3, half)
            t.bn(2 * c, half)
            t.pool(c, half, 2)
            t.conv(c, 2 * c, 1, half)
            size, c = half, 2 * c
        for _ in range(N):
            for op in ops:
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    t.relu(c, size)
                    t.conv(c, c, 1 if op == "nor_conv_1x1" else 3, size)
                    t.bn(c, size)
                elif op == "avg_pool_3x3":
                    t.pool(c, size, 3)
    t.bn(c, size)
    t.relu(c, size)
    t.global_pool(c, size)
    t.linear(c, num_classes)
    return t


def nb201_params_flops(
    ops: Sequence[str],
    *,
    num_classes: int = 10,
    input_size: int = 32,
    C: int = 16,
    N: int = 5,
    in_channels: int = 3,
) -> tuple[float, float]:
    """Parameters and MACs of the standard NAS-Bench-201 network for one cell.

    The network is the one :func:`hwnas.spaces.nb201_torch.build_nb201_network` builds; the
    parameter count (BatchNorm affine weights included) equals its ``parameters()`` total.

    Args:
        ops: the 6 op names in canonical-string edge order.
        num_classes: classifier outputs (10, 100, or 120 for ImageNet16-120).
        input_size: input side length, a multiple of 4 (32, or 16 for ImageNet16-120).
        C: channels of the first stage.
        N: cells per stage.
        in_channels: channels of the input images (3 in the benchmark).

    Returns:
        ``(params_m, flops_m)``: millions of parameters and millions of conv/linear MACs
        (the NAS-Bench-201 "FLOPs" convention, half of ``torch.utils.flop_counter``'s count).

    Raises:
        ConfigError: an op name, the op count or a size option is invalid.

    Example:
        >>> nb201_params_flops(["nor_conv_3x3"] * 6)
        (1.531546, 220.11968)
    """
    checked = check_ops(ops, NB201_OPS, 6, "nb201")
    base, per_edge = _nb201_edge_table(num_classes, input_size, C, N, in_channels)
    params, macs = base
    for i, op in enumerate(checked):
        p, m = per_edge[i][op]
        params += p
        macs += m
    return params / 1e6, macs / 1e6


@lru_cache(maxsize=32)
def _nb201_edge_table(
    num_classes: int, input_size: int, C: int, N: int, in_channels: int = 3
) -> tuple[tuple[int, int], list[dict[str, tuple[int, int]]]]:
    """Counts of the all-``none`` network plus what each op adds on each edge.

    Edges contribute independently (a node sums its inputs; ``none`` adds nothing), so a
    network's counts are the base plus one table entry per edge: a lookup instead of a walk.
    """
    sizes = {"num_classes": num_classes, "input_size": input_size, "C": C, "N": N}
    base_t = _nb201_tally(["none"] * 6, **sizes, in_channels=in_channels)
    base = (base_t.params, base_t.macs)
    table: list[dict[str, tuple[int, int]]] = []
    for i in range(6):
        row = {}
        for op in NB201_OPS:
            ops = ["none"] * 6
            ops[i] = op
            t = _nb201_tally(ops, **sizes, in_channels=in_channels)
            row[op] = (t.params - base[0], t.macs - base[1])
        table.append(row)
    return base, table


def nb201_torchstat_flops(
    ops: Sequence[str], *, num_classes: int = 10, input_size: int = 32, C: int = 16, N: int = 5
) -> float:
    """Millions of "FLOPs" as tensorwatch's torchstat counts them, i.e. NASLib's ``flops.score``.

    MACs of convs and linears plus BatchNorm (2 per element), ReLU (1 per input element), pooling
    (kernel area per output element) and global pooling (``C * (H + 1) * (W + 1)``). Use it to
    compare with NASLib's zero-cost tables; :func:`nb201_params_flops` is the convention to use
    elsewhere.

    Args:
        ops: the 6 op names in canonical-string edge order.
        num_classes: classifier outputs.
        input_size: input side length, a multiple of 4.
        C: channels of the first stage.
        N: cells per stage.

    Example:
        >>> nb201_torchstat_flops(["nor_conv_3x3"] * 6)
        222.860992
    """
    t = _nb201_tally(ops, num_classes=num_classes, input_size=input_size, C=C, N=N)
    return (t.macs + t.elementwise) / 1e6
