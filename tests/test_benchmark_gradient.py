"""benchmarks/nb201_gradient.py's options (``--set``, each method's batch, ``--crop-padding``)
and its fidelity table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_scripts import imported


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with imported("nb201_gradient") as (nb201_gradient,):
        yield nb201_gradient


def _args(**over: object) -> argparse.Namespace:
    base = {"epochs": 20, "channels": 8, "cells": 1, "batch_size": None, "set": []}
    return argparse.Namespace(**{**base, **over})


def test_set_reads_key_and_yaml_value(bench: ModuleType) -> None:
    assert bench._setting("gradient=sampled") == ("gradient", "sampled")
    assert bench._setting("partial_k=2") == ("partial_k", 2)
    assert bench._setting("arch_betas=[0.5, 0.999]") == ("arch_betas", [0.5, 0.999])
    for bad in ("gradient", "=all"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            bench._setting(bad)


def test_method_options_keep_each_methods_batch_unless_given(bench: ModuleType) -> None:
    from hwnas.oneshot.relax.methods import method_settings

    opts = bench._method_options(_args(), "pc_darts")
    assert "batch_size" not in opts and opts["warmup_epochs"] == 6  # 15/50 of 20 epochs
    assert method_settings("pc_darts", opts).batch_size == 256
    opts = bench._method_options(_args(batch_size=64, set=[("gradient", "sampled")]), "gdas")
    assert opts["batch_size"] == 64 and opts["gradient"] == "sampled"
    assert method_settings("gdas", opts).gradient == "sampled"
    opts = bench._method_options(_args(set=[bench._setting("compute_device=auto")]), "darts")
    assert method_settings("darts", opts).compute_device == "auto"


def test_crop_padding_turns_on_random_crops_without_flips(bench: ModuleType) -> None:
    from hwnas.data import load_dataset

    base = {"data": "digits", "data_path": None, "image_size": 8}
    assert "augment" not in bench._data_spec(argparse.Namespace(**base, crop_padding=None))
    spec = bench._data_spec(argparse.Namespace(**base, crop_padding=2))
    assert spec["augment"] == {"crop_padding": 2, "flip": False}
    augmentation = load_dataset(spec).augmentation
    assert augmentation.active and augmentation.crop_padding == 2 and not augmentation.flip


def _fidelity_row(seed: int, train_accuracy: float | None) -> dict[str, object]:
    return {"method": "pc_darts", "seed": seed, "arch": f"cell{seed}", "wall_s": 10.0,
            "parameter_free_edges": 2, "cifar10": 93.0, "cifar100": 70.0,
            "ImageNet16-120": 40.0, "search_train_accuracy": train_accuracy}  # fmt: skip


def test_fidelity_table_shows_the_mixtures_training_accuracy(bench: ModuleType) -> None:
    rows = [_fidelity_row(0, 0.5), _fidelity_row(1, 0.7)]
    header, _, line = bench.table_md("fidelity", rows).splitlines()
    assert "mixture's train acc." in header
    assert "| 0.60 ± 0.10 |" in line and "`cell0` `cell1`" in line
    rows[1]["search_train_accuracy"] = None  # a row written before the field existed
    assert "| not recorded |" in bench.table_md("fidelity", rows).splitlines()[2]


def test_hardware_table_reproduces_a_stored_runs_markdown(bench: ModuleType) -> None:
    stem = Path(__file__).parents[1] / "benchmarks/results/nb201_gradient_hw_darts_target15_repairs"
    rows = json.loads(stem.with_suffix(".json").read_text())["rows"]
    md = bench.table_md("hardware", rows)
    assert "| measured cells: table latency ms / CIFAR-10 % |" in md  # the repair chains
    assert md in stem.with_suffix(".md").read_text()
