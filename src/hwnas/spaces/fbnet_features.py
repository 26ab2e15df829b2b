"""Latency features of FBNet architectures (:meth:`FBNetSpace.latency_feature_set`).

Block identity per layer, block counts (overall and per stage), kernel and expansion counts,
per-layer and per-stage FLOPs and memory traffic, and the network totals. Conventions as
:mod:`hwnas.hardware.features`.
"""

from __future__ import annotations

import numpy as np

from hwnas.spaces.base import SearchSpace
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
from hwnas.spaces.hooks import BYTES, MB, FeatureSet


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
