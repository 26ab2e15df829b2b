"""Reference-interleaved timing: latency in units of a fixed reference network, against a machine
whose speed drifts.

On shared virtual machines the speed a process gets drifts by several percent over seconds and
differs between processes (``benchmarks/results/latency_floors.md``): two measurements of the same
network, minutes apart, disagree although each is precise. Timing a network in short mini-blocks
that alternate with mini-blocks of a fixed *reference network* lets both see the same machine
speed; the median of the per-pair ratios cancels the drift. The ratio is turned back into
milliseconds with this machine's reference latency, measured once per fingerprint, backend, batch
and threads and stored in the cache folder (``reference-*.json``), so every later measurement, in
any process, uses the same constant.

What the figure means: the latency the network has when the reference runs at its stored speed.
It is as repeatable as the ratio (the pilot in ``benchmarks/results/reference_timing_pilot.md``:
within ±10 % for all networks across processes, against 83 % for plain timing); its absolute level
carries the error of the one stored reference measurement (delete the file to take it again).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hwnas.hardware.measured import Measurement

log = logging.getLogger(__name__)

REFERENCE_SECONDS = 6.0  # how long the stored reference latency is timed
MINI_BLOCK_S = 0.002  # one mini-block of the network or of the reference


def reference_module() -> Any:
    """The fixed reference network: a small residual CNN on 3x32x32 inputs (about as heavy as a
    mid-size NB201 cell), with weights from a fixed seed so that every machine times the same
    computation."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.body(x))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            Block(32),
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False),
            Block(64),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
    return net.eval()


REFERENCE_INPUT = (3, 32, 32)
OVERHEAD_INPUT = (8, 4, 4)


def overhead_module() -> Any:
    """The overhead-bound reference network: 20 x (1x1 conv, BatchNorm, ReLU) on 8 x 4 x 4
    inputs, whose eager time is almost all per-call dispatch (used beside :func:`reference_module`
    by round-robin timing of PyTorch eager, :mod:`hwnas.hardware.roundrobin`)."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4321)
        layers: list[nn.Module] = []
        for _ in range(20):
            layers += [nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()]
        return nn.Sequential(*layers).eval()


def torch_calls(module: Any, input_shape: Sequence[int]) -> int:
    """Torch function calls (operators, tensor methods) in one eager forward pass of ``module``
    at batch 1: what eager dispatch overhead scales with."""
    import torch
    from torch.overrides import TorchFunctionMode

    count = 0

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            nonlocal count
            count += 1
            return func(*args, **(kwargs or {}))

    module.eval()
    x = torch.zeros(1, *input_shape)
    with torch.inference_mode(), Count():
        module(x)
    return count


def mini_blocks(
    net: Callable[[], object], ref: Callable[[], object], *, pairs: int, warmup: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-run seconds of ``pairs`` alternating mini-blocks of ``net`` and ``ref``.

    Each mini-block repeats its function as often as fills :data:`MINI_BLOCK_S` (found during
    warm-up), so the two of a pair are timed a few milliseconds apart.
    """
    for _ in range(warmup):
        net()
        ref()
    n_net, n_ref = _runs_per_block(net), _runs_per_block(ref)
    nets = np.empty(pairs)
    refs = np.empty(pairs)
    clock = time.perf_counter
    for i in range(pairs):
        t = clock()
        for _ in range(n_net):
            net()
        nets[i] = (clock() - t) / n_net
        t = clock()
        for _ in range(n_ref):
            ref()
        refs[i] = (clock() - t) / n_ref
    return nets, refs


def _runs_per_block(fn: Callable[[], object]) -> int:
    t = time.perf_counter()
    fn()
    fn()
    one = max((time.perf_counter() - t) / 2, 1e-7)
    return max(1, int(MINI_BLOCK_S / one))


