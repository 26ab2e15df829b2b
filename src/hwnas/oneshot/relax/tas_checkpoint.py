"""TAS checkpoints, so that a killed search or distillation resumes after its last finished epoch
and ends with the same result as an uninterrupted run (on CPU, at the same thread count).

A search folder holds ``checkpoint.pt`` (:func:`save_search`, rewritten atomically after every
epoch): the settings it was made with (TAS settings but the distillation's, the space's options,
the data's provenance) and their fingerprint, the phase (``"search"``, or ``"done"`` with the
finished :class:`GradientResult` in place of the training state), the finished epochs and steps
(the LR schedule's position), the network's weights and architecture logits, both optimizers'
states, the generator that draws the batch order and the Gumbel noise, and the history: per
epoch the probabilities, the expected FLOPs and the epoch's report.

A distillation folder holds :func:`hwnas.training.fit`'s ``checkpoint.pt`` (weights, optimizer,
step, generators, history) and ``distill.json`` (:func:`check_distill_key`): the settings fit's
checkpoint does not cover (the architecture, the teacher's weights, the distillation loss, the
data). Either file made with other settings is refused with one line, as is a damaged one.
Checkpoints are read with ``weights_only=True``: nothing but tensors and plain values.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hwnas.errors import ConfigError, DataError, StoreError, one_line
from hwnas.oneshot.relax.result import GradientResult
from hwnas.training.checkpoint import read_state, write_state

if TYPE_CHECKING:
    from hwnas.data import Dataset
    from hwnas.oneshot.relax.tas_config import TASConfig
    from hwnas.spaces.resnet import ResNetSpace

FORMAT = "hwnas-tas-checkpoint"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
DISTILL_KEY = "distill.json"
DISTILL_FORMAT = "hwnas-tas-distill"
_FIX = "delete it to start over"
_KD_FIELDS = ("kd_alpha", "kd_temperature", "kd_epochs")


@dataclass
class SearchState:
    """Where a search stands: finished epochs and steps, the history, the seconds spent."""

    trajectory: list[list[list[float]]]
    expected: list[float]
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    seconds: float = 0.0


def search_settings(space: ResNetSpace, dataset: Dataset, config: TASConfig) -> dict[str, Any]:
    """What a search checkpoint depends on, as plain values: the settings but the
    distillation's, the space's options and the data's provenance."""
    options = {k: v for k, v in config.to_dict().items() if k not in _KD_FIELDS}
    return _plain({"tas": options, "space": space.options, "data": dataset.provenance()})


