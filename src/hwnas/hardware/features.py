"""Architecture features for latency prediction (nn-Meter style), one feature set per space.

A feature set turns architectures into a fixed-length float vector: op identity per position,
op counts (overall and per stage), kernel types, per-layer FLOPs and memory traffic (activation +
weight bytes, float32) computed in closed form, graph facts (convs on the input->output paths,
degenerate cells), and the network totals. Everything is vectorised over a batch: the 15,625 NB201
cells take well under a second.

A new space plugs in with one function registered under its name in :data:`FEATURE_SETS`.

Conventions: FLOPs are millions of conv/linear MACs (as :mod:`hwnas.spaces.nb201_cost`), memory
traffic is megabytes read + written by each conv / pool / add (4 bytes per value). For NB201 an
edge is *live* when it lies on a path from the cell input to the cell output through non-``none``
edges, and a cell without any such path is *degenerate* (its network computes a constant).
Devices differ in what they pay for dead edges: the PyTorch network computes every edge, while
the HW-NAS-Bench mobile exports fold some dead branches (and most degenerate networks) away, so
both the raw and the live counts are features.

Example:
    >>> from hwnas.spaces import create_space
    >>> space = create_space("nb201")
    >>> x = arch_features(space, space.from_string(
    ...     "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"))
    >>> float(x[feature_names(space).index("degenerate")])
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.registry import Registry
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.spaces.fbnet_cost import (
    FBNET_BLOCK_SPECS,
    FBNET_BLOCKS,
    FBNET_HEAD_CHANNELS,
    FBNET_LAYERS,
    FBNET_STAGES,
    FBNET_STEM_CHANNELS,
    fbnet_layer_plan,
    fbnet_params_flops,
)
from hwnas.spaces.nb201 import NB201_EDGES
from hwnas.spaces.nb201_cost import NB201_OPS, nb201_params_flops

BYTES = 4  # float32
MB = 1e6


@dataclass(frozen=True)
class FeatureSet:
    """Named features of one space: ``matrix(codes)`` maps an ``(n, slots)`` array of choice
    indices (``space.encode``) to an ``(n, len(names))`` float array."""

    space_name: str
    names: tuple[str, ...]
    matrix: Callable[[np.ndarray], np.ndarray]


FEATURE_SETS: Registry[FeatureSet] = Registry("latency feature set")


def feature_set(space: SearchSpace) -> FeatureSet:
    """The feature set of ``space`` (a :class:`ConfigError` names the spaces that have one)."""
    factory = FEATURE_SETS.get(space.name)
    return factory(space)


def feature_names(space: SearchSpace) -> list[str]:
    """Names of the features :func:`arch_features` returns for ``space``, in order."""
    return list(feature_set(space).names)


def encode_archs(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """``(n, slots)`` choice indices; strings are parsed as canonical architecture strings."""
    rows = [space.encode(space.from_string(a) if isinstance(a, str) else a) for a in archs]
    if not rows:
        return np.empty((0, 0), dtype=np.int64)
    return np.vstack(rows).astype(np.int64)


def feature_matrix(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """Features of many architectures as an ``(n, n_features)`` float64 array."""
    fs = feature_set(space)
    if len(archs) == 0:
        return np.empty((0, len(fs.names)))
    return fs.matrix(encode_archs(space, archs))


def arch_features(space: SearchSpace, arch: Arch | str) -> np.ndarray:
    """Features of one architecture as a float64 vector (see :func:`feature_names`)."""
    return feature_matrix(space, [arch])[0]


def degenerate_mask(space: SearchSpace, archs: Sequence[Arch | str]) -> np.ndarray:
    """True where an architecture computes a constant (NB201: no input->output path)."""
    fs = feature_set(space)
    if "degenerate" not in fs.names or len(archs) == 0:
        return np.zeros(len(archs), dtype=bool)
    return feature_matrix(space, archs)[:, fs.names.index("degenerate")] > 0.5


# --- NB201 ----------------------------------------------------------------------------------------
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


@FEATURE_SETS.register("nb201")
def nb201_feature_set(space: SearchSpace) -> FeatureSet:
    """Features of NB201 cells (the network repeats one cell 5 times in each of 3 stages)."""
    num_classes = int(getattr(space, "num_classes", 10))
    input_size = int(getattr(space, "input_size", 32))
    C, N = 16, 5
    macs, params, act, wts = _nb201_op_costs(C, N, input_size)
    fixed_params, fixed_macs = nb201_params_flops(
        ["none"] * 6, num_classes=num_classes, input_size=input_size, C=C, N=N
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


# --- FBNet ----------------------------------------------------------------------------------------
def _fbnet_layer_costs(input_size: int) -> tuple[np.ndarray, ...]:
    """Per layer and block: (MACs, params, activation bytes, weight bytes), plus stage of layer."""
    shape = (FBNET_LAYERS, len(FBNET_BLOCKS))
    macs, params, act, wts = (np.zeros(shape) for _ in range(4))
    size = input_size  # the stem conv keeps the resolution
    for i, (c_in, c_out, stride) in enumerate(fbnet_layer_plan()):
        out = (size - 1) // stride + 1
        for b, block in enumerate(FBNET_BLOCKS):
            if block == "skip":
                if stride != 1 or c_in != c_out:  # a strided 1x1 projection
                    w = c_in * c_out
                    macs[i, b], params[i, b] = w * out * out, w + 2 * c_out
                    act[i, b] = BYTES * (c_in * size * size + c_out * out * out)
                    wts[i, b] = BYTES * w
                continue
            k, e, g = FBNET_BLOCK_SPECS[block]
            hid = c_in * e
            ws = [c_in * hid // g, hid * k * k, hid * c_out // g]
            macs[i, b] = ws[0] * size * size + (ws[1] + ws[2]) * out * out
            params[i, b] = sum(ws) + 2 * (2 * hid + c_out)
            values = c_in * size * size + 2 * hid * size * size + 2 * hid * out * out
            values += c_out * out * out
            if stride == 1 and c_in == c_out:
                values += 3 * c_out * out * out  # residual add
            act[i, b] = BYTES * values
            wts[i, b] = BYTES * sum(ws)
        size = out
    return macs, params, act, wts


@FEATURE_SETS.register("fbnet")
def fbnet_feature_set(space: SearchSpace) -> FeatureSet:
    """Features of FBNet architectures (22 searchable layers in 7 stages)."""
    num_classes = int(getattr(space, "num_classes", 100))
    input_size = int(getattr(space, "input_size", 32))
    macs, params, act, wts = _fbnet_layer_costs(input_size)
    fixed_params, fixed_macs = fbnet_params_flops(
        ["skip"] * FBNET_LAYERS, num_classes=num_classes, input_size=input_size
    )
    skip_b = FBNET_BLOCKS.index("skip")
    # The all-skip network's cost is the fixed part plus the projections of its skip layers.
    fixed_params -= params[:, skip_b].sum() / MB
    fixed_macs -= macs[:, skip_b].sum() / MB
    stage_of = np.repeat(np.arange(len(FBNET_STAGES)), [s[1] for s in FBNET_STAGES])
    final = input_size
    for _, _, stride in fbnet_layer_plan():
        final = (final - 1) // stride + 1
    head_c = FBNET_STAGES[-1][0]
    fixed_act = BYTES * (3 + FBNET_STEM_CHANNELS) * input_size**2
    fixed_act += BYTES * (head_c + FBNET_HEAD_CHANNELS) * final**2
    fixed_wts = BYTES * (27 * FBNET_STEM_CHANNELS + head_c * FBNET_HEAD_CHANNELS)
    fixed_wts += BYTES * FBNET_HEAD_CHANNELS * num_classes
    kernel = np.array([FBNET_BLOCK_SPECS.get(b, (0, 0, 0))[0] for b in FBNET_BLOCKS])
    expand = np.array([FBNET_BLOCK_SPECS.get(b, (0, 0, 0))[1] for b in FBNET_BLOCKS])
    grouped = np.array([FBNET_BLOCK_SPECS.get(b, (0, 0, 0))[2] > 1 for b in FBNET_BLOCKS])
    n_stages = len(FBNET_STAGES)
    names = [f"layer{i}={b}" for i in range(FBNET_LAYERS) for b in FBNET_BLOCKS]
    names += [f"count={b}" for b in FBNET_BLOCKS]
    names += [f"stage{s}_count={b}" for s in range(n_stages) for b in FBNET_BLOCKS]
    names += ["n_k3", "n_k5", "n_e1", "n_e3", "n_e6", "n_grouped", "n_skip", "n_convs"]
    names += [f"layer{i}_flops_m" for i in range(FBNET_LAYERS)]
    names += [f"layer{i}_mem_mb" for i in range(FBNET_LAYERS)]
    names += [f"stage{s}_{q}" for s in range(n_stages) for q in ("flops_m", "mem_mb")]
    names += ["params_m", "flops_m", "mem_mb", "act_mb", "weight_mb"]
    layer_idx = np.arange(FBNET_LAYERS)
    projections = (macs[:, skip_b] > 0).astype(np.float64)
    stage_onehot = np.eye(n_stages)[stage_of]  # (22, 7)

    def matrix(code: np.ndarray) -> np.ndarray:
        n = len(code)
        onehot = np.eye(len(FBNET_BLOCKS))[code]  # (n, 22, 9)
        l_macs = macs[layer_idx, code]  # (n, 22)
        l_params = params[layer_idx, code]
        l_act = act[layer_idx, code]
        l_wts = wts[layer_idx, code]
        l_mem = l_act + l_wts
        is_skip = code == skip_b
        n_convs = np.where(is_skip, projections[None, :], 3.0).sum(1)
        cols = [
            onehot.reshape(n, -1),
            onehot.sum(1),
            np.einsum("nlb,ls->nsb", onehot, stage_onehot).reshape(n, -1),
            np.column_stack(
                [
                    (kernel[code] == 3).sum(1),
                    (kernel[code] == 5).sum(1),
                    (expand[code] == 1).sum(1),
                    (expand[code] == 3).sum(1),
                    (expand[code] == 6).sum(1),
                    grouped[code].sum(1),
                    is_skip.sum(1),
                    n_convs,
                ]
            ),
            l_macs / MB,
            l_mem / MB,
            np.stack([l_macs @ stage_onehot / MB, l_mem @ stage_onehot / MB], 2).reshape(n, -1),
            np.column_stack(
                [
                    fixed_params + l_params.sum(1) / MB,
                    fixed_macs + l_macs.sum(1) / MB,
                    (fixed_act + fixed_wts + l_mem.sum(1)) / MB,
                    (fixed_act + l_act.sum(1)) / MB,
                    (fixed_wts + l_wts.sum(1)) / MB,
                ]
            ),
        ]
        return np.column_stack(cols).astype(np.float64)

    return FeatureSet("fbnet", tuple(names), matrix)
