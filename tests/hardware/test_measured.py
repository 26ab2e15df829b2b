"""Measured latency: the timing logic on a fake clock, both backends on a small NB201 network."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.hardware import measured, noise
from hwnas.hardware.backends import export_onnx, onnx_session
from hwnas.hardware.measured import (
    Measurement,
    block_samples,
    measure_arch,
    measure_latency,
    summarize,
)
from hwnas.hardware.noise import noise_floor
from hwnas.spaces import NB201Space

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

FAST = {"warmup": 1, "repeats": 3, "min_block_s": 0.001}
CELL = ["nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none", "nor_conv_3x3"]


@pytest.fixture(scope="module")
def small_net():  # type: ignore[no-untyped-def]
    from hwnas.spaces.nb201_torch import build_nb201_network

    return build_nb201_network(CELL, C=4, N=1).eval()


class FakeClock:
    """``perf_counter`` that advances only when the timed function runs."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s, self.calls = 0.0, step_s, 0

    def perf_counter(self) -> float:
        return self.now

    def run(self) -> None:
        self.calls += 1
        self.now += self.step_s


def test_blocks_grow_until_they_last_min_block_s(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(0.001)
    monkeypatch.setitem(measured.CLOCKS, "wall", clock.perf_counter)
    monkeypatch.setitem(measured.CLOCKS, "cpu", lambda: clock.perf_counter() / 2)
    samples, number, share = block_samples(clock.run, warmup=2, repeats=4, min_block_s=0.01)
    assert number >= 10  # a block of 1 ms runs must hold >= 10 of them
    assert samples.shape == (4,) and np.allclose(samples, 0.001)
    assert share == pytest.approx(0.5)  # half the wall time on the CPU: a busy machine
    # warm-up + calibration blocks + 4 timed blocks, nothing else
    assert clock.calls >= 2 + 4 * number
    cpu_samples, cpu_number, _ = block_samples(
        clock.run, warmup=0, repeats=3, min_block_s=0.01, clock="cpu"
    )
    assert cpu_number >= 20 and np.allclose(cpu_samples, 0.0005)


def test_summary_statistics() -> None:
    m = summarize(
        np.array([1.0, 2.0, 3.0, 4.0, 5.0]) / 1e3,
        runs_per_block=7,
        backend="torch",
        batch=2,
        threads=1,
    )
    assert (m.q25_ms, m.median_ms, m.q75_ms, m.iqr_ms) == (2.0, 3.0, 4.0, 2.0)
    assert m.cv == pytest.approx(np.std([1, 2, 3, 4, 5]) / 3.0)
    assert (m.n_samples, m.runs_per_block, m.batch) == (5, 7, 2)
    assert m.as_dict()["median_ms"] == 3.0 and m.min_ms == 1.0


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_measure_latency_on_a_small_nb201_network(small_net, backend: str) -> None:  # type: ignore[no-untyped-def]
    threads_before = torch.get_num_threads()
    m = measure_latency(small_net, (3, 32, 32), backend=backend, **FAST)
    assert torch.get_num_threads() == threads_before
    assert m.median_ms > 0 and m.q25_ms <= m.median_ms <= m.q75_ms
    assert m.iqr_ms >= 0 and m.cv >= 0 and m.n_samples == 3 and m.runs_per_block >= 1
    assert (m.backend, m.batch, m.threads) == (backend, 1, 1)
    assert 0 < m.cpu_share <= 1.05 and m.min_ms <= m.q25_ms
    cpu = measure_latency(small_net, (3, 32, 32), backend=backend, clock="cpu", **FAST)
    assert cpu.clock == "cpu" and cpu.median_ms > 0  # the work runs on the calling thread


def test_onnx_export_computes_what_torch_computes(small_net) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    session = onnx_session(export_onnx(small_net, (3, 32, 32), batch=2), threads=1)
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        want = small_net(x).numpy()
    assert got.shape == (2, 10)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_measure_arch_uses_the_space_input_shape() -> None:
    space = NB201Space(input_size=16)
    m = measure_arch(space, {"ops": ["none"] * 6}, batch=2, **FAST)
    assert m.median_ms > 0 and m.batch == 2


def test_bad_options_fail_with_one_line(small_net) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="did you mean 'onnxruntime'"):
        measure_latency(small_net, (3, 32, 32), backend="onnx")
    with pytest.raises(ConfigError, match="repeats must be an integer >= 3, got 1"):
        measure_latency(small_net, (3, 32, 32), repeats=1)
    with pytest.raises(ConfigError, match=r"min_block_s must be .* got 0"):
        measure_latency(small_net, (3, 32, 32), min_block_s=0)
    with pytest.raises(ConfigError, match="batch must be an integer >= 1, got 0"):
        measure_latency(small_net, (3, 32, 32), batch=0)
    with pytest.raises(ConfigError, match="unknown clock 'cpu_time'; did you mean 'cpu'"):
        measure_latency(small_net, (3, 32, 32), clock="cpu_time")
    if (os.cpu_count() or 1) >= 2:
        with pytest.raises(ConfigError, match="clock 'cpu' times the calling thread only"):
            measure_latency(small_net, (3, 32, 32), clock="cpu", threads=2)


