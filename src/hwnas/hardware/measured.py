"""Measured latency on the local CPU: PyTorch eager or ONNX Runtime, blocked timing, noise.

Each sample is the mean time of a *block* of consecutive runs lasting at least ``min_block_s``
(the idea of ``torch.utils.benchmark``'s ``blocked_autorange``), so that timer resolution and
per-call jitter average out inside a block; the spread between blocks is the noise reported with
the median (IQR and coefficient of variation). Threads are pinned for the measurement and the
previous setting restored; the garbage collector is paused while a block runs.

Two clocks: ``wall`` (``time.perf_counter``, the latency a user sees; the default) and ``cpu``
(``time.thread_time``, the CPU time of the calling thread). With one thread both backends compute
on the calling thread, so on a quiet machine the two agree; on a shared machine the CPU clock
leaves out the time the process waits while others run (on a busy shared 2-core VM, two passes
over 30 NB201 networks agreed far better with it than with the wall clock).

Example:
    >>> from hwnas.spaces import NB201Space
    >>> space = NB201Space()
    >>> m = measure_arch(space, space.from_string(
    ...     "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"),
    ...     repeats=3, min_block_s=0.002)
    >>> m.q25_ms <= m.median_ms <= m.q75_ms
    True
"""

from __future__ import annotations

import gc
import io
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.errors import ConfigError, MissingExtraError, require_torch
from hwnas.hardware.fingerprint import check_backend, check_threads
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each finished measurement."""

DEFAULT_WARMUP = 5
DEFAULT_REPEATS = 15
DEFAULT_MIN_BLOCK_S = 0.02
ONNX_OPSET = 17
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
BUSY_CPU_SHARE = 0.8  # below this, a one-thread wall-clock measurement waited for other processes
_busy_warned = False
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measurement:
    """Latency of one network: statistics over per-run means of timed blocks, in milliseconds.

    ``cv`` is the coefficient of variation (std / mean) of the block samples: the noise of this
    measurement. ``min_ms`` is the fastest block, the estimate least touched by interference.
    ``runs_per_block`` is how many forward passes each sample averages. ``cpu_share`` is the
    measuring thread's CPU time over wall time: near 1 with one thread on a quiet machine, lower
    when the machine was busy (the wall-clock numbers are then unreliable).
    """

    median_ms: float
    iqr_ms: float
    q25_ms: float
    q75_ms: float
    cv: float
    n_samples: int
    runs_per_block: int
    backend: str
    batch: int
    threads: int
    min_ms: float = math.nan
    clock: str = "wall"
    cpu_share: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_measure_options(
    *,
    batch: int,
    warmup: int,
    repeats: int,
    min_block_s: float,
    clock: str = "wall",
    threads: int = 1,
) -> None:
    """Raise :class:`ConfigError` naming the first invalid timing option."""
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r}; {closest(str(clock), list(CLOCKS))}")
    if clock == "cpu" and threads != 1:
        raise ConfigError(
            f"clock 'cpu' times the calling thread only, so it needs threads=1 (got {threads}); "
            "use clock 'wall' for several threads"
        )
    for name, value, low in (("batch", batch, 1), ("warmup", warmup, 0), ("repeats", repeats, 3)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(min_block_s, (int, float)) or not 0.0 < float(min_block_s) <= 10.0:
        raise ConfigError(
            f"min_block_s must be a number of seconds in (0, 10], got {min_block_s!r}"
        )


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Set PyTorch's intra-op threads for the block, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def export_onnx(module: Any, input_shape: Sequence[int], *, batch: int = 1) -> bytes:
    """Export ``module`` (in eval mode) to an in-memory ONNX model for a fixed input shape.

    Uses the TorchScript-based exporter (``dynamo=False``): the new one needs ``onnxscript``.
    An NB201/FBNet network takes 1-2 s on one thread; unpinned threads on a busy machine, 8 s.

    Example:
        >>> import torch
        >>> len(export_onnx(torch.nn.Conv2d(3, 8, 3), (3, 8, 8))) > 0
        True
    """
    require_torch("exporting networks to ONNX")
    import torch

    module.eval()
    x = torch.zeros(batch, *input_shape)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter announces its own deprecation on every call.
        warnings.simplefilter("ignore")
        torch.onnx.export(  # the legacy exporter accepts a file object
            module,
            (x,),
            buf,  # type: ignore[arg-type]
            opset_version=ONNX_OPSET,
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            do_constant_folding=True,
        )
    return buf.getvalue()


def onnx_session(model: bytes, *, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session for ``model`` with pinned threads and all graph optimisations."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "torch", "the onnxruntime backend") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def block_samples(
    fn: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    min_block_s: float,
    clock: str = "wall",
) -> tuple[np.ndarray, int, float]:
    """Time ``repeats`` blocks of ``fn`` calls.

    The block length is found by doubling the number of runs until a block lasts ``min_block_s``
    on ``clock`` (these calibration blocks double as extra warm-up).

    Returns:
        Per-run seconds of each block on ``clock``, the runs per block, and the calling thread's
        CPU share: its CPU time over the wall time of all blocks (about 1 for a single-threaded
        run on an idle machine; lower when it waited for other processes).
    """
    wall, cpu = CLOCKS["wall"], CLOCKS["cpu"]

    def timed(number: int) -> tuple[float, float]:
        w0, c0 = wall(), cpu()
        for _ in range(number):
            fn()
        return wall() - w0, cpu() - c0

    pick = 0 if clock == "wall" else 1
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number = 1
        while True:
            elapsed = timed(number)[pick]
            if elapsed >= min_block_s or number >= 1 << 20:
                break
            # Aim a little past the target so that one more block usually suffices.
            guess = math.ceil(number * 1.2 * min_block_s / max(elapsed, 1e-9))
            number = min(max(2 * number, guess), 1 << 20)
        times = np.array([timed(number) for _ in range(repeats)])
    finally:
        if gc_was_enabled:
            gc.enable()
    share = float(times[:, 1].sum() / times[:, 0].sum()) if times[:, 0].sum() > 0 else math.nan
    return times[:, pick] / number, number, share


def summarize(
    samples_s: np.ndarray,
    *,
    runs_per_block: int,
    backend: str,
    batch: int,
    threads: int,
    clock: str = "wall",
    cpu_share: float = math.nan,
) -> Measurement:
    """Median, quartiles and CV of per-run block samples (seconds) as a :class:`Measurement`."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    q25, median, q75 = (float(v) for v in np.percentile(ms, [25, 50, 75]))
    mean = float(ms.mean())
    return Measurement(
        median_ms=median,
        iqr_ms=q75 - q25,
        q25_ms=q25,
        q75_ms=q75,
        cv=float(ms.std() / mean) if mean > 0 else 0.0,
        n_samples=len(ms),
        runs_per_block=runs_per_block,
        backend=backend,
        batch=batch,
        threads=threads,
        min_ms=float(ms.min()),
        clock=clock,
        cpu_share=cpu_share,
    )


