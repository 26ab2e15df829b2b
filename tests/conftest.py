"""Shared fixtures: synthetic NB201-shaped data (no dependency on ../shared/data) and a private
cache folder for the whole session."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.spaces import NB201Space

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEVICES = ("raspi4", "pixel3", "eyeriss")
OP_COST = {
    "none": 0.0,
    "skip_connect": 0.1,
    "nor_conv_1x1": 1.0,
    "nor_conv_3x3": 3.0,
    "avg_pool_3x3": 0.5,
}
OP_GAIN = {
    "none": -2.0,
    "skip_connect": 0.5,
    "nor_conv_1x1": 1.5,
    "nor_conv_3x3": 2.5,
    "avg_pool_3x3": 0.2,
}


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("HWNAS_CACHE_DIR", str(tmp_path_factory.mktemp("hwnas-cache")))
    yield
    mp.undo()


def _noise(s: str) -> float:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def synthetic_rows() -> pd.DataFrame:
    """All 15,625 NB201 cells with made-up but structured accuracy and latency."""
    space = NB201Space()
    rows = []
    for i, arch in enumerate(space.enumerate()):
        s = space.to_string(arch)
        ops = arch["ops"]
        acc = 80.0 + sum(OP_GAIN[o] for o in ops) + 2.0 * _noise(s)
        cost = sum(OP_COST[o] * (1 + 0.1 * k) for k, o in enumerate(ops))
        row = {"index": i, "arch": s, "accuracy": acc}
        for j, dev in enumerate(DEVICES):
            row[f"latency_ms@{dev}"] = 1.0 + cost * (1 + j) + 0.3 * _noise(s + dev)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def synthetic_frame() -> pd.DataFrame:
    return synthetic_rows()


@pytest.fixture(scope="session")
def synthetic_table(
    tmp_path_factory: pytest.TempPathFactory, synthetic_frame: pd.DataFrame
) -> Path:
    """A `table` evaluator CSV: arch, accuracy, latency_ms@raspi4/pixel3/eyeriss."""
    path = tmp_path_factory.mktemp("table") / "nb201_synthetic.csv"
    synthetic_frame.drop(columns=["index"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def synthetic_nb201_dir(
    tmp_path_factory: pytest.TempPathFactory, synthetic_frame: pd.DataFrame
) -> Path:
    """A data folder laid out like ../shared/data, holding synthetic NB201 tables."""
    root = tmp_path_factory.mktemp("nb201-data")
    df = synthetic_frame
    (root / "nb201_nats_test_acc").mkdir()
    pd.DataFrame(
        {
            "CIFAR10TestAccuracy200Epochs": df["accuracy"],
            "CIFAR100TestAccuracy200Epochs": df["accuracy"] - 20,
            "ImageNetTestAccuracy200Epochs": df["accuracy"] - 40,
            "ArchitectureString": df["arch"],
            "UniqueString": df["arch"],
        }
    ).to_csv(root / "nb201_nats_test_acc" / "nats_bench.csv", index=False)
    (root / "nb201_cifar10valid_landscapes").mkdir()
    pd.DataFrame(
        {
            "index": df["index"],
            "arch_str": df["arch"],
            "valid-accuracy": df["accuracy"] - 1,
        }
    ).to_csv(root / "nb201_cifar10valid_landscapes" / "cifar10_avg.csv", index=False)
    (root / "nb201_fbnet_latency_help").mkdir()
    lat = pd.DataFrame({"index": df["index"], "arch_str": df["arch"]})
    for dev in DEVICES:
        lat[dev] = df[f"latency_ms@{dev}"]
    lat.to_csv(root / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv", index=False)
    return root


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture()
def one_torch_thread():
    """Run a test with one torch thread (restored after): toy networks train fastest on one, and
    two per test stall when pytest-xdist runs a test per core. Use it module-wide with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