def _fake(median: float) -> Measurement:
    return Measurement(
        median, 0.1, median - 0.05, median + 0.05, 0.02, 3, 1, "torch", 1, 1, median * 0.9
    )


def test_noise_floor_pairs_two_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    space = NB201Space()
    archs = [space.decode([i, 0, 0, 0, 0, 0]) for i in range(4)]
    calls: list[int] = []
    # Pass 2 of arch i returns base * factor[i]: 0 %, 4 %, 8 % and 20 % apart.
    factors = [1.0, 1.04, 1.08, 1.2]

    def fake_measure(space_, arch, **opts):  # type: ignore[no-untyped-def]
        i = int(space.encode(arch)[0])
        calls.append(i)
        second = calls.count(i) == 2
        return _fake(10.0 * (factors[i] if second else 1.0))

    monkeypatch.setattr(noise, "measure_arch", fake_measure)
    seen: list[tuple[int, int]] = []
    out = noise_floor(
        space, archs, separate_processes=False, progress=lambda d, t: seen.append((d, t))
    )
    assert calls == [0, 1, 2, 3, 3, 2, 1, 0]  # second pass in reverse order
    assert seen == [(d, 8) for d in range(1, 9)]
    assert out["n"] == 4
    assert out["within_5pct"] == 0.5 and out["within_10pct"] == 0.75
    assert out["within_5pct_min"] == 0.5 and out["within_10pct_min"] == 0.75
    assert out["first_ms"] == [10.0] * 4
    assert out["second_ms"] == pytest.approx([10.0, 10.4, 10.8, 12.0])
    assert out["median_abs_rel_diff"] == pytest.approx(
        np.median([0, 0.4 / 10.2, 0.8 / 10.4, 2 / 11])
    )
    assert out["separate_processes"] is False
    ranks = noise.agreement([1.0, 2.0, 3.0, 4.0], [1.1, 2.3, 2.9, 4.4])
    assert ranks["spearman"] == pytest.approx(1.0)  # the passes rank the networks alike
    with pytest.raises(ConfigError, match="at least one architecture"):
        noise_floor(space, [])


def test_noise_floor_measures_each_pass_in_a_fresh_process() -> None:
    import os

    space = NB201Space()
    archs = [space.decode([i, 3, 3, 2, 1, 0]) for i in range(3)]
    parent = os.getpid()
    seen: list[tuple[int, int]] = []
    out = noise_floor(
        space,
        archs,
        backend="torch",
        repeats=3,
        min_block_s=0.002,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert os.getpid() == parent and out["separate_processes"] is True
    assert seen == [(d, 6) for d in range(1, 7)]
    assert len(out["first_ms"]) == 3 and min(out["first_ms"] + out["second_ms"]) > 0
    assert 0.0 <= out["within_10pct"] <= 1.0 and -1.0 <= out["spearman"] <= 1.0


def test_several_passes_share_one_fresh_process() -> None:
    from hwnas.hardware.noise import passes_in_fresh_process, set_options

    space = NB201Space()
    archs = [space.decode([i, 3, 3, 2, 1, 0]) for i in range(3)]
    opts = set_options(backend="torch", batch=1, threads=1, warmup=1, repeats=3,
                       min_block_s=0.002, clock="wall", timing="blocks")  # fmt: skip
    seen: list[int] = []
    first, second = passes_in_fresh_process(space, [archs, archs[:2]], opts, progress=seen.append)
    assert (len(first), len(second)) == (3, 2) and seen == [1, 2, 3, 4, 5]
    assert min(m.median_ms for m in first + second) > 0


def test_a_busy_machine_is_reported_once(
    small_net, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(measured, "_busy_warned", False)
    monkeypatch.setattr(measured, "block_samples", lambda *a, **k: (np.full(3, 1e-3), 1, 0.45))
    with caplog.at_level("WARNING", logger="hwnas.hardware.measured"):
        m = measure_latency(small_net, (3, 32, 32), **FAST)
        measure_latency(small_net, (3, 32, 32), **FAST)
    assert m.cpu_share == 0.45 and m.median_ms == pytest.approx(1.0)
    busy = [r for r in caplog.records if "the machine is busy" in r.getMessage()]
    assert len(busy) == 1 and "45%" in busy[0].getMessage()
