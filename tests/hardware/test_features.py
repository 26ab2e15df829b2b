"""Latency features: names match columns, values are deterministic, totals match the analytic
counts, and the NB201 graph facts (paths, live edges, degenerate cells) match a brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.hardware.features import (
    arch_features,
    degenerate_mask,
    feature_matrix,
    feature_names,
)
from hwnas.spaces import create_space
from hwnas.spaces.base import CategoricalSpace
from hwnas.spaces.fbnet_cost import fbnet_params_flops
from hwnas.spaces.nb201 import NB201_EDGES
from hwnas.spaces.nb201_cost import nb201_params_flops


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("nb201", {}),
        ("nb201", {"channels": 8, "cells": 2, "in_channels": 1, "input_size": 16}),
        ("fbnet", {"num_classes": 10}),
    ],
)
def test_names_match_columns_and_values_are_deterministic(name: str, options: dict) -> None:
    space = create_space(name, **options)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    names = feature_names(space)
    X = feature_matrix(space, archs)
    assert X.shape == (40, len(names))
    assert len(set(names)) == len(names)
    assert X.dtype == np.float64 and np.all(np.isfinite(X))
    assert np.array_equal(X, feature_matrix(space, archs))
    assert np.array_equal(arch_features(space, archs[3]), X[3])
    as_strings = feature_matrix(space, [space.to_string(a) for a in archs])
    assert np.array_equal(as_strings, X)
    # Totals agree with the closed-form counts the space reports as cheap metrics.
    for arch, row in zip(archs, X):
        cheap = space.cheap_metrics(arch)
        assert row[names.index("flops_m")] == pytest.approx(cheap["flops_m"], rel=1e-12)
        assert row[names.index("params_m")] == pytest.approx(cheap["params_m"], rel=1e-12)


def test_fbnet_layer_flops_sum_to_the_network() -> None:
    space = create_space("fbnet")
    arch = {"ops": ["k5_e6"] * 22}
    x = arch_features(space, arch)
    names = feature_names(space)
    layers = sum(x[names.index(f"layer{i}_flops_m")] for i in range(22))
    _, all_skip = fbnet_params_flops(["skip"] * 22)
    _, total = fbnet_params_flops(arch["ops"])
    assert x[names.index("count=k5_e6")] == 22
    assert x[names.index("n_k5")] == 22 and x[names.index("n_e6")] == 22
    assert x[names.index("stage1_count=k5_e6")] == 4  # stage 1 has 4 layers
    assert layers > 0 and total - layers < all_skip  # the rest is stem, head and classifier


def _brute_paths(ops: list[str]) -> list[list[int]]:
    """Every input->output path as a list of edge positions, through non-none edges."""
    out = []

    def walk(node: int, path: list[int]) -> None:
        if node == 3:
            out.append(path)
            return
        for k, (t, s) in enumerate(NB201_EDGES):
            if s == node and ops[k] != "none":
                walk(t, [*path, k])

    walk(0, [])
    return out


def test_nb201_graph_facts_match_brute_force_on_every_cell() -> None:
    space = create_space("nb201")
    archs = list(space.enumerate())
    X = feature_matrix(space, archs)
    names = feature_names(space)
    col = {n: X[:, names.index(n)] for n in ("degenerate", "n_paths", "max_path_convs", "depth")}
    for i, arch in enumerate(archs):
        paths = _brute_paths(arch["ops"])
        convs = [sum("conv" in arch["ops"][k] for k in p) for p in paths]
        assert col["degenerate"][i] == float(not paths)
        assert col["n_paths"][i] == len(paths)
        assert col["max_path_convs"][i] == max(convs, default=0)
        assert col["depth"][i] == max((len(p) for p in paths), default=0)
    assert int(col["degenerate"].sum()) == 341
    assert degenerate_mask(space, archs).sum() == 341


def test_nb201_live_edges_and_hand_checked_cells() -> None:
    space = create_space("nb201")
    names = feature_names(space)

    def feats(s: str) -> dict[str, float]:
        return dict(zip(names, arch_features(space, s)))

    dense = feats(space.to_string({"ops": ["nor_conv_3x3"] * 6}))
    assert (dense["n_paths"], dense["max_path_convs"], dense["min_path_convs"]) == (4, 3, 1)
    assert dense["live_adds"] == 3 and dense["live_convs"] == 6 and dense["degenerate"] == 0
    assert dense["live_flops_m"] == pytest.approx(dense["flops_m"])
    # Convs on nodes 1 and 2 that never reach node 3 are dead; only the skip 0->3 is live.
    dead = feats("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|")
    assert dead["live_convs"] == 0 and dead["live_count=skip_connect"] == 1
    assert dead["count=nor_conv_3x3"] == 3 and dead["live_edge3=skip_connect"] == 1
    _, fixed = nb201_params_flops(["none"] * 6)
    assert dead["live_flops_m"] == pytest.approx(fixed)
    assert dead["flops_m"] > dead["live_flops_m"]
    # Node 2 only gets 'none' edges, so the conv 2->3 sees no input: degenerate.
    cut = feats("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert cut["degenerate"] == 1 and cut["live_flops_m"] == 0 and cut["n_paths"] == 0
    assert cut["edge0=nor_conv_3x3"] == 1 and cut["edge1=none"] == 1


def test_per_stage_memory_traffic_differs_but_flops_do_not() -> None:
    space = create_space("nb201")
    names = feature_names(space)
    x = dict(zip(names, arch_features(space, {"ops": ["nor_conv_3x3"] * 6})))
    assert x["stage0_flops_m"] == pytest.approx(x["stage2_flops_m"])  # C doubles, H*W quarters
    assert x["stage0_act_mb"] == pytest.approx(4 * x["stage2_act_mb"])
    assert x["stage2_weight_mb"] == pytest.approx(16 * x["stage0_weight_mb"])


def test_a_space_without_features_names_the_ones_that_have_them() -> None:
    class Toy(CategoricalSpace):
        name = "toy"
        slots = (("a", "b"),)

        def to_string(self, arch):  # type: ignore[no-untyped-def]
            return arch["ops"][0]

        def from_string(self, text):  # type: ignore[no-untyped-def]
            return {"ops": [text]}

    with pytest.raises(ConfigError, match=r"unknown latency feature set 'toy'; choose from fbnet"):
        feature_names(Toy())