def reference_path(
    fingerprint_key: str, backend: str, batch: int, threads: int, *, kind: str = "compute"
) -> Path:
    """Where this machine's reference latency for these settings is stored (``kind``:
    ``"compute"``, :func:`reference_module`, or ``"overhead"``, :func:`overhead_module`)."""
    from hwnas.evaluation.data import cache_dir

    # "torch-v2": eager timed in eval mode under inference mode everywhere; before, round-robin
    # timing ran it with autograd on, so a stored eager reference may carry that overhead.
    _reference_kind(kind)  # refuses an unknown kind
    tag = "torch-v2" if backend == "torch" else backend
    prefix = "reference" if kind == "compute" else f"reference-{kind}"
    name = f"{prefix}-{fingerprint_key}-{tag}-b{batch}-t{threads}.json"
    return cache_dir() / name


def stored_reference_ms(
    path: Path, measure: Callable[[], float], *, describe: dict[str, Any]
) -> float:
    """The reference latency stored at ``path``, measured (and stored) when there is none or it
    cannot be read."""
    try:
        data = json.loads(path.read_text())
        value = float(data["reference_ms"])
        if value > 0 and np.isfinite(value):
            return value
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = float(measure())
    record = {"reference_ms": value, "measured_at": time.time(), **describe}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(path)
        log.info("stored this machine's reference latency %.4f ms in %s", value, path)
    except OSError as exc:
        log.warning("could not store the reference latency in %s: %s", path, exc)
    return value


def reference_runner(
    *, backend: str, batch: int, threads: int, kind: str = "compute"
) -> Callable[[], object]:
    """One forward pass of the reference network (``kind``: ``"compute"`` or ``"overhead"``)
    with these settings."""
    from hwnas.hardware.measured import _runner

    build, shape = _reference_kind(kind)
    return _runner(build(), shape, backend=backend, batch=batch, threads=threads)


def _reference_kind(kind: str) -> tuple[Callable[[], Any], tuple[int, ...]]:
    """The module builder and input shape of a reference network kind."""
    kinds = {
        "compute": (reference_module, REFERENCE_INPUT),
        "overhead": (overhead_module, OVERHEAD_INPUT),
    }
    if kind not in kinds:
        raise ValueError(f"no reference network of kind {kind!r}; one of {', '.join(kinds)}")
    return kinds[kind]


def machine_reference_ms(
    ref: Callable[[], object], *, backend: str, batch: int, threads: int, kind: str = "compute"
) -> float:
    """This machine's stored latency of the ``kind`` reference network for these settings
    (timed with ``ref`` and stored when there is none yet)."""
    from hwnas.hardware.fingerprint import device_fingerprint
    from hwnas.hardware.measured import block_samples

    def measure_reference() -> float:
        samples, _, _ = block_samples(
            ref, warmup=20, repeats=int(REFERENCE_SECONDS / 0.1), min_block_s=0.1
        )
        return float(np.median(samples) * 1e3)

    fp = device_fingerprint(backend=backend, threads=threads)
    return stored_reference_ms(
        reference_path(fp.key(), backend, batch, threads, kind=kind),
        measure_reference,
        describe={"fingerprint": fp.as_dict(), "batch": batch, "threads": threads, "kind": kind},
    )


def measure_interleaved(
    run: Callable[[], object],
    *,
    backend: str,
    batch: int,
    threads: int,
    warmup: int,
    pairs: int,
) -> Measurement:
    """Time ``run`` in mini-blocks alternating with the reference network; the median ratio
    times this machine's stored reference latency (see the module's docstring)."""
    from hwnas.hardware.measured import summarize

    ref = reference_runner(backend=backend, batch=batch, threads=threads)
    ref_ms = machine_reference_ms(ref, backend=backend, batch=batch, threads=threads)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        nets, refs = mini_blocks(run, ref, pairs=pairs, warmup=warmup)
    finally:
        if gc_was_enabled:
            gc.enable()
    m = summarize(
        nets / refs * ref_ms / 1e3,
        runs_per_block=0,
        backend=backend,
        batch=batch,
        threads=threads,
    )
    return replace(
        m,
        timing="interleaved",
        raw_median_ms=float(np.median(nets) * 1e3),
        reference_ms=ref_ms,
    )
