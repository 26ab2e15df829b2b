"""Device latency tables (HW-NAS-Bench / HELP) exposed as cost models, and predictor validation.

Two tables live in the data folder (see :mod:`hwnas.evaluation.data` for where it is looked up):

- NB201: all 15,625 cells on 20 device settings (``nb201_fbnet_latency_help/nb201_latency_ms.csv``,
  read through :func:`hwnas.evaluation.data.load_nb201_tables` and its binary cache);
- FBNet: 5,000 sampled architectures on 20 device settings (``fbnet_latency_ms.csv``, CIFAR-100
  network; 40 ms to parse, so it is read with pandas and kept in memory per process).

Both were measured with 32x32 inputs, so a space with another ``input_size`` is refused.

:func:`validate_on_table` fits predictors on ``n_train`` random rows of a device's table and
scores them on all the other rows. NB201 holds 341 *degenerate* cells (no path from the cell
input to its output); on pixel3 and raspi4 most of them run in 0.003-0.4 ms because the exported
network is constant-folded, so any relative-error figure that includes them is dominated by tiny
denominators. Every figure is therefore reported twice: over all held-out cells and over the
non-degenerate ones.

Example (needs the tables)::

    dev = TabularDevice("nb201", "pixel3")
    dev.latency("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
                "skip_connect~2|")  # 3.60585 (ms, NB201 index 0)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.evaluation.base import MissingArchError
from hwnas.evaluation.data import NB201_FILES, data_dir_candidates, find_data_dir, load_nb201_tables
from hwnas.hardware.accuracy import evaluate_predictions
from hwnas.hardware.features import feature_matrix, feature_names
from hwnas.hardware.predictor import ARCH_KINDS, LatencyPredictor
from hwnas.registry import closest
from hwnas.spaces.base import Arch, SearchSpace

FBNET_FILE = Path("nb201_fbnet_latency_help/fbnet_latency_ms.csv")
FBNET_META_COLUMNS = ("sample", "op_idx_list", "arch_str")
TABLE_SPACES = ("nb201", "fbnet")
TABLE_INPUT_SIZE = 32


def _find(required: Path, configured: str | Path | None) -> Path:
    tried = []
    for origin, folder in data_dir_candidates(configured):
        if (folder / required).is_file():
            return folder
        tried.append(f"{origin} = {folder}")
        if configured is not None:
            break  # an explicit folder is not second-guessed
    raise DataError(
        f"{required} not found; tried " + "; ".join(tried) + ". Pass data_dir or set HWNAS_DATA"
    )


@lru_cache(maxsize=2)
def load_fbnet_table(folder: Path) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """The FBNet latency table in ``folder``: canonical strings and device -> latency (ms)."""
    import pandas as pd

    from hwnas.spaces.fbnet import FBNetSpace

    path = folder / FBNET_FILE
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises many kinds; all mean the same to the user
        raise DataError(f"cannot read {path}: {exc}") from None
    if "arch_str" not in df.columns:
        raise DataError(f"{path} has no column 'arch_str' (the FBNet canonical string)")
    space = FBNetSpace()
    try:
        archs = tuple(space.canonical(str(s)) for s in df["arch_str"])
    except HwnasError as exc:
        raise DataError(f"{path}: {exc}") from None
    if len(set(archs)) != len(archs):
        raise DataError(f"{path} lists an architecture twice; keep one row per architecture")
    devices = [str(c) for c in df.columns if c not in FBNET_META_COLUMNS]
    return archs, {d: df[d].to_numpy(dtype=np.float64) for d in devices}


def _resolve_space(space: SearchSpace | str) -> SearchSpace:
    from hwnas.spaces import create_space

    out = create_space(space) if isinstance(space, str) else space
    if out.name not in TABLE_SPACES:
        raise ConfigError(
            f"no device latency table for space {out.name!r}; {closest(out.name, TABLE_SPACES)}"
        )
    size = getattr(out, "input_size", TABLE_INPUT_SIZE)
    if size != TABLE_INPUT_SIZE:
        raise ConfigError(
            f"the {out.name} device tables were measured at input_size {TABLE_INPUT_SIZE}, "
            f"but the space has input_size {size}; use input_size: {TABLE_INPUT_SIZE}"
        )
    return out


def _table(space: SearchSpace, data_dir: str | Path | None) -> tuple[Path, tuple[str, ...], Any]:
    if space.name == "nb201":
        folder = find_data_dir(list(NB201_FILES.values()), data_dir).resolve()
        t = load_nb201_tables(folder)
        return folder, tuple(t.arch.tolist()), t.latency
    folder = _find(FBNET_FILE, data_dir).resolve()
    archs, latency = load_fbnet_table(folder)
    return folder, archs, latency


def table_devices(space: SearchSpace | str, *, data_dir: str | Path | None = None) -> list[str]:
    """Device columns of the latency table of ``space`` (``nb201`` or ``fbnet``)."""
    return list(_table(_resolve_space(space), data_dir)[2])


class TabularDevice:
    """One device column of a latency table as a cost model.

    Args:
        space: ``nb201`` or ``fbnet`` (a name or a space object, input size 32).
        device: a device column, e.g. ``pixel3`` (see :func:`table_devices`).
        data_dir: folder holding the tables (default: ``$HWNAS_DATA``, then ``../shared/data``).

    Example (needs the tables)::

        archs, ms = TabularDevice("fbnet", "raspi4").all()  # 5,000 strings, latency in ms
    """

    def __init__(
        self, space: SearchSpace | str, device: str, *, data_dir: str | Path | None = None
    ) -> None:
        self.space = _resolve_space(space)
        self.folder, archs, latency = _table(self.space, data_dir)
        if device not in latency:
            raise ConfigError(
                f"the {self.space.name} latency table has no device {device!r}; "
                f"{closest(device, list(latency))}"
            )
        self.device = device
        self._archs = archs
        self._values: np.ndarray = latency[device]
        self._index = {s: i for i, s in enumerate(archs)}

    @property
    def metric(self) -> str:
        return f"latency_ms@{self.device}"

    def latency(self, arch: Arch | str) -> float:
        """Latency (ms) of one architecture; :class:`MissingArchError` if it is not tabulated."""
        return float(self.latencies([arch])[0])

    def latencies(self, archs: Sequence[Arch | str]) -> np.ndarray:
        """Latencies (ms) of several architectures (dicts or canonical strings)."""
        out = np.empty(len(archs))
        for k, a in enumerate(archs):
            s = self.space.canonical(a) if isinstance(a, str) else self.space.to_string(a)
            i = self._index.get(s)
            if i is None:
                raise MissingArchError(
                    f"{s!r} is not in the {self.space.name} latency table ({len(self._archs)} rows)"
                )
            out[k] = self._values[i]
        return out

    def all(self) -> tuple[list[str], np.ndarray]:
        """Every tabulated architecture (canonical strings) and its latency in ms."""
        return list(self._archs), self._values.copy()

    def features(self) -> np.ndarray:
        """The feature matrix of :meth:`all`'s architectures (computed once per process)."""
        return _features(self.space, self.folder, self._archs)


