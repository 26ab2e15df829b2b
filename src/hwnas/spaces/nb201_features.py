"""Latency features of NB201 cells (:meth:`NB201Space.latency_feature_set`).

Op identity per edge, op counts (all edges and live ones), per-edge FLOPs and memory traffic,
per-stage totals, and graph facts: an edge is *live* when it lies on a path from the cell input to
the cell output through non-``none`` edges, and a cell without any such path is *degenerate* (its
network computes a constant). Devices differ in what they pay for dead edges: the PyTorch network
computes every edge, while the HW-NAS-Bench mobile exports fold some dead branches (and most
degenerate networks) away, so both the raw and the live counts are features. Conventions as
:mod:`hwnas.hardware.features`; vectorised over a batch (the 15,625 cells take well under a
second).
"""

from __future__ import annotations

import numpy as np

from hwnas.spaces.base import SearchSpace
from hwnas.spaces.hooks import BYTES, MB, FeatureSet
from hwnas.spaces.nb201 import NB201_EDGES
from hwnas.spaces.nb201_cost import NB201_OPS, nb201_params_flops

_NONE, _SKIP, _C1, _C3, _POOL = (NB201_OPS.index(o) for o in NB201_OPS)
_CONV_KERNEL = {_C1: 1, _C3: 3}


def _nb201_graph(code: np.ndarray) -> dict[str, np.ndarray]:
    """Reachability, liveness and path facts of a batch of cells (``code``: ``(n, 6)``)."""
    on = code != _NONE
    conv = (code == _C1) | (code == _C3)
    e = {edge: (on[:, k], conv[:, k]) for k, edge in enumerate(NB201_EDGES)}
    n = len(code)
    # reach[j]: node j gets the input through non-none edges; coreach[j]: j feeds node 3.
    reach = [np.ones(n, dtype=bool)]
    for j in (1, 2, 3):
        reach.append(np.logical_or.reduce([reach[i] & e[(j, i)][0] for i in range(j)]))
    coreach = [np.zeros(n, dtype=bool)] * 3 + [np.ones(n, dtype=bool)]
    for i in (2, 1, 0):
        coreach[i] = np.logical_or.reduce([e[(j, i)][0] & coreach[j] for j in range(i + 1, 4)])
    live = np.column_stack(
        [reach[i] & on[:, k] & coreach[j] for k, (j, i) in enumerate(NB201_EDGES)]
    )
    # Paths 0 -> 3 (count, most and fewest convs, longest) by dynamic programming over the DAG.
    count = [np.ones(n)]
    most = [np.zeros(n)]
    fewest = [np.zeros(n)]
    depth = [np.zeros(n)]
    for j in (1, 2, 3):
        c = np.zeros(n)
        hi = np.full(n, -np.inf)
        lo = np.full(n, np.inf)
        dp = np.full(n, -np.inf)
        for i in range(j):
            ok, is_conv = e[(j, i)]
            ok = ok & (count[i] > 0)
            c = c + np.where(ok, count[i], 0.0)
            hi = np.where(ok, np.maximum(hi, most[i] + is_conv), hi)
            lo = np.where(ok, np.minimum(lo, fewest[i] + is_conv), lo)
            dp = np.where(ok, np.maximum(dp, depth[i] + 1), dp)
        count.append(c)
        most.append(hi)
        fewest.append(lo)
        depth.append(dp)
    degenerate = count[3] == 0
    # Adds at a node: one fewer than its live incoming edges.
    adds = np.zeros(n)
    for j in (1, 2, 3):
        incoming = [k for k, (t, _) in enumerate(NB201_EDGES) if t == j]
        adds += np.maximum(live[:, incoming].sum(axis=1) - 1, 0)
    clean = lambda a: np.where(degenerate, 0.0, a)  # noqa: E731
    return {
        "live": live,
        "degenerate": degenerate,
        "n_paths": count[3],
        "max_path_convs": clean(most[3]),
        "min_path_convs": clean(fewest[3]),
        "depth": clean(depth[3]),
        "adds": adds,
    }


