"""Calibrating a new device in one call: sample, measure, fit a LUT and a predictor, validate.

:func:`calibrate` samples architectures stratified over FLOPs, measures each on this machine,
measures the held-out ones a second time in a fresh process (the noise floor: how often two
measurements of the same network agree), builds the per-operator lookup table, fits the learned
predictor and the FLOPs-only baseline on the training share, and reports all three on the
held-out share side by side. :func:`write_calibration` saves everything a later study needs
(``predicted: {model: DIR}``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.hardware.accuracy import evaluate_predictions
from hwnas.hardware.fingerprint import device_fingerprint, local_target
from hwnas.hardware.lut import LatencyLUT, build_lut
from hwnas.hardware.lut_ops import has_decomposer
from hwnas.hardware.measured import (
    DEFAULT_MIN_BLOCK_S,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    SET_TIMINGS,
    Measurement,
)
from hwnas.hardware.noise import agreement, measure_pass, set_options
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.spaces.base import Arch, SearchSpace

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)`` with phase ``measure``, ``lut``, ``noise``."""


@dataclass
class Calibration:
    """What a calibration measured and how well each model predicts held-out networks."""

    space: SearchSpace
    device: str
    fingerprint: dict[str, Any]
    options: dict[str, Any]
    train: list[Arch]
    test: list[Arch]
    train_ms: np.ndarray
    test_ms: np.ndarray
    second_ms: np.ndarray  # the held-out networks measured again, in a fresh process
    predictor: LatencyPredictor
    lut: LatencyLUT | None  # None for a space without a LUT decomposer
    flops: LatencyPredictor
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    iqr_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # train + test, first pass
    second_iqr_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "device": self.device,
            "fingerprint": self.fingerprint,
            "options": self.options,
            "predictor": self.predictor.kind,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "seconds": round(self.seconds, 1),
            "noise_floor": self.noise,
            "held_out": self.figures,
        }


def stratified_sample(
    space: SearchSpace, n: int, rng: np.random.Generator, *, pool_factor: int = 20
) -> list[Arch]:
    """``n`` distinct architectures spread evenly over FLOPs: one per FLOPs-quantile bin of a
    random pool ``pool_factor`` times larger."""
    if n < 1:
        raise ConfigError(f"need at least one sample, got {n}")
    pool: dict[str, Arch] = {}
    size = space.size
    target = min(n * pool_factor, size) if size is not None else n * pool_factor
    tries = 0
    while len(pool) < target and tries < target * 20:
        arch = space.sample(rng)
        pool.setdefault(space.to_string(arch), arch)
        tries += 1
    if len(pool) < n:
        raise ConfigError(f"space {space.name!r} yielded only {len(pool)} distinct architectures")
    archs = list(pool.values())
    flops = np.array([space.cheap_metrics(a).get("flops_m", 0.0) for a in archs])
    order = np.argsort(flops, kind="stable")
    bins = np.array_split(order, n)
    return [archs[int(rng.choice(b))] for b in bins]


