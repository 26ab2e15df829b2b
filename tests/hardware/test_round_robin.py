"""Round-robin timing of a set of networks: round speed removed, one reference scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.errors import ConfigError
from hwnas.hardware.roundrobin import speed_corrected, summarize_rounds


def test_a_slow_round_moves_no_network() -> None:
    base = np.array([1.0, 2.0, 5.0, 0.5])
    speed = np.array([1.0, 1.3, 0.9, 2.0, 1.0])  # a stall in round 4, drift elsewhere
    times = np.outer(speed, base)
    corrected = speed_corrected(times)
    assert np.allclose(corrected / corrected[:, :1], base / base[0])
    assert np.allclose(np.ptp(corrected, axis=0), 0.0)


def test_rounds_are_put_on_the_reference_scale() -> None:
    rng = np.random.default_rng(0)
    base = np.array([1e-3, 3e-3, 2e-3])  # the last column is the reference network
    times = np.outer(1 + rng.uniform(0, 0.5, size=12), base) * (1 + rng.normal(0, 0.01, (12, 3)))
    out = summarize_rounds(times, ref_ms=4.0, backend="onnxruntime", batch=1, threads=1)
    assert len(out) == 2 and all(m.timing == "round-robin" for m in out)
    assert out[0].median_ms == pytest.approx(2.0, rel=0.03)  # half the reference's 4 ms
    assert out[1].median_ms == pytest.approx(6.0, rel=0.03)
    assert out[0].reference_ms == 4.0 and out[0].raw_median_ms > 1.0


def test_measure_set_times_every_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from hwnas.hardware import reference
    from hwnas.hardware.roundrobin import measure_set
    from hwnas.spaces import create_space

    monkeypatch.setattr(reference, "REFERENCE_SECONDS", 0.3)
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    space = create_space("nb201")
    archs = [
        space.from_string(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
            "nor_conv_3x3~1|nor_conv_3x3~2|"
        ),
        space.from_string(
            "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
        ),
    ]
    out = measure_set(space, archs, rounds=5, mini_block_s=0.002, warmup=1)
    assert [m.timing for m in out] == ["round-robin", "round-robin"]
    assert out[0].median_ms > 2 * out[1].median_ms  # five 3x3 convs per cell against none
    assert out[0].n_samples == 5
    assert list(tmp_path.glob("reference-*.json"))  # the machine's scale is stored


def test_round_robin_is_for_sets_only() -> None:
    pytest.importorskip("torch")
    import torch

    from hwnas.hardware.measured import measure_latency

    with pytest.raises(ConfigError, match="times a set of networks together"):
        measure_latency(torch.nn.Conv2d(3, 4, 1), (3, 8, 8), timing="round-robin")


def test_copies_of_a_network_pool_their_samples() -> None:
    # two networks and the reference, two copies each; the second copy of network 0 runs 20 %
    # slower (another memory layout): the pooled median sits between the copies
    base = np.array([1e-3, 1.2e-3, 2e-3, 2e-3, 4e-3, 4e-3])
    times = np.tile(base, (9, 1)) * (1 + np.linspace(0, 0.02, 9))[:, None]
    out = summarize_rounds(times, ref_ms=4.0, backend="torch", batch=1, threads=1, copies=2)
    assert len(out) == 2
    assert 1.0 <= out[0].median_ms <= 1.2 + 1e-9  # between the copies, on the 4 ms reference scale
    assert out[1].median_ms == pytest.approx(2.0, rel=0.02)
    assert out[0].n_samples == 18  # rounds x copies


def test_eager_timing_runs_what_deploys() -> None:
    """Eager networks are timed in eval mode with no autograd graph, whoever calls the runner
    (round-robin timing used to run them with BatchNorm in training mode and autograd on)."""
    torch = pytest.importorskip("torch")
    from hwnas.hardware.measured import _runner

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert net.training
    before = net[1].running_mean.clone()
    out = _runner(net, (3, 8, 8), backend="torch", batch=2, threads=1)()
    assert not net.training
    assert isinstance(out, torch.Tensor) and not out.requires_grad and out.grad_fn is None
    assert torch.equal(net[1].running_mean, before)  # training-mode BatchNorm would update it


def test_eager_networks_follow_the_reference_of_what_they_spend_time_on() -> None:
    """The machine got 20 % slower at arithmetic and no slower at dispatch: a network that is all
    dispatch overhead keeps its latency, a compute-bound one keeps its too, on the stored scale
    (compute reference 1.6 ms, overhead reference 0.4 ms); the compute reference alone would move
    the overhead-bound network by 17 %."""
    from hwnas.hardware.roundrobin import OverheadScale

    rng = np.random.default_rng(0)
    # columns: overhead-bound net (80 calls), compute-bound net (5 calls), references
    slow = np.array([0.4e-3, 3.6e-3, 1.92e-3, 0.4e-3])
    times = np.tile(slow, (15, 1)) * (1 + rng.normal(0, 0.002, (15, 4)))
    overhead = OverheadScale(ms=0.4, calls=80, columns=1)
    kw = {"backend": "torch", "batch": 1, "threads": 1, "ref_columns": 1}
    out = summarize_rounds(times, ref_ms=1.6, overhead=overhead, calls=[80, 5], **kw)
    assert out[0].median_ms == pytest.approx(0.4, rel=0.01)
    assert out[0].overhead_share == pytest.approx(1.0, abs=0.01)
    assert out[1].median_ms == pytest.approx(3.0, rel=0.01)
    assert out[1].overhead_share < 0.01
    compute_only = summarize_rounds(times[:, :3], ref_ms=1.6, **kw)
    assert compute_only[0].median_ms == pytest.approx(0.4 / 1.2, rel=0.01)
    with pytest.raises(ValueError, match="need 2 call counts"):
        summarize_rounds(times, ref_ms=1.6, overhead=overhead, calls=[80], **kw)


def test_eager_round_robin_stores_both_references(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from hwnas.hardware import reference
    from hwnas.hardware.roundrobin import measure_set
    from hwnas.spaces import create_space

    monkeypatch.setattr(reference, "REFERENCE_SECONDS", 0.3)
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    space = create_space("nb201", channels=16, cells=1)
    convs = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|" + (
        "nor_conv_3x3~2|"
    )
    skips = "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|none~2|"
    archs = [space.from_string(convs), space.from_string(skips)]
    out = measure_set(space, archs, backend="torch", rounds=4, mini_block_s=0.002, warmup=1)
    assert all(0 < m.overhead_share <= 1 for m in out)
    assert out[1].overhead_share > out[0].overhead_share  # skips: dispatch, little arithmetic
    assert len(list(tmp_path.glob("reference-overhead-*-torch-v2-b1-t1.json"))) == 1
    assert len(list(tmp_path.glob("reference-*.json"))) == 2
    onnx = measure_set(space, archs[:1], rounds=3, mini_block_s=0.002, warmup=1)
    assert np.isnan(onnx[0].overhead_share)  # ONNX Runtime: the compute reference alone


def test_torch_calls_count_the_operators_of_a_forward_pass() -> None:
    torch = pytest.importorskip("torch")
    from hwnas.hardware.reference import OVERHEAD_INPUT, overhead_module, torch_calls

    one = torch_calls(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU()), (3, 4, 4))
    two = torch_calls(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1)),
        (3, 4, 4),
    )
    assert 2 <= one < two
    assert torch_calls(overhead_module(), OVERHEAD_INPUT) >= 60  # 20 x (conv, BN, ReLU)


def test_an_unknown_reference_kind_is_refused() -> None:
    from hwnas.hardware.reference import reference_path, reference_runner

    with pytest.raises(ValueError, match="no reference network of kind 'memory'; one of compute"):
        reference_path("abc", "torch", 1, 1, kind="memory")
    with pytest.raises(ValueError, match="no reference network of kind 'memory'"):
        reference_runner(backend="torch", batch=1, threads=1, kind="memory")
