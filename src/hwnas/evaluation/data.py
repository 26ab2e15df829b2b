"""Finding and loading the NB201 benchmark tables, with a binary cache for fast reloads.

The tables live in a data folder holding (as ``../shared/data`` does)::

    nb201_nats_test_acc/nats_bench.csv                 test accuracy, 3 datasets, 15,625 rows
    nb201_cifar10valid_landscapes/cifar10_avg.csv      CIFAR-10 train/valid/test (cifar10-valid)
    nb201_fbnet_latency_help/nb201_latency_ms.csv      latency on 20 device settings

The first load parses the CSVs (~1 s) and writes one ``.npz`` (no pickles) to the cache folder
(``HWNAS_CACHE_DIR``, else ``~/.cache/hwnas``); later loads read that in a few milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwnas.errors import DataError

log = logging.getLogger(__name__)

NB201_FILES = {
    "test": Path("nb201_nats_test_acc/nats_bench.csv"),
    "valid": Path("nb201_cifar10valid_landscapes/cifar10_avg.csv"),
    "latency": Path("nb201_fbnet_latency_help/nb201_latency_ms.csv"),
}
ACCURACY_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}
CACHE_VERSION = 1


def data_dir_candidates(configured: str | Path | None = None) -> list[tuple[str, Path]]:
    """Where benchmark data is looked for, in order, each with where the guess came from."""
    out: list[tuple[str, Path]] = []
    if configured is not None:
        out.append(("data_dir in the config", Path(configured).expanduser()))
    env = os.environ.get("HWNAS_DATA")
    if env:
        out.append(("$HWNAS_DATA", Path(env).expanduser()))
    repo = Path(__file__).resolve().parents[3]
    out.append(("../shared/data beside the repository", repo.parent / "shared" / "data"))
    cwd_guess = Path.cwd().parent / "shared" / "data"
    if cwd_guess.resolve() != (repo.parent / "shared" / "data").resolve():
        out.append(("../shared/data beside the working folder", cwd_guess))
    return out


def find_data_dir(required: list[Path], configured: str | Path | None = None) -> Path:
    """The first candidate folder holding all ``required`` files, else a :class:`DataError`."""
    tried = []
    for origin, folder in data_dir_candidates(configured):
        if all((folder / r).is_file() for r in required):
            return folder
        missing = next(r for r in required if not (folder / r).is_file())
        tried.append(f"{origin} = {folder} (no {missing})")
        if origin == "data_dir in the config":
            break  # an explicit folder is not second-guessed
    raise DataError(
        "NB201 benchmark tables not found; tried "
        + "; ".join(tried)
        + ". Set data_dir in the config or HWNAS_DATA to the folder holding them"
    )


@dataclass(frozen=True)
class NB201Tables:
    """All NB201 tables as arrays aligned on the NB201 index (row i = architecture index i)."""

    arch: np.ndarray  # canonical strings
    accuracy: dict[str, np.ndarray]  # dataset -> test accuracy (%)
    valid_accuracy: dict[str, np.ndarray]  # dataset -> validation accuracy (%)
    latency: dict[str, np.ndarray]  # device -> ms
    index: dict[str, int]

    @property
    def devices(self) -> list[str]:
        return list(self.latency)


def cache_dir() -> Path:
    env = os.environ.get("HWNAS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwnas"


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _parse_csvs(folder: Path) -> dict[str, np.ndarray]:
    import pandas as pd

    def read(rel: Path) -> pd.DataFrame:
        path = folder / rel
        try:
            return pd.read_csv(path)
        except Exception as exc:  # pandas raises many kinds; all mean the same to the user
            raise DataError(f"cannot read {path}: {exc}") from None

    test, valid, lat = (
        read(NB201_FILES["test"]),
        read(NB201_FILES["valid"]),
        read(NB201_FILES["latency"]),
    )
    n = len(test)
    arrays: dict[str, np.ndarray] = {"arch": test["ArchitectureString"].astype(str).to_numpy()}
    for ds, col in ACCURACY_COLUMNS.items():
        if col not in test.columns:
            raise DataError(f"{folder / NB201_FILES['test']} lacks column {col!r}")
        arrays[f"acc/{ds}"] = test[col].to_numpy(dtype=np.float64)
    # Other tables are keyed by the NB201 index; align on it and check the strings agree.
    valid = valid.set_index("index").reindex(range(n))
    if valid["arch_str"].astype(str).to_numpy().tolist() != arrays["arch"].tolist():
        raise DataError(f"{folder / NB201_FILES['valid']} does not align with the test table")
    arrays["valid/cifar10"] = valid["valid-accuracy"].to_numpy(dtype=np.float64)
    lat = lat.set_index("index").reindex(range(n))
    if lat["arch_str"].astype(str).to_numpy().tolist() != arrays["arch"].tolist():
        raise DataError(f"{folder / NB201_FILES['latency']} does not align with the test table")
    for col in lat.columns:
        if col != "arch_str":
            arrays[f"lat/{col}"] = lat[col].to_numpy(dtype=np.float64)
    return arrays


def _tables_from_arrays(arrays: dict[str, np.ndarray]) -> NB201Tables:
    arch = arrays["arch"]
    return NB201Tables(
        arch=arch,
        accuracy={k[4:]: v for k, v in arrays.items() if k.startswith("acc/")},
        valid_accuracy={k[6:]: v for k, v in arrays.items() if k.startswith("valid/")},
        latency={k[4:]: v for k, v in arrays.items() if k.startswith("lat/")},
        index={s: i for i, s in enumerate(arch.tolist())},
    )


@lru_cache(maxsize=4)
def load_nb201_tables(folder: Path) -> NB201Tables:
    """Load (and cache) the NB201 tables from ``folder``."""
    paths = [folder / p for p in NB201_FILES.values()]
    cache = cache_dir() / f"nb201-{_fingerprint(paths)}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return _tables_from_arrays({k: z[k] for k in z.files})
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("ignoring unreadable cache %s: %s", cache, exc)
    arrays = _parse_csvs(folder)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        plain = {k: (v.astype("U") if v.dtype == object else v) for k, v in arrays.items()}
        np.savez(tmp, **plain)  # type: ignore[arg-type]
        os.replace(tmp, cache)
    except OSError as exc:
        log.info("could not write table cache %s: %s", cache, exc)
    return _tables_from_arrays(arrays)
