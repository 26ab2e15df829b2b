"""Where PyTorch computes: the ``compute_device`` option (``cpu``, ``cuda``, ``cuda:N``, ``auto``).

Not to be confused with the target hardware a latency is measured or looked up for (``raspi4``,
``pixel3``, ...): this is the machine's own processor that trains a network. ``auto`` takes the
first CUDA GPU when PyTorch sees one, else the CPU. :func:`check_compute_device` reads the
option without importing torch (configs are checked before anything runs);
:func:`torch_device` resolves it on the machine that computes.

Example:
    >>> check_compute_device("cuda:1", "pc_darts")
    'cuda:1'
    >>> torch_device("cpu", "pc_darts")
    device(type='cpu')
"""

from __future__ import annotations

import re
from typing import Any

from hwnas.errors import ConfigError

_FORM = re.compile(r"cpu|auto|cuda(:\d+)?")
_FIX = "use compute_device: cpu, or auto to take a CUDA GPU when there is one"


def check_compute_device(value: Any, who: str) -> str:
    """``value`` when it names a compute device, else a :class:`ConfigError` naming ``who``."""
    if not isinstance(value, str) or not _FORM.fullmatch(value):
        raise ConfigError(f"{who}: compute_device must be cpu, cuda, cuda:N or auto, got {value!r}")
    return value


def torch_device(value: str, who: str) -> Any:
    """The ``torch.device`` of ``value`` on this machine; a CUDA device this machine does not
    have is a :class:`ConfigError` (one line, with the fix)."""
    import torch

    check_compute_device(value, who)
    if value == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{who}: compute_device {value!r}, but this PyTorch ({torch.__version__}) sees no "
            f"CUDA GPU; {_FIX}"
        )
    index = int(value.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"{who}: compute_device {value!r}, but this machine has {count} CUDA GPU(s), "
            f"cuda:0 to cuda:{count - 1}; use one of those, or auto"
        )
    return torch.device("cuda", index)
