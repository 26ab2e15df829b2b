"""What an export starts from: one complete trial of a study folder, read without writing, and
the parts of the study's ``config.yaml`` that say how to rebuild and train its network.

Only these parts of the config are read here: ``space``, ``data``, ``supernet``, ``seed``,
``base_dir`` and the options of a ``train`` evaluator; the rest belongs to ``hwnas search``.
Relative paths (``data.path``, ``supernet.dir``) are resolved as the search resolved them:
against ``base_dir`` when the config has one, else against the folder of the config the study
was searched with (stored in ``study.db``) where the path exists there, else against the study
folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import ConfigError, DataError, one_line
from hwnas.spaces import SPACES, create_space
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.trial import Trial

CONFIG_NAME = "config.yaml"
SUPERNET_NAME = "supernet"  # default supernet folder inside the study folder
SUPERNET_META = "supernet.json"


@dataclass(frozen=True)
class StudySource:
    """One trial of a study and how to rebuild it.

    Attributes:
        study_dir: the study folder (``hwnas search --out``).
        config_path: ``study_dir/config.yaml``.
        trial: the stored trial (complete).
        space: the space, built from the config's ``space`` block.
        arch: the trial's architecture, parsed from its canonical string.
        data_spec: the config's ``data`` block with ``path`` resolved (None when there is none).
        supernet_dir: the folder of the trained supernet, when one exists there.
        supernet_block: the config's ``supernet`` block without ``dir`` (None when there is none).
        train_options: the options of the config's first ``train`` evaluator (None without one):
            training from scratch trains as it did, for the epochs asked for.
        seed: the study seed (training from scratch is seeded with it).
    """

    study_dir: Path
    config_path: Path
    trial: Trial
    space: SearchSpace
    arch: Arch
    data_spec: dict[str, Any] | None
    supernet_dir: Path | None
    supernet_block: dict[str, Any] | None
    train_options: dict[str, Any] | None
    seed: int

    @property
    def arch_string(self) -> str:
        return self.trial.arch

    def space_spec(self) -> dict[str, Any]:
        """``{"name", "options"}`` of the space, as JSON values."""
        return {"name": self.space.name, "options": dict(self.space.options)}

    def metrics(self) -> dict[str, float | None]:
        """The trial's stored metrics, NaN and infinities as None (JSON has neither)."""
        return {k: (float(v) if math.isfinite(v) else None) for k, v in self.trial.metrics.items()}


def read_study(study_dir: str | os.PathLike[str], trial: int) -> StudySource:
    """Read trial ``trial`` of the study in ``study_dir`` and its config, without writing.

    Raises:
        ConfigError: no study there, no ``config.yaml``, no such trial or a failed one, a config
            whose space differs from the study's, or a space that cannot build networks.
        DataError: ``study.db`` or ``config.yaml`` cannot be read.

    Example:
        >>> src = read_study("runs/mnist", 3)  # doctest: +SKIP
        >>> src.arch_string  # doctest: +SKIP
        'r28-w1.0|k3e3,k5e4|...'
    """
    from hwnas.storage import SQLiteStore

    folder = Path(study_dir).expanduser()
    db = folder / "study.db"
    if not db.is_file():
        raise ConfigError(f"{folder} holds no study.db; give the --out folder of an hwnas search")
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ConfigError(
            f"{config_path} is missing: export rebuilds the network from the study's config; "
            f"copy the config the study was searched with to {config_path}"
        )
    store = SQLiteStore(db, readonly=True)
    try:
        meta, trials = store.load()
    finally:
        store.close()
    found = _trial(folder, trials, trial)
    config = _read_config(config_path)
    space = _space(config, config_path, meta)
    if type(space).build_network is SearchSpace.build_network:
        raise ConfigError(
            f"space {space.name!r} has no PyTorch builder (build_network), so its architectures "
            "cannot be exported; export needs a space such as mbv3, nb201 or fbnet"
        )
    try:
        arch = space.from_string(found.arch)
    except ConfigError as exc:
        raise ConfigError(
            f"trial {trial}'s arch {found.arch!r} is not an architecture of the config's space "
            f"({one_line(exc)}); restore the config the study was searched with"
        ) from None
    bases = _bases(folder, meta, config, config_path)
    data = config.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(
            f"{config_path}: data must be a mapping (the dataset spec), e.g. data: {{name: digits}}"
        )
    data_spec = None if data is None else _resolve_data(dict(data), bases)
    supernet_block, supernet_dir = _supernet(config, config_path, folder, bases)
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{config_path}: seed must be a whole number >= 0, got {seed!r}")
    return StudySource(
        study_dir=folder,
        config_path=config_path,
        trial=found,
        space=space,
        arch=arch,
        data_spec=data_spec,
        supernet_dir=supernet_dir,
        supernet_block=supernet_block,
        train_options=_train_options(config),
        seed=seed,
    )