def measure_latency(
    module: Any,
    input_shape: Sequence[int],
    *,
    backend: str = "torch",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
) -> Measurement:
    """Inference latency of a ``torch.nn.Module`` on this CPU.

    Args:
        module: the network; it is switched to eval mode.
        input_shape: one sample's shape without the batch dimension, e.g. ``(3, 32, 32)``.
        backend: ``"torch"`` (eager, ``torch.inference_mode``) or ``"onnxruntime"`` (exported
            in memory, opset 17, all graph optimisations).
        batch: batch size of the timed forward pass.
        threads: intra-op threads (pinned for the measurement, then restored).
        warmup: untimed runs before the calibration of the block length.
        repeats: number of timed blocks (samples), at least 3.
        min_block_s: the shortest block; each sample averages as many runs as fill it.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (CPU time of the calling thread; needs
            ``threads=1``; immune to time spent waiting for other processes).

    Returns:
        A :class:`Measurement` in milliseconds per forward pass of the whole batch.

    Raises:
        ConfigError: an invalid option.
        MissingExtraError: torch (or onnxruntime for that backend) is not installed.

    Example:
        >>> import torch
        >>> m = measure_latency(torch.nn.Conv2d(3, 8, 3), (3, 16, 16), repeats=3,
        ...                     min_block_s=0.001)
        >>> m.median_ms > 0
        True
    """
    check_backend(backend)
    check_threads(threads)
    check_measure_options(
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
        threads=threads,
    )
    require_torch("measuring latency")
    import torch

    module.eval()
    with pinned_threads(threads):
        run: Callable[[], object]
        if backend == "torch":
            gen = torch.Generator().manual_seed(0)  # leave the global RNG alone
            x = torch.randn(batch, *input_shape, generator=gen)
            run = partial(module, x)
        else:
            session = onnx_session(export_onnx(module, input_shape, batch=batch), threads=threads)
            x_np = np.random.default_rng(0).standard_normal((batch, *input_shape), dtype=np.float32)
            # An op whose output ignores the input values (zeros_like) exports without an input.
            run = partial(session.run, None, {i.name: x_np for i in session.get_inputs()})
        with torch.inference_mode():
            samples, number, share = block_samples(
                run, warmup=warmup, repeats=repeats, min_block_s=min_block_s, clock=clock
            )
    _warn_if_busy(share, clock=clock, threads=threads)
    return summarize(
        samples,
        runs_per_block=number,
        backend=backend,
        batch=batch,
        threads=threads,
        clock=clock,
        cpu_share=share,
    )


