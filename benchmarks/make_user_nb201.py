"""Write NAS-Bench-201 as if it were a user's own space and table, for the benchmark's
bring-your-own-space check (issue #12, part 4).

``benchmarks/user_space/nb201_as_user.csv`` gets all 15,625 cells keyed by the ``categorical``
space's canonical string (six slots, one per cell edge, choices joined by ``-``, NB201's
operations under names a user might give them, ``none`` as ``zero``), with the test accuracy
on the three datasets and the latency on the benchmark's four devices; and, for choosing settings
on data no benchmark scores, the CIFAR-10 validation accuracy and the four tuning devices'
latency (``benchmarks/user_space/tune-*.yaml``). The configs beside it
(``benchmarks/user_space/user-*.yaml``, committed) define the same five tasks as
``benchmarks/nb201_hw.py``'s NB201 tasks over that table; nothing in them is NB201-specific, so
strategies see only what a user's space offers (no cheap metrics).

Usage::

    python benchmarks/make_user_nb201.py [--data ../shared/data]
    python benchmarks/nb201_hw.py --tasks benchmarks/user_space/*.yaml ...

The CSV (about 1.7 MB) is not committed; the benchmark's commands regenerate it.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from make_categorical_table import EDGES, nb201_string, read_columns, run

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "user_space" / "nb201_as_user.csv"
OPS = {
    "none": "zero",
    "skip_connect": "skip",
    "nor_conv_1x1": "conv1x1",
    "nor_conv_3x3": "conv3x3",
    "avg_pool_3x3": "avgpool",
}
ACCURACY = {
    "accuracy_cifar10": "CIFAR10TestAccuracy200Epochs",
    "accuracy_cifar100": "CIFAR100TestAccuracy200Epochs",
    "accuracy_imagenet16": "ImageNetTestAccuracy200Epochs",
}
DEVICES = ("raspi4", "pixel3", "fpga", "eyeriss")
# For choosing settings on data no benchmark scores: CIFAR-10 validation accuracy (NATS
# "cifar10-valid") and the four device columns the tuning tasks use (benchmarks/tuning/).
TUNING_DEVICES = ("pixel2", "silver_4114", "titanx_1", "1080ti_256")


def write_table(data: Path, out: Path) -> int:
    accuracy = read_columns(
        data / "nb201_nats_test_acc" / "nats_bench.csv", "ArchitectureString", ACCURACY
    )
    valid = read_columns(
        data / "nb201_cifar10valid_landscapes" / "cifar10_avg.csv",
        "arch_str",
        {"valid_accuracy_cifar10": "valid-accuracy"},
    )
    latency = read_columns(
        data / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv",
        "arch_str",
        {f"latency_ms@{d}": d for d in (*DEVICES, *TUNING_DEVICES)},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        devices = (*DEVICES, *TUNING_DEVICES)
        writer.writerow(
            ["arch", *ACCURACY, "valid_accuracy_cifar10", *(f"latency_ms@{d}" for d in devices)]
        )
        n = 0
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            key = nb201_string(ops)
            values = {**accuracy[key], **valid[key], **latency[key]}
            writer.writerow(["-".join(OPS[o] for o in ops), *values.values()])
            n += 1
    return n


def main() -> None:
    run(write_table, OUT, __doc__.split("\n", 1)[0])


if __name__ == "__main__":
    main()