def _trial(folder: Path, trials: list[Trial], number: int) -> Trial:
    where = (
        f"see the trial column of {folder / 'trials.csv'} (or run 'hwnas report {folder}') "
        "for the trial numbers"
    )
    by_number = {t.number: t for t in trials}
    if number not in by_number:
        span = f"trials {min(by_number)}..{max(by_number)}" if by_number else "no trials"
        raise ConfigError(f"trial {number} is not in {folder / 'study.db'} ({span}); {where}")
    found = by_number[number]
    if not found.ok:
        why = one_line(found.error or "no reason stored")[:160]
        raise ConfigError(
            f"trial {number} failed ({why}), so it has no results to export; choose a complete "
            f"trial: {where}"
        )
    return found


def _read_config(path: Path) -> dict[str, Any]:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({one_line(exc)[:120]}); check the file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({one_line(exc)[:160]}); fix it") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be a YAML mapping with a space: key; fix it")
    return value


def _space(config: Mapping[str, Any], path: Path, meta: Mapping[str, Any]) -> SearchSpace:
    from hwnas.config_checks import check_option_types

    raw = config.get("space")
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"{path} has no space: (a name, or {{name: ..., options: ...}}); add it")
    name, options = raw["name"], raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{path}: space options must be a mapping, got {options!r}")
    factory = SPACES.get(name)  # unknown names raise with the closest ones
    check_option_types(factory, dict(options), f"space {name!r}")
    space: SearchSpace = create_space(name, **dict(options))
    stored = (meta.get("definition") or {}).get("space")
    if isinstance(stored, Mapping) and (
        stored.get("name") != space.name or dict(stored.get("options") or {}) != space.options
    ):
        raise ConfigError(
            f"{path} names space {space.name!r} with options {space.options}, but the study "
            f"was searched in {stored.get('name')!r} with {stored.get('options')}; restore the "
            "config the study was searched with"
        )
    return space


def _bases(
    folder: Path, meta: Mapping[str, Any], config: Mapping[str, Any], path: Path
) -> list[Path]:
    """Folders a relative path in the config may be relative to, in order: the config's
    ``base_dir`` when it has one, else the folder of the config the study was searched with,
    then the study folder."""
    base_dir = config.get("base_dir")
    if base_dir is not None:
        if not isinstance(base_dir, str):
            raise ConfigError(f"{path}: base_dir must be a folder path, got {base_dir!r}")
        return [folder / Path(base_dir).expanduser()]  # an absolute base_dir stays as it is
    bases = []
    report = meta.get("report")
    original = report.get("config_path") if isinstance(report, Mapping) else None
    if isinstance(original, str) and original:
        bases.append(Path(original).expanduser().parent)
    bases.append(folder)
    return bases


def _train_options(config: Mapping[str, Any]) -> dict[str, Any] | None:
    entries = config.get("evaluators")
    for entry in entries if isinstance(entries, list) else []:
        if entry == "train":
            return {}
        if isinstance(entry, Mapping) and "train" in entry:
            options = entry["train"] or {}
            return dict(options) if isinstance(options, Mapping) else None
    return None


def _resolve(value: str | Path, bases: list[Path]) -> Path:
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return next((b / path for b in bases if (b / path).exists()), bases[-1] / path)


def _resolve_data(spec: dict[str, Any], bases: list[Path]) -> dict[str, Any]:
    if isinstance(spec.get("path"), (str, Path)):
        spec["path"] = str(_resolve(spec["path"], bases))
    return spec


def _supernet(
    config: Mapping[str, Any], path: Path, folder: Path, bases: list[Path]
) -> tuple[dict[str, Any] | None, Path | None]:
    block = config.get("supernet")
    if block is None:
        where = folder / SUPERNET_NAME
        return None, where if (where / SUPERNET_META).is_file() else None
    if not isinstance(block, Mapping):
        raise ConfigError(f"{path}: supernet must be a mapping (the supernet settings)")
    rest = {k: v for k, v in block.items() if k != "dir"}
    given = block.get("dir")
    if given is not None and not isinstance(given, (str, Path)):
        raise ConfigError(f"{path}: supernet.dir must be a folder path, got {given!r}")
    where = folder / SUPERNET_NAME if given is None else _resolve(given, bases)
    return rest, where if (where / SUPERNET_META).is_file() else None