def calibrate(
    space: SearchSpace,
    *,
    samples: int = 300,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    test_fraction: float = 0.3,
    seed: int = 0,
    device: str | None = None,
    clock: str = "wall",
    timing: str = "round-robin",
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    predictor_kind: str | None = None,
    progress: Progress | None = None,
) -> Calibration:
    """Measure ``samples`` networks of ``space`` on this machine and fit latency models.

    Args:
        space: a space with a PyTorch builder and a LUT decomposer (nb201, fbnet).
        samples: networks to measure (split into training and held-out shares).
        backend, batch, threads, clock, timing, warmup, repeats, min_block_s: measurement
            options, as in :func:`hwnas.hardware.measured.measure_latency`.
        test_fraction: share of the samples held out for validation.
        seed: seeds the sampling and the split.
        device: name of the device (the metric becomes ``latency_ms@<device>``; default
            :func:`~hwnas.hardware.fingerprint.local_target` of backend, batch and threads).
        predictor_kind: the learned predictor (default ``kernels`` with the onnxruntime
            backend, ``gbdt`` with torch; see :class:`LatencyPredictor`).
        progress: called as ``progress(phase, done, total)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n_test = max(2, round(samples * test_fraction))
    if samples - n_test < 5:
        raise ConfigError(f"--samples {samples} is too few: need at least {n_test + 5}")
    opts = set_options(
        backend=backend,
        batch=batch,
        threads=threads,
        clock=clock,
        timing=timing,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
    )
    if predictor_kind is None:
        predictor_kind = "kernels" if backend == "onnxruntime" else "gbdt"
    if predictor_kind == "kernels" and backend != "onnxruntime":
        raise ConfigError(
            "predictor kind 'kernels' models ONNX Runtime's kernels; use it with --backend "
            "onnxruntime, or pick gbdt or ridge for the torch backend"
        )
    if device is None:
        device = local_target(backend, batch, threads)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    archs = stratified_sample(space, samples, rng)
    order = rng.permutation(len(archs))
    test = [archs[i] for i in order[:n_test]]
    train = [archs[i] for i in order[n_test:]]

    def measure_all(items: Sequence[Arch], phase: str, *, fresh: bool) -> list[Measurement]:
        def tick(done: int) -> None:
            if progress is not None:
                progress(phase, done, len(items))

        return measure_pass(space, items, opts, separate_process=fresh, progress=tick)

    first = measure_all(train + test, "measure", fresh=False)
    measured = np.array([m.median_ms for m in first])
    train_ms, test_ms = measured[: len(train)], measured[len(train) :]
    spread = np.array([m.iqr_ms for m in first])
    # The second pass runs in a fresh process, in reverse order, far in time from the first:
    # as a later study would measure these networks (the noise floor a predictor can reach).
    second = measure_all(test[::-1], "noise", fresh=True)[::-1]
    second_ms = np.array([m.median_ms for m in second])

    # The table times one operator at a time: a set timing has nothing to round-robin there.
    lut_opts = {**opts, "timing": "interleaved"} if timing in SET_TIMINGS else opts
    lut = None
    if has_decomposer(space):
        lut = build_lut(
            space,
            archs=archs,
            progress=(lambda d, t: progress("lut", d, t)) if progress else None,
            **lut_opts,
        )
        lut.fit_glue(train, train_ms.tolist(), scale=True)
    predictor = LatencyPredictor(predictor_kind, seed=seed, device=device, batch=batch).fit(
        space, train, train_ms
    )
    predicted = predictor.predict(test)
    flops = LatencyPredictor("flops", device=device).fit(space, train, train_ms)

    models = {"predictor": predicted, "flops": flops.predict(test)}
    if lut is not None:
        models["lut"] = lut.predict_many(test)
    figures = {name: evaluate_predictions(test_ms, ms) for name, ms in models.items()}
    figures["second_measurement"] = evaluate_predictions(test_ms, second_ms)
    # Against the fresh measurement, as a later study would see these networks; its reference
    # is the floor (first against fresh measurement).
    figures.update(
        {f"{name}_vs_fresh": evaluate_predictions(second_ms, ms) for name, ms in models.items()}
    )
    noise = {"n": len(test), **agreement(test_ms.tolist(), second_ms.tolist())}
    return Calibration(
        space=space,
        device=device,
        fingerprint=device_fingerprint(backend=backend, threads=threads).as_dict(),
        options=opts,
        train=train,
        test=test,
        train_ms=train_ms,
        test_ms=test_ms,
        second_ms=second_ms,
        iqr_ms=spread,
        second_iqr_ms=np.array([m.iqr_ms for m in second]),
        predictor=predictor,
        lut=lut,
        flops=flops,
        figures=figures,
        noise=noise,
        seconds=time.perf_counter() - start,
    )


def write_calibration(cal: Calibration, out: Path) -> dict[str, Path]:
    """Write ``calibration.json``, ``measurements.csv``, ``lut.json``, the predictor files
    (so ``predicted: {model: OUT}`` works) and ``calibration.png``."""
    out.mkdir(parents=True, exist_ok=True)
    cal.predictor.save(out)
    files = {
        "calibration.json": out / "calibration.json",
        "lut.json": out / "lut.json",
        "measurements.csv": out / "measurements.csv",
        "calibration.png": out / "calibration.png",
    }
    if cal.lut is not None:
        cal.lut.to_json(files["lut.json"])
    else:
        del files["lut.json"]
    files["calibration.json"].write_text(json.dumps(cal.summary(), indent=2) + "\n")
    n_train = len(cal.train)
    iqr = cal.iqr_ms if len(cal.iqr_ms) else np.full(n_train + len(cal.test), np.nan)
    second_iqr = cal.second_iqr_ms if len(cal.second_iqr_ms) else np.full(len(cal.test), np.nan)
    lines = ["arch,split,latency_ms,iqr_ms,second_ms,second_iqr_ms"]
    lines += [
        f'"{cal.space.to_string(a)}",train,{v:.6g},{q:.6g},,'
        for a, v, q in zip(cal.train, cal.train_ms, iqr[:n_train])
    ]
    lines += [
        f'"{cal.space.to_string(a)}",test,{v:.6g},{q:.6g},{w:.6g},{r:.6g}'
        for a, v, q, w, r in zip(cal.test, cal.test_ms, iqr[n_train:], cal.second_ms, second_iqr)
    ]
    files["measurements.csv"].write_text("\n".join(lines) + "\n")
    _plot(cal, files["calibration.png"])
    return files


def _plot(cal: Calibration, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    t = cal.test_ms
    series = [
        ("predictor", cal.predictor.predict(cal.test), "o", "predictor"),
        ("FLOPs baseline", cal.flops.predict(cal.test), "^", "flops"),
        ("second measurement", cal.second_ms, "x", "second_measurement"),
    ]
    if cal.lut is not None:
        series.insert(1, ("LUT", cal.lut.predict_many(cal.test), "s", "lut"))
    for label, pred, marker, key in series:
        share = cal.figures[key]["share_within_10pct"]
        ax.scatter(
            t, pred, s=14, marker=marker, alpha=0.7, label=f"{label} ({share:.0%} within ±10%)"
        )
    lo, hi = float(min(t.min(), 0)), float(t.max() * 1.1)
    xs = np.array([lo, hi])
    ax.plot(xs, xs, color="black", lw=1)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.15, label="±10%")
    ax.set_xlabel(f"measured latency (ms), {cal.device}")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{cal.space.name}: held-out networks (n={len(t)})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