def _space_key(space: SearchSpace) -> tuple[Any, ...]:
    return (space.name, getattr(space, "num_classes", None), getattr(space, "input_size", None))


_FEATURE_CACHE: dict[tuple[Any, ...], np.ndarray] = {}


def _features(space: SearchSpace, folder: Path, archs: tuple[str, ...]) -> np.ndarray:
    key = (*_space_key(space), str(folder), len(archs), hash(archs))
    if key not in _FEATURE_CACHE:
        if len(_FEATURE_CACHE) >= 4:
            _FEATURE_CACHE.pop(next(iter(_FEATURE_CACHE)))
        X = feature_matrix(space, list(archs))
        X.setflags(write=False)
        _FEATURE_CACHE[key] = X
    return _FEATURE_CACHE[key]


def validate_on_table(
    space: SearchSpace | str,
    device: str,
    *,
    n_train: int = 300,
    seed: int = 0,
    kinds: Sequence[str] = ARCH_KINDS,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fit predictors on ``n_train`` random tabulated architectures, score them on the rest.

    Args:
        space: ``nb201`` or ``fbnet``.
        device: the table's device column to fit.
        n_train: training architectures, drawn without replacement with ``seed``.
        seed: seeds the draw and the predictors.
        kinds: predictor kinds to compare (default: gbdt, ridge and the FLOPs baseline).
        data_dir: folder holding the tables.

    Returns:
        ``{"space", "device", "metric", "n_train", "n_test", "n_degenerate_test", "seed",
        "models": {kind: {"all": figures, "non_degenerate": figures, "fit_s": seconds}}}``
        where figures are :func:`~hwnas.hardware.accuracy.evaluate_predictions`'s dict.

    Example (needs the tables)::

        r = validate_on_table("nb201", "gold_6226", n_train=300)
        r["models"]["gbdt"]["non_degenerate"]["share_within_10pct"]  # 0.93 (seed 0)
    """
    table = TabularDevice(space, device, data_dir=data_dir)
    for k in kinds:
        if k not in ARCH_KINDS:
            raise ConfigError(f"unknown latency predictor kind {k!r}; {closest(k, ARCH_KINDS)}")
    _, y = table.all()
    if not 3 <= n_train < len(y):
        raise ConfigError(
            f"n_train must lie in 3..{len(y) - 1} for the {table.space.name} table, got {n_train}"
        )
    X = table.features()
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:n_train], order[n_train:]
    names = feature_names(table.space)
    if "degenerate" in names:
        deg = X[test, names.index("degenerate")] > 0.5
    else:
        deg = np.zeros(len(test), dtype=bool)
    models: dict[str, Any] = {}
    for kind in kinds:
        start = time.perf_counter()
        p = LatencyPredictor(kind, seed=seed, device=device)
        p.fit_features(table.space, X[train], y[train])
        fit_s = time.perf_counter() - start
        pred = p.predict_features(X[test])
        models[kind] = {
            "all": evaluate_predictions(y[test], pred),
            "non_degenerate": evaluate_predictions(y[test][~deg], pred[~deg]),
            "fit_s": round(fit_s, 4),
        }
    return {
        "space": table.space.name,
        "device": device,
        "metric": table.metric,
        "n_train": int(n_train),
        "n_test": len(test),
        "n_degenerate_test": int(deg.sum()),
        "seed": int(seed),
        "models": models,
    }
