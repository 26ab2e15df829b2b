"""Can a proxy tell NB201 cells apart? Fixed cells trained from scratch on it (issue #11).

Trains the NB201 search network (``--channels`` 8, one cell per stage, as ``nb201_gradient.py``
searches it) with each of four uniform cells (every edge skip-connect, average pooling, 1x1 or
3x3 convolution) for ``--epochs`` epochs on the proxy and scores the valid split. Only proxy data
is read: the NB201 table is not. A proxy on which the parameter-free cells score as well as the
convolutional ones cannot steer a search away from them.

    python benchmarks/proxy_cells.py --data mnist --image-size 16 --out DIR/mnist16.jsonl
    python benchmarks/cluttered_mnist.py --out /tmp/cluttered.npz
    python benchmarks/proxy_cells.py --data npz --data-path /tmp/cluttered.npz --out DIR/c.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from hwnas.data import load_dataset
from hwnas.evaluation import EvaluatorContext, create_evaluator
from hwnas.spaces import NB201Space

OPS = ("skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")


def uniform_cell(op: str) -> str:
    """The NB201 cell with ``op`` on all six edges."""
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", help="a dataset name, or npz with --data-path")
    ap.add_argument("--data-path", type=Path)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, required=True, help="a .jsonl file: one line per run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec: dict[str, Any] = {"name": args.data}
    if args.data_path is not None:
        spec["path"] = str(args.data_path)
    if args.image_size is not None:
        spec["image_size"] = args.image_size
    dataset = load_dataset(spec)
    c, h, _ = dataset.input_shape
    space = NB201Space(input_size=h, in_channels=c, channels=args.channels, cells=1)
    label = args.data if args.data_path is None else args.data_path.name
    with args.out.open("w") as f:
        for seed in args.seeds:
            context = EvaluatorContext(space=space, dataset=dataset, seed=seed)
            train = create_evaluator("train", context, epochs=args.epochs, batch_size=64)
            for op in OPS:
                start = time.perf_counter()
                accuracy = train.evaluate(space.from_string(uniform_cell(op)))["accuracy"]
                row = {"data": label, "size": h, "seed": seed, "cell": op, "acc": accuracy,
                       "s": round(time.perf_counter() - start, 1)}  # fmt: skip
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
