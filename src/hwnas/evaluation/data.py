"""Finding and loading the NB201 benchmark tables, checked, with a binary cache for fast reloads.

The tables live in a data folder holding (as ``../shared/data`` does)::

    nb201_nats_test_acc/nats_bench.csv                 test accuracy, 3 datasets, 15,625 rows
    nb201_cifar10valid_landscapes/cifar10_avg.csv      CIFAR-10 train/valid/test (cifar10-valid)
    nb201_fbnet_latency_help/nb201_latency_ms.csv      latency on 20 device settings

The first load parses and checks the CSVs (about half a second) and writes one ``.npz`` (no
pickles) to the cache folder (``HWNAS_CACHE_DIR``, else ``~/.cache/hwnas``), keyed by each file's
path, size and modification time; later loads read that in a few milliseconds. The cache is only
written for tables that passed the checks, and it keeps each file's SHA-256 so a cached load can
report provenance without hashing 13 MB again.

Checks (any failure is a :class:`DataError` naming the file, the line as an editor shows it, the
column and the fix): every row has as many fields as the header (a row with fewer is the sign of
a truncated file); each file has exactly one row per NB201 cell (15,625); every cell that becomes
a metric (the three test accuracies, ``valid-accuracy`` and every latency device column) is a
finite number; the ``index`` columns are a permutation of the NB201 indices; the test table's
architecture strings are distinct NB201 cell strings and the other tables' ``arch_str`` agree
with them. Columns that become no metric (``UniqueString``, losses, times, ...) are not checked
cell by cell. The real data (``../shared/data``, checked when this was written) holds no empty,
NaN or inf cell in any column, so no column is exempted. A file cut inside its very last number
is the one truncation these checks cannot see (``cifar10_avg.csv`` legitimately ends without a
newline); the README beside each file gives its SHA-256 for that.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwnas.errors import DataError
from hwnas.evaluation.checks import CsvRows, describe_cell, read_csv_rows, to_floats

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
NB201_CELLS = 15625
CACHE_VERSION = 2  # 2: checked tables, with each file's SHA-256
FIX = "restore the file from its source (see the README.md beside it)"
_OP = "(?:none|skip_connect|nor_conv_1x1|nor_conv_3x3|avg_pool_3x3)"
_CELL = re.compile(rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|")


def data_dir_candidates(configured: str | Path | None = None) -> list[tuple[str, Path]]:
    """Where benchmark data is looked for, in order, each with where the guess came from.

    An explicit folder (``data_dir`` in the config, else a non-empty ``$HWNAS_DATA``) is the only
    candidate: it is not second-guessed. Otherwise ``../shared/data`` beside the repository, then
    beside the working folder.
    """
    if configured is not None:
        return [("data_dir in the config", Path(configured).expanduser())]
    env = os.environ.get("HWNAS_DATA")
    if env:
        return [("$HWNAS_DATA", Path(env).expanduser())]
    repo = Path(__file__).resolve().parents[3]
    out = [("../shared/data beside the repository", repo.parent / "shared" / "data")]
    cwd_guess = Path.cwd().parent / "shared" / "data"
    if cwd_guess.resolve() != (repo.parent / "shared" / "data").resolve():
        out.append(("../shared/data beside the working folder", cwd_guess))
    return out


def find_data_dir(required: list[Path], configured: str | Path | None = None) -> Path:
    """The first candidate folder holding all ``required`` files, else a :class:`DataError`.

    A set ``HWNAS_DATA`` (without ``data_dir`` in the config) that is not a folder, or lacks a
    required file, is an error naming the variable: there is no fallback to ``../shared/data``.
    """
    candidates = data_dir_candidates(configured)
    if configured is None and candidates[0][0] == "$HWNAS_DATA":
        folder = candidates[0][1]
        hint = "set HWNAS_DATA to the folder holding the NB201 tables, or unset it"
        if not folder.is_dir():
            raise DataError(f"HWNAS_DATA is set to {folder}, which is not a folder; {hint}")
        missing = [str(r) for r in required if not (folder / r).is_file()]
        if missing:
            lacks = ", ".join(missing)
            raise DataError(f"HWNAS_DATA is set to {folder}, which lacks {lacks}; {hint}")
        return folder
    tried = []
    for origin, folder in candidates:
        if all((folder / r).is_file() for r in required):
            return folder
        missing_one = next(r for r in required if not (folder / r).is_file())
        tried.append(f"{origin} = {folder} (no {missing_one})")
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
    folder: Path  # the data folder (absolute when loaded through NB201Benchmark)
    sha256: dict[str, str]  # "test" / "valid" / "latency" -> hex digest of that CSV

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


def _bad(t: CsvRows, i: int, col: str, what: str) -> DataError:
    return DataError(f"{t.path} line {t.lines[i]}, column {col!r}: {what}; {FIX}")


def _check_shape(t: CsvRows, required: list[str]) -> None:
    """Required columns present, every row as wide as the header, one row per NB201 cell."""
    missing = [c for c in required if c not in t.header]
    if missing:
        raise DataError(
            f"{t.path} line {t.header_line}: the header lacks column "
            f"{', '.join(map(repr, missing))}; {FIX}"
        )
    m = len(t.header)
    for row, line in zip(t.rows, t.lines):
        if len(row) < m:
            raise DataError(
                f"{t.path} line {line}, column {t.header[len(row)]!r}: the row has {len(row)} of "
                f"{m} fields, the file may be truncated; {FIX}"
            )
        if len(row) > m:
            raise DataError(
                f"{t.path} line {line}: the row has {len(row)} fields but the header has {m}; {FIX}"
            )
    if len(t.rows) != NB201_CELLS:
        where = f"lines {t.lines[0]}-{t.lines[-1]}" if t.rows else "no rows after the header"
        state = "is truncated" if len(t.rows) < NB201_CELLS else "has extra rows"
        raise DataError(
            f"{t.path} has {len(t.rows):,} data rows ({where}) but NB201 has {NB201_CELLS:,} "
            f"cells; the file {state}; {FIX}"
        )


def _numbers(t: CsvRows, cols: list[str]) -> dict[str, np.ndarray]:
    """Columns ``cols`` as floats; the earliest cell that is not a finite number is an error."""
    out, worst = {}, None
    for col in cols:
        j = t.header.index(col)
        cells = [r[j] for r in t.rows]
        values = to_floats(cells)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and (worst is None or bad[0] < worst[0]):
            worst = (int(bad[0]), col, describe_cell(cells[bad[0]]), int(bad.size))
        out[col] = values
    if worst is not None:
        i, col, desc, count = worst
        found = "an empty cell" if desc == "empty" else desc
        more = f" ({count} such cells in this column)" if count > 1 else ""
        raise _bad(t, i, col, f"expected a finite number, found {found}{more}")
    return out


def _order(t: CsvRows) -> np.ndarray:
    """Row position of each NB201 index, from the ``index`` column (a permutation, checked)."""
    cells = [r[t.header.index("index")] for r in t.rows]
    values = to_floats(cells)
    ok = np.isfinite(values) & (values == np.round(values)) & (values >= 0)
    ok &= values < NB201_CELLS
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        what = f"expected an NB201 index 0-{NB201_CELLS - 1}, found {describe_cell(cells[i])}"
        raise _bad(t, i, "index", what)
    idx = values.astype(np.int64)
    order = np.full(NB201_CELLS, -1, dtype=np.int64)
    for pos, k in enumerate(idx.tolist()):
        if order[k] >= 0:
            raise _bad(t, pos, "index", f"index {k} is also on line {t.lines[order[k]]}")
        order[k] = pos
    return order


def _archs(t: CsvRows) -> np.ndarray:
    """The test table's architecture strings: distinct NB201 cell strings, in NB201 order."""
    j = t.header.index("ArchitectureString")
    cells = [r[j] for r in t.rows]
    first: dict[str, int] = {}
    for i, s in enumerate(cells):
        if not _CELL.fullmatch(s):
            raise _bad(t, i, "ArchitectureString", f"{s!r} is not an NB201 cell")
        if s in first:
            raise _bad(t, i, "ArchitectureString", f"{s!r} is also on line {t.lines[first[s]]}")
        first[s] = i
    return np.asarray(cells, dtype=np.str_)