def result_key(space: ResNetSpace, dataset: Dataset, config: TASConfig) -> str:
    """The :class:`GradientResult` key of a TAS search: a hash of its settings, the space and
    the data."""
    what = {
        "method": "tas",
        "options": config.to_dict(),
        "space": {"name": space.name, "options": space.options},
        "data": dataset.provenance(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_search(
    path: Path,
    settings: dict[str, Any],
    *,
    net: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    generator: torch.Generator,
    state: SearchState,
) -> None:
    """Write the search's state after ``state.epoch`` finished epochs to ``path``."""
    data = _header(settings, "search")
    data.update(
        epoch=state.epoch,
        step=state.step,
        seconds=state.seconds,
        trajectory=state.trajectory,
        expected=state.expected,
        history=state.history,
        net=net.state_dict(),
        weights_opt=optimizers[0].state_dict(),
        arch_opt=optimizers[1].state_dict(),
        generator=generator.get_state(),
    )
    _write(path, data)


def save_done(path: Path, settings: dict[str, Any], result: GradientResult) -> None:
    """Replace the search's state at ``path`` by its finished result."""
    data = _header(settings, "done")
    data["result"] = _plain(result.to_dict())
    _write(path, data)


def load_search(
    path: Path,
    settings: dict[str, Any],
    *,
    net: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    generator: torch.Generator,
) -> SearchState | GradientResult:
    """The finished result stored at ``path``, or the state it left off at (the network, the
    optimizers and the generator loaded in place).

    Raises:
        ConfigError: The checkpoint was made with other settings.
        DataError: It is damaged or not a TAS search checkpoint.
    """
    data = _read(path, settings, "search")
    if data["phase"] == "done":
        return GradientResult.from_dict(data.get("result"), str(path))
    kinds: dict[str, type | tuple[type, ...]] = {
        "epoch": int,
        "step": int,
        "seconds": (int, float),
        "trajectory": list,
        "expected": list,
        "history": list,
        "net": dict,
        "weights_opt": dict,
        "arch_opt": dict,
        "generator": torch.Tensor,
    }
    _check_fields(path, data, kinds)
    epochs = settings["tas"]["epochs"]
    if not 1 <= data["epoch"] <= epochs or len(data["history"]) != data["epoch"]:
        raise DataError(f"{path} holds an inconsistent epoch count (damaged); {_FIX}")
    try:
        net.load_state_dict(data["net"])
        optimizers[0].load_state_dict(data["weights_opt"])
        optimizers[1].load_state_dict(data["arch_opt"])
        generator.set_state(data["generator"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: cannot resume from this checkpoint ({type(exc).__name__}: "
            f"{one_line(exc)[:160]}); {_FIX}"
        ) from None
    return SearchState(
        trajectory=data["trajectory"],
        expected=data["expected"],
        history=data["history"],
        epoch=data["epoch"],
        step=data["step"],
        seconds=float(data["seconds"]),
    )


def check_distill_key(folder: Path, settings: dict[str, Any]) -> None:
    """Refuse a distillation folder made with other ``settings``; write its ``distill.json``
    when it has none yet (before any checkpoint).

    Raises:
        ConfigError: The folder holds a distillation with other settings.
        DataError: Its ``distill.json`` is damaged, or missing beside a checkpoint.
        StoreError: The folder or the file cannot be written.
    """
    path = folder / DISTILL_KEY
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored["format"] != DISTILL_FORMAT:
                raise ValueError("format")
            there = stored["settings"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = one_line(exc)[:120] or type(exc).__name__
            raise DataError(
                f"{path} is damaged or not a TAS distillation key ({reason}); delete the "
                f"folder {folder} to start over"
            ) from None
        if there != settings:
            raise ConfigError(
                f"{path} was written for another distillation ({_diff(there, settings)}); pass "
                f"another folder, or delete {folder} to start over"
            )
        return
    if (folder / CHECKPOINT).exists():
        raise DataError(
            f"{folder / CHECKPOINT} has no {DISTILL_KEY} beside it, so its settings are "
            f"unknown; delete the folder {folder} to start over"
        )
    text = json.dumps({"format": DISTILL_FORMAT, "settings": settings}, indent=1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(
            f"cannot write {path} ({exc.strerror or exc}); pass another folder"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def distill_settings(
    space: ResNetSpace, arch: str, dataset: Dataset, teacher: nn.Module, config: TASConfig
) -> dict[str, Any]:
    """What a distillation depends on beyond fit's training config: the student's architecture
    and space, the teacher's weights (a hash), the distillation loss and the data."""
    digest = hashlib.sha256()
    for name, tensor in teacher.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return _plain(
        {
            "arch": arch,
            "space": space.options,
            "teacher": digest.hexdigest()[:16],
            "kd_alpha": config.kd_alpha,
            "kd_temperature": config.kd_temperature,
            "data": dataset.provenance(),
        }
    )


# -- helpers ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """``value`` as JSON values (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _header(settings: dict[str, Any], phase: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": _fingerprint(settings),
        "settings": json.dumps(settings, sort_keys=True),
        "phase": phase,
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {path.parent} ({exc.strerror or exc}); pass a folder "
            "you can write to"
        ) from None
    write_state(path, data, fix="free disk space or pass another folder")


def _read(path: Path, settings: dict[str, Any], what: str) -> dict[str, Any]:
    data = read_state(path, what=f"TAS {what} checkpoint", fix=_FIX)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path} is not a hwnas TAS checkpoint; {_FIX}")
    if data.get("version") != VERSION:
        raise DataError(
            f"{path} has TAS checkpoint version {data.get('version')!r}, this hwnas reads "
            f"version {VERSION}; {_FIX}"
        )
    _check_fields(path, data, {"fingerprint": str, "settings": str, "phase": str})
    if data["phase"] not in ("search", "done"):
        raise DataError(f"{path}: unknown phase {data['phase']!r} (damaged); {_FIX}")
    if data["fingerprint"] != _fingerprint(settings):
        try:
            there = json.loads(data["settings"])
        except ValueError:
            there = {}
        raise ConfigError(
            f"{path} was written for another TAS {what} ({_diff(there, settings)}); pass "
            f"another folder, or delete {path} to start over"
        )
    return data


def _check_fields(
    path: Path, data: dict[str, Any], kinds: dict[str, type | tuple[type, ...]]
) -> None:
    for key, kind in kinds.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DataError(f"{path}: field {key!r} is missing or malformed (damaged); {_FIX}")


def _diff(there: Any, now: dict[str, Any]) -> str:
    """``"epochs 2 there, 3 now"`` for up to three settings that differ (nested keys dotted,
    the settings' own group left out)."""
    flat_there, flat_now = _flatten(there), _flatten(now)
    keys = [k for k in flat_now if flat_there.get(k) != flat_now[k]]
    keys += [k for k in flat_there if k not in flat_now]
    if not keys:
        return "other settings"
    parts = [f"{k} {_shown(flat_there.get(k))} there, {_shown(flat_now.get(k))} now" for k in keys]
    more = f"; {len(keys) - 3} more" if len(keys) > 3 else ""
    return "; ".join(parts[:3]) + more


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix and prefix != "tas" else str(key)
        if isinstance(item, dict):
            out.update(_flatten(item, name))
        else:
            out[name] = item
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
