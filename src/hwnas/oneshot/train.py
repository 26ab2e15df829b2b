"""Training a supernet end to end, with files to resume and reload it.

:func:`train_supernet` trains an :class:`~hwnas.oneshot.MBV3Supernet` through
:func:`hwnas.training.fit` with the sandwich rule (:mod:`hwnas.oneshot.sandwich`), one run of
the loop per phase, each with its own checkpoint folder, so a killed run resumes where it
stopped and a finished one is reused. Files in ``out_dir``::

    run.json                 what the run is (space, config, dataset): a later call with other
                             settings is refused instead of resuming someone else's checkpoints
    checkpoints/<phase>/     the training loop's checkpoint.pt ("all" for the sandwich schedule;
                             largest, kernel, depth, expand for progressive shrinking)
    supernet.pt              the final state dict (tensors only; torch.load(weights_only=True))
    supernet.json            space options, training config, dataset provenance, epochs, seconds,
                             history and the recalibrated accuracy of the largest and smallest
                             sub-networks

Progressive shrinking (Once-for-All, Cai et al., ICLR 2020) runs its phases in OFA's order,
each a run of the loop with its own warm-up and cosine schedule (OFA's phases are separate runs
too) and a fresh optimizer; the expanded channels are sorted by importance
(:meth:`MBV3Supernet.sort_channels`) before the expansion phase. Simplifications against OFA:
one phase per dimension (OFA splits depth and expansion in two), the same learning rate in
every phase, and in-place distillation from the largest sub-network instead of a separately
trained teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hwnas.errors import ConfigError, DataError, StoreError, one_line
from hwnas.oneshot.calibrate import SupernetScorer
from hwnas.oneshot.config import SupernetConfig
from hwnas.oneshot.sandwich import SandwichStep
from hwnas.oneshot.supernet import MBV3Supernet, largest_arch, smallest_arch
from hwnas.spaces.mbv3 import MBV3Space
from hwnas.training import fit

if TYPE_CHECKING:
    from hwnas.data import Dataset

FORMAT = "hwnas-supernet"
VERSION = 1
WEIGHTS = "supernet.pt"
META = "supernet.json"
RUN = "run.json"


@dataclass(frozen=True)
class SupernetResult:
    """What :func:`train_supernet` returns.

    Attributes:
        supernet: the trained supernet, in eval mode with its largest sub-network active.
        out_dir: the run folder.
        history: one epoch dict per epoch of every phase, each with its ``phase``.
        epochs: epochs trained in all (over every phase).
        seconds: training time summed over the epochs (scoring not included).
        accuracy: ``{"split", "largest", "smallest"}``: recalibrated accuracy of the largest
            and smallest sub-networks on the validation split (or the test split when there is
            no validation split; None for both when neither has images).
        resumed: True when a checkpoint was resumed.
        reused: True when a finished run's files were loaded and nothing was trained.
    """

    supernet: MBV3Supernet
    out_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    accuracy: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False
    reused: bool = False


def space_options(space: MBV3Space) -> dict[str, Any]:
    """The options that fix a supernet's shape, as JSON values."""
    return {
        "name": space.name,
        "preset": space.preset,
        "resolutions": list(space.resolutions),
        "widths": list(space.widths),
        "in_channels": space.in_channels,
        "num_classes": space.num_classes,
    }


