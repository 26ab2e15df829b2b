"""Training checkpoints: one ``checkpoint.pt`` per run folder, replaced atomically each epoch.

The file is a ``torch.save`` of plain values only (tensors, numbers, strings, lists, dicts), so
it is read back with ``torch.load(..., weights_only=True)`` and never unpickles code. It holds:

* ``format`` and ``version``, so another file is refused with a clear message;
* ``config`` (the weight-changing fields of the :class:`TrainConfig`), its ``fingerprint`` and
  the training data's shape (``data``), so a run never resumes under other settings;
* ``epoch`` (finished epochs), ``step`` (optimizer steps so far) and ``history``;
* ``model`` and ``optimizer`` state dicts, the shuffling generator's state (``generator``) and
  the global CPU random state (``rng``, for dropout), which make a resumed run bit-identical to
  an uninterrupted one on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError, DataError, StoreError, one_line
from hwnas.training.config import TrainConfig

FORMAT = "hwnas-train-checkpoint"
VERSION = 1
FILE_NAME = "checkpoint.pt"
_FIX = "delete it to train from the start"


@dataclass(frozen=True)
class Resume:
    """Where a checkpoint left off (the model and optimizer are already loaded in place)."""

    epoch: int
    step: int
    history: list[dict[str, Any]]
    generator_state: torch.Tensor
    rng_state: torch.Tensor


def checkpoint_path(checkpoint_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint file of a run folder, creating the folder.

    Raises:
        StoreError: The folder cannot be created (a file has its name, no permission).
    """
    folder = Path(checkpoint_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the checkpoint_dir {folder} ({exc.strerror or exc}); "
            "pass a folder you can write to"
        ) from None
    return folder / FILE_NAME


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    data_shape: tuple[int, ...],
    epoch: int,
    step: int,
    generator: torch.Generator,
    history: list[dict[str, Any]],
) -> None:
    """Write the state after ``epoch`` finished epochs to ``path`` through a temporary file, so
    an interrupted write never leaves half a checkpoint.

    Raises:
        StoreError: The file cannot be written (disk full, no permission).
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": config.fingerprint(),
        "config": config.weight_fields(),
        "data": list(data_shape),
        "epoch": epoch,
        "step": step,
        "finished": epoch == config.epochs,
        "history": [dict(h) for h in history],
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "rng": torch.get_rng_state(),
    }
    write_state(path, state, fix="free disk space or pass another checkpoint_dir")


def write_state(path: Path, state: dict[str, Any], *, fix: str) -> None:
    """``torch.save`` plain values to ``path`` through a synced temporary file, so an interrupted
    write never leaves half a file; :class:`StoreError` naming ``fix`` when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(
            f"cannot write the checkpoint {path} ({exc.strerror or exc}); {fix}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def read_state(path: Path, *, what: str, fix: str) -> Any:
    """What :func:`write_state` wrote, read with ``weights_only=True`` (plain values only, no
    code unpickled); :class:`DataError` naming ``what`` it should be and ``fix`` for a damaged
    file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip or pickle stream
        reason = one_line(exc)[:120] or type(exc).__name__
        raise DataError(f"{path} is damaged or not a {what} ({reason}); {fix}") from None


def load_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    data_shape: tuple[int, ...],
) -> Resume:
    """Check the checkpoint at ``path`` against this run, load the model and optimizer state in
    place, and return where it left off.

    Raises:
        DataError: The file is damaged, truncated or not a training checkpoint.
        ConfigError: It was written with another config, other training data or another model.
    """
    state = _read(path)
    if state["fingerprint"] != config.fingerprint():
        raise ConfigError(
            f"{path} was written with another training config ({_config_diff(state, config)}); "
            f"pass a new checkpoint_dir, or delete {path} to start over"
        )
    if tuple(state["data"]) != tuple(data_shape):
        raise ConfigError(
            f"{path} was written for training data of shape {tuple(state['data'])}, "
            f"got {tuple(data_shape)}; pass a new checkpoint_dir, or delete {path} to start over"
        )
    if not 1 <= state["epoch"] <= config.epochs or len(state["history"]) != state["epoch"]:
        raise DataError(f"{path} holds an inconsistent epoch count (damaged); {_FIX}")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        detail = one_line(exc)[:160]
        raise ConfigError(
            f"{path} holds the weights of another model ({detail}); "
            f"pass a new checkpoint_dir, or delete {path} to start over"
        ) from None
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DataError(
            f"{path} holds an optimizer state that does not fit the model "
            f"({one_line(exc)[:160]}); {_FIX}"
        ) from None
    return Resume(
        epoch=state["epoch"],
        step=state["step"],
        history=[dict(h) for h in state["history"]],
        generator_state=state["generator"],
        rng_state=state["rng"],
    )


def _read(path: Path) -> dict[str, Any]:
    """The checkpoint's dict, with every field's type checked."""
    state = read_state(path, what="training checkpoint", fix=_FIX)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path} is not a hwnas training checkpoint; {_FIX}")
    if state.get("version") != VERSION:
        raise DataError(
            f"{path} has checkpoint version {state.get('version')!r}, this hwnas reads "
            f"version {VERSION}; {_FIX}"
        )
    kinds: dict[str, type | tuple[type, ...]] = {
        "fingerprint": str,
        "config": dict,
        "data": list,
        "epoch": int,
        "step": int,
        "history": list,
        "model": dict,
        "optimizer": dict,
        "generator": torch.Tensor,
        "rng": torch.Tensor,
    }
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            raise DataError(f"{path}: field {key!r} is missing or malformed (damaged); {_FIX}")
    for key in ("generator", "rng"):
        if state[key].dtype != torch.uint8:
            raise DataError(f"{path}: field {key!r} is not a random state (damaged); {_FIX}")
    if not all(isinstance(h, dict) for h in state["history"]):
        raise DataError(f"{path}: field 'history' is malformed (damaged); {_FIX}")
    return state


def _config_diff(state: dict[str, Any], config: TrainConfig) -> str:
    """``"lr 0.1 there, 0.05 now"`` for up to three fields that differ."""
    stored, now = state["config"], config.weight_fields()
    keys = [k for k in now if stored.get(k) != now[k]]
    keys += [k for k in stored if k not in now]
    if not keys:
        return f"fingerprint {state['fingerprint']} there, {config.fingerprint()} now"
    parts = [f"{k} {stored.get(k)!r} there, {now.get(k)!r} now" for k in keys[:3]]
    more = f"; {len(keys) - 3} more" if len(keys) > 3 else ""
    return "; ".join(parts) + more