def _aligned(t: CsvRows, arch: np.ndarray, test: CsvRows, cols: list[str]) -> dict[str, np.ndarray]:
    """Columns ``cols`` of a table keyed by ``index``, reordered to NB201 order and checked."""
    _check_shape(t, ["index", "arch_str", *cols])
    numbers = _numbers(t, cols)
    order = _order(t)
    j = t.header.index("arch_str")
    strings = np.asarray([t.rows[p][j] for p in order.tolist()], dtype=np.str_)
    differ = np.flatnonzero(strings != arch)
    if differ.size:
        k = int(differ[0])
        raise _bad(
            t,
            int(order[k]),
            "arch_str",
            f"{str(strings[k])!r} differs from {test.path.name} line {test.lines[k]} "
            f"({str(arch[k])!r}) for NB201 index {k}",
        )
    return {c: v[order] for c, v in numbers.items()}


def _parse_csvs(folder: Path) -> dict[str, np.ndarray]:
    """Parse and check the three CSVs in ``folder``: arrays in NB201 order plus each file's hash."""
    test, valid, lat = (read_csv_rows(folder / NB201_FILES[k], fix=FIX) for k in NB201_FILES)
    _check_shape(test, [*ACCURACY_COLUMNS.values(), "ArchitectureString"])
    accuracy = _numbers(test, list(ACCURACY_COLUMNS.values()))
    arrays: dict[str, np.ndarray] = {"arch": _archs(test)}
    for ds, col in ACCURACY_COLUMNS.items():
        arrays[f"acc/{ds}"] = accuracy[col]
    arrays["valid/cifar10"] = _aligned(valid, arrays["arch"], test, ["valid-accuracy"])[
        "valid-accuracy"
    ]
    devices = [c for c in lat.header if c not in ("index", "arch_str")]
    if not devices:
        raise DataError(f"{lat.path} line {lat.header_line}: no device columns; {FIX}")
    for dev, values in _aligned(lat, arrays["arch"], test, devices).items():
        arrays[f"lat/{dev}"] = values
    for k, t in zip(NB201_FILES, (test, valid, lat)):
        arrays[f"sha256/{k}"] = np.asarray(t.sha256)
    return arrays


