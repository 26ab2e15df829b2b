"""Calibration end to end, with timing shortened to three single runs per network."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from hwnas import create_space
from hwnas.cli import main
from hwnas.hardware.calibrate import stratified_sample

torch = pytest.importorskip("torch")


@pytest.fixture()
def quick_timing(monkeypatch):  # type: ignore[no-untyped-def]
    import hwnas.hardware.measured as measured
    import hwnas.hardware.roundrobin as roundrobin

    def three_runs(fn, *, warmup, repeats, min_block_s, clock="wall"):  # type: ignore[no-untyped-def]
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return np.array(times), 1, 1.0

    monkeypatch.setattr(measured, "block_samples", three_runs)
    monkeypatch.setattr(roundrobin, "DEFAULT_ROUNDS", 3)
    monkeypatch.setattr(roundrobin, "ROUND_MINI_BLOCK_S", 0.0005)
    torch.set_num_threads(1)


def test_stratified_sample_spreads_over_flops() -> None:
    space = create_space("nb201")
    archs = stratified_sample(space, 20, np.random.default_rng(0))
    flops = sorted(space.cheap_metrics(a)["flops_m"] for a in archs)
    assert len({space.to_string(a) for a in archs}) == 20
    every = [
        space.cheap_metrics(space.sample(np.random.default_rng(i)))["flops_m"] for i in range(400)
    ]
    assert flops[0] <= np.percentile(every, 10) and flops[-1] >= np.percentile(every, 90)


def test_calibrate_command_writes_a_usable_model(tmp_path, quick_timing, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cal"
    code = main(
        [
            "hw",
            "calibrate",
            "--space",
            "nb201",
            "--samples",
            "20",
            "--out",
            str(out),
            "--repeats",
            "3",
        ]
    )
    assert code == 0
    report = json.loads((out / "calibration.json").read_text())
    assert report["n_train"] + report["n_test"] == 20
    models = {"predictor", "lut", "flops"}
    assert set(report["held_out"]) == {
        *models,
        "second_measurement",
        *(f"{m}_vs_fresh" for m in models),
    }
    assert report["predictor"] == "kernels" and report["options"]["timing"] == "round-robin"
    for figures in report["held_out"].values():
        assert 0.0 <= figures["share_within_10pct"] <= 1.0 and figures["n"] == report["n_test"]
    assert (
        report["fingerprint"]["threads"] == 1 and report["fingerprint"]["backend"] == "onnxruntime"
    )
    assert 0.0 <= report["noise_floor"]["within_10pct"] <= 1.0
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "measurements.csv").read_text().splitlines()) == 21
    shown = capsys.readouterr().out
    assert "within ±10%" in shown and "noise floor" in shown

    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    assert main(["hw", "predict", "--model", str(out), "--arch", arch]) == 0
    predicted = float(capsys.readouterr().out.strip())
    assert predicted > 0


def test_measure_command_prints_one_number(quick_timing, capsys) -> None:  # type: ignore[no-untyped-def]
    arch = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    assert main(["hw", "measure", "--space", "nb201", "--arch", arch]) == 0
    captured = capsys.readouterr()
    assert float(captured.out.strip()) > 0
    # what was measured, on stderr: the metric, backend, batch, threads and unit
    assert captured.err.startswith("latency_ms@local: ")
    assert "ms per forward pass (ONNX Runtime, batch 1, 1 thread, wall clock" in captured.err
    assert main(["hw", "measure", "--space", "nb201", "--arch", arch, "--backend", "torch"]) == 0
    assert capsys.readouterr().err.startswith("latency_ms@local-torch: ")


def test_noise_command_prints_the_agreement_and_writes_it(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "noise.json"
    argv = ["hw", "noise", "--space", "nb201", "--samples", "4", "--backend", "torch"]
    argv += ["--repeats", "3", "--in-process", "--out", str(out)]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("noise floor of latency_ms@local-torch (PyTorch eager, batch 1")
    assert "over 4 nb201 networks, two passes in this process:" in shown
    assert "within ±5%" in shown and "within ±10%" in shown and "Spearman" in shown
    record = json.loads(out.read_text())
    assert record["n"] == 4 and record["target"] == "local-torch"
    assert record["separate_processes"] is False and len(record["second_ms"]) == 4
    assert main(["hw", "noise", "--space", "nb201", "--samples", "2"]) == 2
    assert "--samples must be at least 3" in capsys.readouterr().err


def test_bad_arguments_give_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["hw", "measure", "--space", "nb201", "--arch", "|x~0|"]) == 2
    assert main(["hw", "calibrate", "--space", "nb201", "--samples", "3", "--out", "x"]) == 2
    assert main(["hw", "predict", "--model", "/nonexistent", "--arch", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error:") for line in err)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--timing", "foo"], "unknown timing 'foo'; choose from blocks, interleaved, round-robin"),
        (["--backend", "x"], "unknown latency backend 'x'; choose from onnxruntime, torch"),
        (["--batch", "0"], "batch must be an integer >= 1, got 0"),
        (["--threads", "abc"], "--threads must be a whole number or 'all', got 'abc'"),
        (["--out", "/"], "--out / is a folder; give a file to write to"),
        (["--out", "/proc/none/noise.json"], "--out /proc/none/noise.json: cannot make its folder"),
    ],
)
def test_noise_command_refuses_bad_options_before_measuring(flags, words, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["hw", "noise", "--space", "nb201", "--samples", "3", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]
