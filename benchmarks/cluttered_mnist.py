"""A harder proxy built from the MNIST-5k that ships here: cluttered, translated digits (issue #11).

On plain MNIST-5k at 16 px a NB201 search network of parameter-free cells scores as well as one of
convolutions (the stem and the reduction blocks already do the work), so a search on it cannot
tell cells apart the way CIFAR-10 does. This writes a ``.npz`` (``x`` uint8 (N, S, S), ``y``) for
``{name: npz, path: ...}``: each 28 px digit is shrunk to ``--digit`` px, placed at a random
position on an ``--size`` px canvas, and ``--clutter`` random patches cut from other digits are
added (after Mnih et al. 2014, "Recurrent models of visual attention", cluttered translated MNIST).
Deterministic for ``--seed``.

    python benchmarks/cluttered_mnist.py --out /tmp/cluttered.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hwnas.data import load_dataset


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """(N, 28, 28) float images to (N, size, size), area averaging on a ``size`` grid."""
    n, h, _ = images.shape
    edges = np.linspace(0, h, size + 1).round().astype(int)
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(size):
        for j in range(size):
            out[:, i, j] = images[:, edges[i] : edges[i + 1], edges[j] : edges[j + 1]].mean(
                axis=(1, 2)
            )
    return out


def clutter(
    digits: np.ndarray, size: int, pieces: int, piece: int, rng: np.random.Generator
) -> np.ndarray:
    """Each digit at a random place on a ``size`` canvas, with ``pieces`` ``piece`` px patches
    of other digits at random places (pixel-wise maximum, so strokes stay strokes)."""
    n, d, _ = digits.shape
    canvas = np.zeros((n, size, size), dtype=np.float32)
    for k in range(n):
        for _ in range(pieces):
            src = digits[rng.integers(n)]
            a, b = rng.integers(0, d - piece + 1, 2)
            r, c = rng.integers(0, size - piece + 1, 2)
            patch = src[a : a + piece, b : b + piece]
            canvas[k, r : r + piece, c : c + piece] = np.maximum(
                canvas[k, r : r + piece, c : c + piece], patch
            )
        r, c = rng.integers(0, size - d + 1, 2)
        canvas[k, r : r + d, c : c + d] = np.maximum(canvas[k, r : r + d, c : c + d], digits[k])
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=24, help="canvas side (px)")
    ap.add_argument("--digit", type=int, default=14, help="digit side on the canvas (px)")
    ap.add_argument("--clutter", type=int, default=4, help="patches of other digits per image")
    ap.add_argument("--piece", type=int, default=6, help="patch side (px)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if not 0 < args.digit <= args.size or not 0 < args.piece <= args.digit:
        ap.error("need 0 < --piece <= --digit <= --size")
    source = load_dataset({"name": "mnist", "normalize": False})
    x = np.concatenate([source.arrays(s)[0] for s in ("train", "valid", "test")])[:, 0]
    y = np.concatenate([source.arrays(s)[1] for s in ("train", "valid", "test")])
    x = x.astype(np.float32)
    x = x / x.max()
    digits = shrink(x, args.digit)
    rng = np.random.default_rng(args.seed)
    images = clutter(digits, args.size, args.clutter, args.piece, rng)
    np.savez_compressed(args.out, x=(255 * images).round().astype(np.uint8), y=y.astype(np.int64))
    print(f"wrote {args.out}: {len(y)} images {args.size}x{args.size}")


if __name__ == "__main__":
    main()
