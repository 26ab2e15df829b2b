"""Reference-interleaved timing: the network alternates with a fixed reference network, and the
median ratio is scaled by this machine's stored reference latency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hwnas.errors import ConfigError  # noqa: E402
from hwnas.hardware import reference  # noqa: E402
from hwnas.hardware.measured import measure_latency  # noqa: E402


@pytest.fixture()
def quick_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(reference, "REFERENCE_SECONDS", 0.3)
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_interleaved_timing_scales_the_ratio_by_the_stored_reference(
    quick_reference: Path, monkeypatch: pytest.MonkeyPatch
):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    first = measure_latency(net, (3, 16, 16), timing="interleaved", repeats=3, min_block_s=0.004)
    assert first.timing == "interleaved" and first.backend == "onnxruntime"
    assert first.reference_ms > 0 and first.raw_median_ms > 0
    assert first.q25_ms <= first.median_ms <= first.q75_ms
    assert first.n_samples == 6  # max(repeats, repeats * min_block_s / 2 ms) pairs
    stored = list(quick_reference.glob("reference-*-onnxruntime-b1-t1.json"))
    assert len(stored) == 1
    record = json.loads(stored[0].read_text())
    assert record["reference_ms"] == pytest.approx(first.reference_ms)
    assert record["fingerprint"]["backend"] == "onnxruntime"
    # a later measurement, in this process or another, uses the same stored constant
    # Fixed mini-block times (a loaded machine moves real ratios by several x): the reported ms
    # are the median network / reference ratio times the stored constant, and follow it.
    nets, refs = np.array([2e-3, 3e-3, 4e-3]), np.array([1e-3, 1e-3, 2e-3])
    monkeypatch.setattr(reference, "mini_blocks", lambda *a, **k: (nets, refs))
    third = measure_latency(net, (3, 16, 16), timing="interleaved", repeats=3, min_block_s=0.004)
    assert third.median_ms == pytest.approx(2.0 * first.reference_ms)  # median ratio 2
    assert third.raw_median_ms == pytest.approx(3.0)
    record["reference_ms"] = 2 * first.reference_ms
    stored[0].write_text(json.dumps(record))
    second = measure_latency(net, (3, 16, 16), timing="interleaved", repeats=3, min_block_s=0.004)
    assert second.reference_ms == pytest.approx(2 * first.reference_ms)
    assert second.median_ms == pytest.approx(2 * third.median_ms)  # ms follow the constant


def test_an_unreadable_stored_reference_is_measured_again(quick_reference: Path):
    net = torch.nn.Conv2d(3, 4, 1)
    path = reference.reference_path("fp", "onnxruntime", 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not json")
    value = reference.stored_reference_ms(path, lambda: 1.25, describe={})
    assert value == 1.25 and json.loads(path.read_text())["reference_ms"] == 1.25
    assert measure_latency(net, (3, 8, 8), timing="interleaved", repeats=3).median_ms > 0


def test_timing_options_are_checked():
    net = torch.nn.Conv2d(3, 4, 1)
    with pytest.raises(
        ConfigError, match=r"unknown timing 'interleave'; did you mean 'interleaved'"
    ):
        measure_latency(net, (3, 8, 8), timing="interleave")
    with pytest.raises(ConfigError, match=r"timing 'interleaved' uses the wall clock"):
        measure_latency(net, (3, 8, 8), timing="interleaved", clock="cpu")
