"""Write ``examples/data/categorical-table.csv``: NAS-Bench-201 cells as a user's own table.

The example ``examples/categorical-table.yaml`` searches a space defined in the config alone (the
``categorical`` space) over a CSV keyed by its canonical strings, as a user with their own
measured models would. To make that table real, it is cut from NAS-Bench-201 (Dong & Yang,
ICLR 2020): each cell's six edge operations become six slots whose choices are joined by ``-``,
with the cell's CIFAR-10 test accuracy (200 epochs, NATS-Bench TSS, Dong et al., TPAMI 2021) and
its Raspberry Pi 4 latency (HW-NAS-Bench, Li et al., ICLR 2021, as shipped by HELP).

All 15,625 cells would make a file of about 1 MB, so the table keeps a sub-space of 1,024 cells:
the ``none`` operation is left out (it only makes cells with fewer paths, down to ones with no
path from input to output, which score 10% and measure ~0 ms), and the first edge (input to
node 1) is fixed to the 3x3 convolution. The operations get short names a user might give them.

Usage::

    python benchmarks/make_categorical_table.py [--data ../shared/data] \\
        [--out examples/data/categorical-table.csv]

The inputs are ``nb201_nats_test_acc/nats_bench.csv`` and
``nb201_fbnet_latency_help/nb201_latency_ms.csv`` under ``--data`` (default: ``$HWNAS_DATA``,
else ``../shared/data`` beside the repository); see their READMEs for sources and licenses.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "examples" / "data" / "categorical-table.csv"

# NB201 operation -> the name the user's table gives it; ``none`` is left out.
OPS = {
    "nor_conv_3x3": "conv3x3",
    "nor_conv_1x1": "conv1x1",
    "avg_pool_3x3": "avgpool",
    "skip_connect": "skip",
}
# The six edges in NB201's string order (target node, source node), and the slot names the
# example config gives them; the first edge is fixed to one operation.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
SLOT_NAMES = tuple(f"node{t}_from{s}" for t, s in EDGES)
FIXED = {0: "nor_conv_3x3"}
DEVICE = "raspi4"


def nb201_string(ops: tuple[str, ...]) -> str:
    """NB201's canonical string of six edge operations."""
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def slot_choices() -> list[list[str]]:
    """The NB201 operations allowed on each edge of the sub-space."""
    return [[FIXED[i]] if i in FIXED else list(OPS) for i in range(len(EDGES))]


def read_columns(path: Path, key: str, columns: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per NB201 cell (by the ``key`` column), the named ``columns`` of a shared-data CSV."""
    with open(path, newline="") as f:
        rows = {r[key]: {name: r[col] for name, col in columns.items()} for r in csv.DictReader(f)}
    if len(rows) != 15625:
        raise SystemExit(f"expected 15,625 NB201 cells in {path}, got {len(rows)}")
    return rows


def read_rows(data: Path) -> tuple[dict[str, float], dict[str, float]]:
    """CIFAR-10 test accuracy and device latency of every NB201 cell, by NB201 string."""
    acc = read_columns(
        data / "nb201_nats_test_acc" / "nats_bench.csv",
        "ArchitectureString",
        {"a": "CIFAR10TestAccuracy200Epochs"},
    )
    lat = read_columns(
        data / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv", "arch_str", {"l": DEVICE}
    )
    return {k: float(v["a"]) for k, v in acc.items()}, {k: float(v["l"]) for k, v in lat.items()}


def write_table(data: Path, out: Path) -> int:
    """Write the sub-space's rows in slot order (first slot slowest); return the row count."""
    accuracy, latency = read_rows(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["arch", "accuracy", f"latency_ms@{DEVICE}"])
        for ops in itertools.product(*slot_choices()):
            key = nb201_string(ops)
            arch = "-".join(OPS[op] for op in ops)
            writer.writerow([arch, f"{accuracy[key]:.3f}", f"{latency[key]:.3f}"])
            rows += 1
    return rows


def run(write: Callable[[Path, Path], int], default_out: Path, description: str) -> None:
    """The command line of a table writer: ``--data`` (the shared data folder) and ``--out``."""
    default_data = Path(os.environ.get("HWNAS_DATA", REPO.parent / "shared" / "data"))
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=default_data, help="the shared data folder")
    p.add_argument("--out", type=Path, default=default_out, help="the CSV to write")
    args = p.parse_args()
    rows = write(args.data, args.out)
    print(f"wrote {rows} rows, {args.out.stat().st_size} bytes, to {args.out}")


def main() -> None:
    run(write_table, DEFAULT_OUT, __doc__.split("\n", 1)[0])


if __name__ == "__main__":
    main()
