"""Tabular devices: lookups match the tables, bad names fail clearly, and predictor validation
reports figures with and without degenerate NB201 cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.errors import ConfigError, DataError
from hwnas.evaluation.base import MissingArchError
from hwnas.hardware.tabular import (
    FBNET_FILE,
    TabularDevice,
    load_fbnet_table,
    table_devices,
    validate_on_table,
)
from hwnas.spaces import create_space

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def fbnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a 200-row FBNet latency table whose latency sums per-block costs."""
    root = tmp_path_factory.mktemp("fbnet-data")
    (root / FBNET_FILE.parent).mkdir(parents=True)
    space = create_space("fbnet")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    cost = {b: 0.1 * i for i, b in enumerate(space.slots[0])}
    pd.DataFrame(
        {
            "sample": range(200),
            "op_idx_list": [
                " ".join(str(space.slots[0].index(o)) for o in a["ops"]) for a in archs
            ],
            "arch_str": [space.to_string(a) for a in archs],
            "raspi4": [2.0 + sum(cost[o] for o in a["ops"]) for a in archs],
            "pixel3": [1.0 + 0.5 * sum(cost[o] for o in a["ops"]) for a in archs],
        }
    ).to_csv(root / FBNET_FILE, index=False)
    return root


def test_nb201_device_matches_the_table(synthetic_nb201_dir, synthetic_frame) -> None:  # type: ignore[no-untyped-def]
    dev = TabularDevice("nb201", "pixel3", data_dir=synthetic_nb201_dir)
    row = synthetic_frame.iloc[4321]
    assert dev.metric == "latency_ms@pixel3"
    assert dev.latency(row["arch"]) == pytest.approx(row["latency_ms@pixel3"])
    assert dev.latency(create_space("nb201").from_string(row["arch"])) == dev.latency(row["arch"])
    archs, ms = dev.all()
    assert len(archs) == len(ms) == 15625 and archs[4321] == row["arch"]
    assert table_devices("nb201", data_dir=synthetic_nb201_dir) == ["raspi4", "pixel3", "eyeriss"]
    with pytest.raises(ConfigError, match=r"has no device 'pixel4'; did you mean 'pixel3'"):
        TabularDevice("nb201", "pixel4", data_dir=synthetic_nb201_dir)
    with pytest.raises(ConfigError, match=r"measured at input_size 32, .* input_size 16"):
        TabularDevice(create_space("nb201", input_size=16), "pixel3", data_dir=synthetic_nb201_dir)
    with pytest.raises(DataError, match=r"tried data_dir in the config"):
        TabularDevice("nb201", "pixel3", data_dir=synthetic_nb201_dir / "nowhere")


def test_fbnet_device_and_missing_architectures(fbnet_dir: Path) -> None:
    dev = TabularDevice("fbnet", "raspi4", data_dir=fbnet_dir)
    archs, ms = dev.all()
    assert len(archs) == 200 and dev.latency(archs[7]) == ms[7]
    with pytest.raises(MissingArchError, match=r"not in the fbnet latency table \(200 rows\)"):
        dev.latency(" ".join(["k3_e1"] * 22))
    with pytest.raises(DataError, match=r"fbnet_latency_ms.csv not found; tried data_dir"):
        TabularDevice("fbnet", "raspi4", data_dir=fbnet_dir / "nowhere")


def test_validate_on_synthetic_nb201_reports_with_and_without_degenerate_cells(
    synthetic_nb201_dir: Path,
) -> None:
    r = validate_on_table(
        "nb201",
        "raspi4",
        n_train=300,
        seed=1,
        kinds=("ridge", "flops"),
        data_dir=synthetic_nb201_dir,
    )
    assert (r["n_train"], r["n_test"], r["metric"]) == (300, 15325, "latency_ms@raspi4")
    assert 300 < r["n_degenerate_test"] < 341
    ridge = r["models"]["ridge"]
    assert ridge["all"]["n"] == 15325
    assert ridge["non_degenerate"]["n"] == 15325 - r["n_degenerate_test"]
    assert ridge["non_degenerate"]["spearman"] > 0.97
    assert r["models"]["flops"]["all"]["spearman"] < ridge["all"]["spearman"]
    again = validate_on_table(
        "nb201", "raspi4", n_train=300, seed=1, kinds=("ridge",), data_dir=synthetic_nb201_dir
    )
    assert again["models"]["ridge"]["all"] == ridge["all"]
    with pytest.raises(ConfigError, match=r"n_train must lie in 3\.\.15624"):
        validate_on_table("nb201", "raspi4", n_train=15625, data_dir=synthetic_nb201_dir)
    with pytest.raises(ConfigError, match=r"unknown latency predictor kind 'lut'"):
        validate_on_table("nb201", "raspi4", kinds=("lut",), data_dir=synthetic_nb201_dir)


def test_validate_on_fbnet_recovers_an_additive_table(fbnet_dir: Path) -> None:
    r = validate_on_table("fbnet", "pixel3", n_train=150, data_dir=fbnet_dir)
    assert r["n_test"] == 50 and r["n_degenerate_test"] == 0
    assert r["models"]["ridge"]["all"]["share_within_5pct"] == 1.0
    assert r["models"]["gbdt"]["all"]["spearman"] > 0.8


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
def test_real_fbnet_table_holds_the_published_rows() -> None:
    archs, latency = load_fbnet_table(SHARED.resolve())
    assert len(archs) == 5000 and len(latency) == 20
    assert archs[0].split()[:3] == ["k5_e6", "skip", "k3_e1_g2"]
    assert latency["eyeriss"][0] == pytest.approx(5.229984)