def train_supernet(
    space: MBV3Space,
    dataset: Dataset,
    config: Mapping[str, Any] | SupernetConfig,
    out_dir: str | os.PathLike[str],
    progress: Callable[[Any], None] | None = None,
) -> SupernetResult:
    """Train a weight-sharing supernet of ``space`` on ``dataset`` and save it in ``out_dir``.

    Args:
        space: an ``mbv3`` space whose input shape matches the dataset's images (other
            resolutions of the space are reached by resizing).
        dataset: from :func:`hwnas.data.load_dataset`; trains on ``"train"``, reports
            ``"valid"`` each epoch, augments as the dataset says.
        config: a :class:`SupernetConfig` or its mapping (see :mod:`hwnas.oneshot.config`).
        out_dir: the run folder (see the module docstring).
        progress: called with the training loop's :class:`~hwnas.training.EpochReport` after
            every epoch (epochs count within each phase).

    Raises:
        ConfigError: bad config, a space of another kind or channel count than the data, or an
            ``out_dir`` holding a run with other settings.
        StoreError: the files cannot be written.

    Example:
        >>> from hwnas.data import load_dataset
        >>> from hwnas.spaces import create_space
        >>> ds = load_dataset({"name": "digits"})
        >>> space = create_space("mbv3", preset="small", input_size=8, in_channels=1)
        >>> config = {"train": {"epochs": 2}}
        >>> result = train_supernet(space, ds, config, "runs/sn")  # doctest: +SKIP
        >>> result.accuracy["largest"] > 0.6  # doctest: +SKIP
        True
    """
    cfg = config if isinstance(config, SupernetConfig) else SupernetConfig.from_dict(config)
    _check_space(space)
    if dataset.input_shape[0] != space.in_channels:
        raise ConfigError(
            f"train_supernet: the dataset has {dataset.input_shape[0]} channels, the space "
            f"in_channels={space.in_channels}; make them agree"
        )
    out = _folder(out_dir)
    identity = _plain(
        {"space": space_options(space), "config": cfg.to_dict(), "dataset": dataset.provenance()}
    )
    if (out / META).exists():
        meta = _read_meta(out / META)
        _compare(out / META, meta, identity)
        supernet = _load_weights(out, space, cfg.zero_init_residual)
        return SupernetResult(
            supernet=supernet,
            out_dir=out,
            history=meta["history"],
            epochs=meta["epochs"],
            seconds=meta["seconds"],
            accuracy=meta["accuracy"],
            resumed=False,
            reused=True,
        )
    if (out / RUN).exists():
        _compare(out / RUN, _read_json(out / RUN), identity)
    else:
        _write_text(out / RUN, json.dumps(identity, indent=2, sort_keys=True))

    supernet = MBV3Supernet(space, seed=cfg.train.seed, zero_init_residual=cfg.zero_init_residual)
    train = dataset.tensors("train")
    valid: tuple[torch.Tensor, torch.Tensor] | None = dataset.tensors("valid")
    if valid is not None and valid[0].shape[0] == 0:
        valid = None
    augment = dataset.augment if dataset.augmentation.active else None
    history: list[dict[str, Any]] = []
    resumed = False
    for phase, train_config in cfg.phases():
        if phase == "expand":
            supernet.sort_channels()  # only the checkpoint's weights count once it exists
        step = SandwichStep(
            space,
            phase=phase,
            num_random=cfg.num_random,
            distill=cfg.distill,
            seed=train_config.seed,
        )
        result = fit(
            supernet,
            train,
            valid,
            config=train_config,
            checkpoint_dir=out / "checkpoints" / phase,
            progress=progress,
            augment=augment,
            step=step,
        )
        resumed = resumed or result.resumed
        history += [{**h, "phase": phase} for h in result.history]

    scorer = SupernetScorer(
        supernet, dataset, calibration_images=cfg.calibration_images, seed=cfg.train.seed
    )
    split = next((s for s in ("valid", "test") if dataset.indices[s].size), None)
    accuracy: dict[str, Any] = {"split": split, "largest": None, "smallest": None}
    if split is not None:
        accuracy["largest"] = scorer.accuracy(largest_arch(space), split)
        accuracy["smallest"] = scorer.accuracy(smallest_arch(space), split)
    supernet.set_active(largest_arch(space))
    supernet.eval()
    seconds = float(sum(h["seconds"] for h in history))
    state = {k: v.detach().cpu().clone() for k, v in supernet.state_dict().items()}
    _write_bytes(out / WEIGHTS, lambda f: torch.save(state, f))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": _fingerprint(identity),
        **identity,
        "epochs": len(history),
        "seconds": seconds,
        "accuracy": accuracy,
        "history": history,
    }
    _write_text(out / META, json.dumps(meta, indent=2, sort_keys=True))
    return SupernetResult(
        supernet=supernet,
        out_dir=out,
        history=history,
        epochs=len(history),
        seconds=seconds,
        accuracy=accuracy,
        resumed=resumed,
        reused=False,
    )