def _warn_if_busy(share: float, *, clock: str, threads: int) -> None:
    global _busy_warned
    if clock == "wall" and threads == 1 and share < BUSY_CPU_SHARE and not _busy_warned:
        _busy_warned = True  # once per process: every later measurement would say the same
        log.warning(
            "the machine is busy: the measuring thread ran only %.0f%% of the wall time, so "
            "wall-clock latencies are noisy; measure on a quiet machine or with clock='cpu'",
            100 * share,
        )


def measure_arch(
    space: SearchSpace,
    arch: Arch,
    *,
    backend: str = "torch",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
) -> Measurement:
    """Build ``space.build_network(arch)`` and measure it on ``space.input_shape`` inputs.

    Options as in :func:`measure_latency`.
    """
    require_torch("measuring latency")
    import torch

    with torch.random.fork_rng(devices=[]):  # weight init must not move the global RNG
        net = space.build_network(arch)
    return measure_latency(
        net,
        space.input_shape,
        backend=backend,
        batch=batch,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
    )


def relative_differences(first: Sequence[float], second: Sequence[float]) -> np.ndarray:
    """``|a - b| / ((a + b) / 2)`` per pair: the symmetric relative difference."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    return np.abs(a - b) / ((a + b) / 2.0)


def noise_floor(
    space: SearchSpace,
    archs: Sequence[Arch],
    *,
    backend: str = "torch",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """How well two measurements of the same networks agree: the best any predictor can do.

    Two passes over ``archs``, the second in reverse order, so the two measurements of a network
    lie far apart in time and slow drifts of the machine show up as disagreement. Each pass
    builds the network afresh.

    Args:
        space: the search space the archs belong to.
        archs: at least one architecture.
        progress: called as ``progress(done, total)`` after each of the ``2 * len(archs)``
            measurements.
        backend, batch, threads, warmup, repeats, min_block_s, clock: as in
            :func:`measure_latency`.

    Returns:
        ``n``, ``within_5pct`` and ``within_10pct`` (share of networks whose two medians differ
        by at most 5 % / 10 % of their mean), ``median_abs_rel_diff``, ``max_abs_rel_diff``;
        the same four with suffix ``_min`` for the fastest-block estimate; ``median_cv``
        (median within-measurement CV), ``median_cpu_share`` (see :class:`Measurement`; well
        below 1 means a busy machine), ``seconds_per_measurement``, and the two passes' medians
        ``first_ms`` and ``second_ms`` in the order of ``archs``.
    """
    if not archs:
        raise ConfigError("noise_floor needs at least one architecture")
    opts: dict[str, Any] = {
        "backend": backend,
        "batch": batch,
        "threads": threads,
        "warmup": warmup,
        "repeats": repeats,
        "min_block_s": min_block_s,
        "clock": clock,
    }
    n = len(archs)
    passes: list[list[Measurement]] = [[], []]
    start = time.perf_counter()
    for p, order in enumerate((range(n), reversed(range(n)))):
        for i in order:
            passes[p].append(measure_arch(space, archs[i], **opts))
            if progress is not None:
                progress(p * n + len(passes[p]), 2 * n)
    elapsed = time.perf_counter() - start
    first, second = passes[0], passes[1][::-1]  # both in the order of archs
    out: dict[str, Any] = {"n": n}
    for suffix, stat in (("", "median_ms"), ("_min", "min_ms")):
        rel = relative_differences(
            [getattr(m, stat) for m in first], [getattr(m, stat) for m in second]
        )
        out[f"within_5pct{suffix}"] = float(np.mean(rel <= 0.05))
        out[f"within_10pct{suffix}"] = float(np.mean(rel <= 0.10))
        out[f"median_abs_rel_diff{suffix}"] = float(np.median(rel))
        out[f"max_abs_rel_diff{suffix}"] = float(np.max(rel))
    both = first + second
    out["median_cv"] = float(np.median([m.cv for m in both]))
    out["median_cpu_share"] = float(np.median([m.cpu_share for m in both]))
    out["seconds_per_measurement"] = elapsed / (2 * n)
    out["first_ms"] = [m.median_ms for m in first]
    out["second_ms"] = [m.median_ms for m in second]
    return out