def _nb201_op_costs(C: int, N: int, input_size: int) -> tuple[np.ndarray, ...]:
    """Per stage and op: (MACs, params, activation bytes, weight bytes) of one edge, all cells."""
    macs, params, act, wts = (np.zeros((3, len(NB201_OPS))) for _ in range(4))
    for s in range(3):
        c, hw = C * 2**s, (input_size // 2**s) ** 2
        for op, k in _CONV_KERNEL.items():
            macs[s, op] = N * c * c * k * k * hw
            params[s, op] = N * (c * c * k * k + 2 * c)  # conv + BN affine
            act[s, op] = N * BYTES * 2 * c * hw  # read input, write output
            wts[s, op] = N * BYTES * c * c * k * k
        act[s, _POOL] = N * BYTES * 2 * c * hw
    return macs, params, act, wts


def nb201_feature_set(space: SearchSpace) -> FeatureSet:
    """Features of NB201 cells (the network repeats one cell ``cells`` times in each of 3
    stages; channels, cells, input size and classes as the space builds it)."""
    num_classes = int(getattr(space, "num_classes", 10))
    input_size = int(getattr(space, "input_size", 32))
    C, N = int(getattr(space, "channels", 16)), int(getattr(space, "cells", 5))
    in_channels = int(getattr(space, "in_channels", 3))
    macs, params, act, wts = _nb201_op_costs(C, N, input_size)
    fixed_params, fixed_macs = nb201_params_flops(
        ["none"] * 6,
        num_classes=num_classes,
        input_size=input_size,
        C=C,
        N=N,
        in_channels=in_channels,
    )
    add_bytes = np.array([N * BYTES * 3 * C * 2**s * (input_size // 2**s) ** 2 for s in range(3)])
    ops = NB201_OPS
    live_ops = [o for o in ops if o != "none"]
    names = [f"edge{k}={o}" for k in range(6) for o in ops]
    names += [f"live_edge{k}={o}" for k in range(6) for o in live_ops]
    names += [f"count={o}" for o in ops] + [f"live_count={o}" for o in live_ops]
    names += [f"edge{k}_flops_m" for k in range(6)] + [f"edge{k}_mem_mb" for k in range(6)]
    for s in range(3):
        names += [f"stage{s}_{q}" for q in ("flops_m", "act_mb", "weight_mb", "live_mem_mb")]
    names += ["n_kernel1x1", "n_kernel3x3", "n_pool3x3", "live_convs", "n_paths"]
    names += ["max_path_convs", "min_path_convs", "depth", "live_adds", "degenerate"]
    names += ["params_m", "flops_m", "mem_mb", "live_params_m", "live_flops_m", "live_mem_mb"]

    def matrix(code: np.ndarray) -> np.ndarray:
        n = len(code)
        g = _nb201_graph(code)
        live = g["live"]
        onehot = np.eye(len(ops))[code]  # (n, 6, 5)
        live_onehot = onehot[:, :, 1:] * live[:, :, None]
        e_macs = macs.sum(0)[code]  # (n, 6): whole network, per edge
        e_params = params.sum(0)[code]
        e_mem = (act + wts).sum(0)[code]
        st_macs = macs[:, code].sum(2).T  # (n, 3)
        st_act = act[:, code].sum(2).T
        st_wts = wts[:, code].sum(2).T
        st_live = ((act + wts)[:, code] * live[None]).sum(2).T + g["adds"][:, None] * add_bytes
        alive = ~g["degenerate"]
        cols = [
            onehot.reshape(n, -1),
            live_onehot.reshape(n, -1),
            onehot.sum(1),
            live_onehot.sum(1),
            e_macs / MB,
            e_mem / MB,
            np.stack([st_macs / MB, st_act / MB, st_wts / MB, st_live / MB], axis=2).reshape(n, -1),
            np.column_stack(
                [
                    (code == _C1).sum(1),
                    (code == _C3).sum(1),
                    (code == _POOL).sum(1),
                    (live & ((code == _C1) | (code == _C3))).sum(1),
                    g["n_paths"],
                    g["max_path_convs"],
                    g["min_path_convs"],
                    g["depth"],
                    g["adds"],
                    g["degenerate"],
                    fixed_params + e_params.sum(1) / MB,
                    fixed_macs + e_macs.sum(1) / MB,
                    e_mem.sum(1) / MB,  # cells only: the rest is the same for all
                    alive * (fixed_params + (e_params * live).sum(1) / MB),
                    alive * (fixed_macs + (e_macs * live).sum(1) / MB),
                    st_live.sum(1) / MB,
                ]
            ),
        ]
        return np.column_stack(cols).astype(np.float64)

    return FeatureSet("nb201", tuple(names), matrix)