def load_supernet(
    out_dir: str | os.PathLike[str],
    space: MBV3Space,
    config: Mapping[str, Any] | SupernetConfig | None = None,
) -> MBV3Supernet:
    """The supernet :func:`train_supernet` saved in ``out_dir``, in eval mode with its largest
    sub-network active.

    Raises:
        ConfigError: ``space`` (or ``config``, when given) differs from the one it was trained
            with; the message names the first differences.
        DataError: the files are missing or damaged.

    Example:
        >>> net = load_supernet("runs/supernet", space)  # doctest: +SKIP
    """
    _check_space(space)
    out = Path(out_dir)
    meta = _read_meta(out / META)
    now: dict[str, Any] = {"space": space_options(space)}
    if config is not None:
        cfg = config if isinstance(config, SupernetConfig) else SupernetConfig.from_dict(config)
        now["config"] = cfg.to_dict()
    _compare(out / META, meta, _plain(now))
    return _load_weights(out, space, bool(meta["config"].get("zero_init_residual", True)))


# -- helpers ------------------------------------------------------------------------------------
def _check_space(space: object) -> None:
    if not isinstance(space, MBV3Space):
        raise ConfigError(
            f"supernets need an mbv3 space (create_space('mbv3', ...)), got {type(space).__name__}"
        )


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _fingerprint(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _compare(path: Path, stored: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Raise a one-line :class:`ConfigError` naming the first differences of ``now`` (space,
    config, dataset) from what ``path`` stores."""
    for part, what in (("space", "space"), ("config", "supernet config"), ("dataset", "dataset")):
        if part not in now:
            continue
        there, here = _flat(stored.get(part, {})), _flat(now[part])
        keys = [k for k in here if there.get(k) != here[k]] + [k for k in there if k not in here]
        if keys:
            diff = "; ".join(f"{k} {there.get(k)!r} there, {here.get(k)!r} now" for k in keys[:3])
            more = f"; {len(keys) - 3} more" if len(keys) > 3 else ""
            raise ConfigError(
                f"{path} was written for another {what} ({diff}{more}); pass the {what} it was "
                "trained with, or use a new out_dir"
            )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; train a supernet there first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({one_line(exc)[:120]}); delete it") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} is not a JSON object (damaged); delete it")
    return value


def _read_meta(path: Path) -> dict[str, Any]:
    meta = _read_json(path)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DataError(f"{path} is not a hwnas supernet file of version {VERSION}; delete it")
    for key, kind in (("space", dict), ("config", dict), ("history", list), ("accuracy", dict)):
        if not isinstance(meta.get(key), kind):
            raise DataError(f"{path}: field {key!r} is missing or malformed (damaged); delete it")
    return meta


def _load_weights(out: Path, space: MBV3Space, zero_init_residual: bool) -> MBV3Supernet:
    path = out / WEIGHTS
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path} is missing; delete {out / META} to train again") from None
    except Exception as exc:  # torch raises many types for a damaged zip or pickle stream
        raise DataError(f"{path} is damaged ({one_line(exc)[:120]}); delete it") from None
    supernet = MBV3Supernet(space, zero_init_residual=zero_init_residual)
    try:
        supernet.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"{path} holds another supernet's weights ({one_line(exc)[:160]}); pass the space "
            "it was trained with"
        ) from None
    supernet.set_active(largest_arch(space))
    return supernet.eval()


def _folder(out_dir: str | os.PathLike[str]) -> Path:
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create out_dir {folder} ({exc.strerror or exc}); pass a folder you can write"
        ) from None
    return folder


def _write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file, so an interrupted write never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path} ({exc.strerror or exc}); free disk space") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, lambda f: f.write(text.encode()))