def _tables_from_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> NB201Tables:
    arch = arrays["arch"]
    return NB201Tables(
        arch=arch,
        accuracy={k[4:]: v for k, v in arrays.items() if k.startswith("acc/")},
        valid_accuracy={k[6:]: v for k, v in arrays.items() if k.startswith("valid/")},
        latency={k[4:]: v for k, v in arrays.items() if k.startswith("lat/")},
        index={s: i for i, s in enumerate(arch.tolist())},
        folder=folder,
        sha256={k: str(arrays[f"sha256/{k}"]) for k in NB201_FILES},  # KeyError: not our cache
    )


@lru_cache(maxsize=4)
def load_nb201_tables(folder: Path) -> NB201Tables:
    """Load (and cache) the NB201 tables in ``folder``; :class:`DataError` if a check fails."""
    paths = [folder / p for p in NB201_FILES.values()]
    cache = cache_dir() / f"nb201-{_fingerprint(paths)}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return _tables_from_arrays(folder, {k: z[k] for k in z.files})
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("ignoring unreadable cache %s: %s", cache, exc)
    arrays = _parse_csvs(folder)  # raises before anything is cached
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, cache)
    except OSError as exc:
        log.info("could not write table cache %s: %s", cache, exc)
    return _tables_from_arrays(folder, arrays)
