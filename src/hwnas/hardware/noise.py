"""The noise floor of latency measurements: how well two passes over the same networks agree.

No predictor can agree with a measurement better than a second measurement of the same network
does. :func:`noise_floor` measures each network twice, the passes far apart in time and, by
default, each in a fresh process of its own (as a later study or a deployment would measure it:
process start, allocator and one-off initialisation included), and reports the share of networks
whose two medians lie within 5 % and 10 % of each other and the rank agreement (Spearman);
:func:`relative_differences` is the symmetric relative difference it (and calibration) uses.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas import errors
from hwnas.errors import ConfigError
from hwnas.hardware.fingerprint import check_backend, check_threads
from hwnas.hardware.measured import (
    DEFAULT_MIN_BLOCK_S,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP,
    SET_TIMINGS,
    Measurement,
    Progress,
    check_measure_options,
    measure_arch,
)
from hwnas.hardware.roundrobin import measure_set, round_robin_options

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch, SearchSpace


def relative_differences(first: Sequence[float], second: Sequence[float]) -> np.ndarray:
    """``|a - b| / ((a + b) / 2)`` per pair: the symmetric relative difference."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    return np.abs(a - b) / ((a + b) / 2.0)


def agreement(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """How well two passes over the same networks agree: the share within ±5 % and ±10 %, the
    median and largest relative difference, and Spearman's rank correlation."""
    from scipy.stats import spearmanr

    rel = relative_differences(first, second)
    varied = len(rel) > 2 and np.ptp(first) > 0 and np.ptp(second) > 0
    rho = float(spearmanr(first, second).statistic) if varied else float("nan")
    return {
        "within_5pct": float(np.mean(rel <= 0.05)),
        "within_10pct": float(np.mean(rel <= 0.10)),
        "median_abs_rel_diff": float(np.median(rel)),
        "max_abs_rel_diff": float(np.max(rel)),
        "spearman": rho,
    }


def set_options(**opts: Any) -> dict[str, Any]:
    """The measurement options of a pass over a set of networks (``backend``, ``batch``,
    ``threads``, ``warmup``, ``repeats``, ``min_block_s``, ``clock``, ``timing``), checked."""
    check_backend(opts["backend"])
    check_threads(opts["threads"])
    check_measure_options(**{k: v for k, v in opts.items() if k != "backend"}, sets=True)
    return dict(opts)


def measure_pass(
    space: SearchSpace,
    archs: Sequence[Arch],
    opts: dict[str, Any],
    *,
    separate_process: bool,
    progress: Callable[[int], None] | None = None,
) -> list[Measurement]:
    """Measure ``archs`` in order, here or in a fresh process (``spawn``: a new interpreter that
    imports everything anew and has never run a network)."""
    if not separate_process:
        if opts.get("timing") in SET_TIMINGS:
            return measure_set(space, archs, **round_robin_options(opts), progress=progress)
        out = []
        for arch in archs:
            out.append(measure_arch(space, arch, **opts))
            if progress is not None:
                progress(len(out))
        return out
    return passes_in_fresh_process(space, [archs], opts, progress=progress)[0]


def passes_in_fresh_process(
    space: SearchSpace,
    orders: Sequence[Sequence[Arch]],
    opts: dict[str, Any],
    *,
    progress: Callable[[int], None] | None = None,
) -> list[list[Measurement]]:
    """One pass per entry of ``orders``, one after another in one fresh process (``spawn``);
    ``progress(done)`` counts the measurements over all passes."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    strings = [[space.to_string(a) for a in archs] for archs in orders]
    total = sum(len(s) for s in strings)
    proc = ctx.Process(
        target=_passes_in_child,
        args=(child, space.name, dict(space.options), strings, opts),
        daemon=True,
    )
    proc.start()
    child.close()
    passes: list[list[Measurement]] = [[] for _ in strings]
    done = 0
    try:
        while done < total:
            try:
                message = parent.recv()
            except EOFError:
                raise RuntimeError(
                    f"the measuring process died (exit code {proc.exitcode}) after "
                    f"{done} of {total} networks"
                ) from None
            if message[0] == "error":
                kind, text = message[1], message[2]
                error = getattr(errors, kind, None)
                if isinstance(error, type) and issubclass(error, errors.HwnasError):
                    raise error(text)  # bad input stays one clear line
                raise RuntimeError(f"the measuring process failed: {kind}: {text}")
            passes[message[1]].append(Measurement(**message[2]))
            done += 1
            if progress is not None:
                progress(done)
    finally:
        parent.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    return passes


def _passes_in_child(
    conn: Any,
    space_name: str,
    space_options: dict[str, Any],
    strings: list[list[str]],
    opts: Any,
) -> None:  # pragma: no cover - runs in a child process
    from hwnas.spaces import create_space

    try:
        space = create_space(space_name, **space_options)
        for p, order in enumerate(strings):
            archs = [space.from_string(s) for s in order]
            if opts.get("timing") in SET_TIMINGS:
                for m in measure_set(space, archs, **round_robin_options(opts)):
                    conn.send(("ok", p, m.as_dict()))
                continue
            for arch in archs:
                conn.send(("ok", p, measure_arch(space, arch, **opts).as_dict()))
    except Exception as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    finally:
        conn.close()


def noise_floor(
    space: SearchSpace,
    archs: Sequence[Arch],
    *,
    backend: str = "onnxruntime",
    batch: int = 1,
    threads: int = 1,
    warmup: int = DEFAULT_WARMUP,
    repeats: int = DEFAULT_REPEATS,
    min_block_s: float = DEFAULT_MIN_BLOCK_S,
    clock: str = "wall",
    timing: str = "blocks",
    separate_processes: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """How well two measurements of the same networks agree: the best any predictor can do.

    Two passes over ``archs``, the second in reverse order, so the two measurements of a network
    lie far apart in time and slow drifts of the machine show up as disagreement. Each pass
    builds the network afresh, by default in a fresh process of its own (``separate_processes``;
    ``False``: both in this process, the in-process floor).

    Args:
        space: the search space the archs belong to.
        archs: at least one architecture.
        progress: called as ``progress(done, total)`` after each of the ``2 * len(archs)``
            measurements.
        backend, batch, threads, warmup, repeats, min_block_s, clock, timing: as in
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
    # Checked here, before a pass starts in a process of its own.
    opts = set_options(
        backend=backend,
        batch=batch,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        min_block_s=min_block_s,
        clock=clock,
        timing=timing,
    )
    n = len(archs)
    start = time.perf_counter()
    passes = []
    for p, order in enumerate((list(archs), list(archs)[::-1])):

        def tick(done: int, p: int = p) -> None:
            if progress is not None:
                progress(p * n + done, 2 * n)

        passes.append(
            measure_pass(space, order, opts, separate_process=separate_processes, progress=tick)
        )
    elapsed = time.perf_counter() - start
    first, second = passes[0], passes[1][::-1]  # both in the order of archs
    out: dict[str, Any] = {"n": n}
    for suffix, stat in (("", "median_ms"), ("_min", "min_ms")):
        shares = agreement([getattr(m, stat) for m in first], [getattr(m, stat) for m in second])
        out.update({f"{k}{suffix}": v for k, v in shares.items()})
    both = first + second
    out["median_cv"] = float(np.median([m.cv for m in both]))
    out["median_iqr_rel"] = float(np.median([m.iqr_ms / m.median_ms for m in both]))
    out["separate_processes"] = separate_processes
    out["median_cpu_share"] = float(np.median([m.cpu_share for m in both]))
    out["seconds_per_measurement"] = elapsed / (2 * n)
    out["first_ms"] = [m.median_ms for m in first]
    out["second_ms"] = [m.median_ms for m in second]
    return out
