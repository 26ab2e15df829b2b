"""Device fingerprints: what a latency measurement was taken on, as a short stable key.

A measurement is only reusable on the same CPU, with the same thread count, backend and library
versions; the fingerprint names all of these, and its :meth:`DeviceFingerprint.key` is part of the
evaluation-cache key of measured evaluators, so a study never reuses numbers from another setup.

Example:
    >>> fp = device_fingerprint(backend="torch", threads=1)
    >>> fp.threads, fp.backend, len(fp.key())
    (1, 'torch', 12)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import ConfigError
from hwnas.registry import closest

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")


def check_backend(backend: str) -> str:
    """Return ``backend`` if it is a known latency backend, else raise :class:`ConfigError`."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown latency backend {backend!r}; {closest(str(backend), BACKENDS)}")
    return backend


def resolve_threads(threads: int | str) -> int:
    """A thread count: ``"all"`` is every logical core this process may run on."""
    if threads == "all":
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    if isinstance(threads, str):
        raise ConfigError(f"threads must be a whole number or 'all', got {threads!r}")
    return check_threads(threads)


def local_target(backend: str, batch: int, threads: int) -> str:
    """The target of a latency measured here, as metric names carry it (``latency_ms@<target>``):
    ``local`` for what deploys by default (ONNX Runtime, batch 1, one thread), with the backend
    when it is PyTorch eager and the batch and threads when they are not 1 and 1.

    Example:
        >>> local_target("onnxruntime", 1, 1), local_target("torch", 8, 2)
        ('local', 'local-torch-b8-t2')
    """
    target = "local" if backend == "onnxruntime" else f"local-{backend}"
    if (batch, threads) != (1, 1):
        target += f"-b{batch}-t{threads}"
    return target


def check_threads(threads: int) -> int:
    """Return ``threads`` if it is a usable thread count here, else raise :class:`ConfigError`."""
    cores = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ConfigError(
            f"threads must be an integer in 1..{cores} (this machine's logical cores), "
            f"got {threads!r}"
        )
    return threads


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``'s 'model name', else the platform's)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("model name", "Model", "Hardware") and value.strip():
            return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class DeviceFingerprint:
    """The hardware and software a latency measurement depends on."""

    cpu_model: str
    logical_cores: int
    threads: int
    backend: str
    torch_version: str | None
    onnxruntime_version: str | None
    numpy_version: str | None
    python_version: str
    os: str
    machine: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of every field."""
        return asdict(self)

    def key(self) -> str:
        """A 12-character hex digest of all fields: equal exactly when the fingerprints are."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceFingerprint:
        """The inverse of :meth:`as_dict` (for fingerprints stored in JSON files)."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"not a device fingerprint: {exc}") from None

    def describe(self) -> str:
        """One human-readable line, e.g. for reports."""
        libs = f"torch {self.torch_version}"
        if self.onnxruntime_version is not None:
            libs += f", onnxruntime {self.onnxruntime_version}"
        return (
            f"{self.cpu_model} ({self.logical_cores} logical cores), {self.backend} with "
            f"{self.threads} thread(s); {libs}; Python {self.python_version}, {self.os}"
        )


def device_fingerprint(*, backend: str, threads: int) -> DeviceFingerprint:
    """Fingerprint this machine for measurements with ``backend`` on ``threads`` threads.

    Args:
        backend: ``"torch"`` (eager PyTorch) or ``"onnxruntime"``.
        threads: intra-op threads the measurement pins.

    Raises:
        ConfigError: an unknown backend or an impossible thread count.

    Example:
        >>> a = device_fingerprint(backend="torch", threads=1)
        >>> a.key() == device_fingerprint(backend="torch", threads=1).key()
        True
    """
    check_backend(backend)
    check_threads(threads)
    return DeviceFingerprint(
        cpu_model=cpu_model(),
        logical_cores=os.cpu_count() or 1,
        threads=threads,
        backend=backend,
        torch_version=_version("torch"),
        onnxruntime_version=_version("onnxruntime") if backend == "onnxruntime" else None,
        numpy_version=_version("numpy"),
        python_version=platform.python_version(),
        os=f"{platform.system()} {platform.release()}",
        machine=platform.machine(),
    )
