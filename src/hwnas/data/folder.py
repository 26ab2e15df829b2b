"""Images from a folder with one sub-folder per class, read with Pillow.

Layout::

    path/cat/0001.png
    path/cat/more/0002.jpg        (files in nested folders belong to the class too)
    path/dog/0001.png

Rules:

* Class names are the sorted names of the sub-folders of ``path``; class ``i`` is the i-th name.
  Names starting with ``.`` (``.git``, ``.ipynb_checkpoints``) are not classes, and files whose
  name starts with ``.`` are not images; files directly inside ``path`` (a README, a licence)
  are not read. Every other file under a class folder must be an image Pillow can read: one
  that is not is an error naming it, never skipped.
* ``channels`` 1 converts every image to grey (Pillow mode ``'L'``), 3 to ``'RGB'``; when not
  given it is 1 if every image is grey (modes ``1``, ``L``, ``LA``, ``I``, ``I;16``, ``F``) and
  3 otherwise.
* With ``image_size`` each image is resized (bilinear) to ``image_size x image_size``, which
  stretches non-square images; without it every image must have the same size.
* Pixels are 8-bit after conversion and divided by 255.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from hwnas.data.sources import SOURCES, Images
from hwnas.errors import DataError, one_line

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def class_folders(root: Path) -> list[Path]:
    """The class sub-folders of ``root``, sorted by name; :class:`DataError` if there are none."""
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; check path in the dataset spec")
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a folder; give the folder holding one sub-folder per class"
        )
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not folders:
        files = sum(1 for p in root.iterdir() if p.is_file())
        raise DataError(
            f"image folder {root} has no class sub-folders (it holds {files} files directly); "
            "put each class's images in a sub-folder named after the class"
        )
    return folders


def image_files(folder: Path) -> list[Path]:
    """Every non-hidden file under a class folder, sorted by relative path."""
    files = [p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder))]
    if not files:
        raise DataError(
            f"class folder {folder} holds no images; add images to it or remove the folder"
        )
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


@SOURCES.register("folder")
def load_folder_images(
    *, path: Path, channels: int | None = None, image_size: int | None = None
) -> Images:
    """Images in ``path/<class>/...`` (see the module docstring for the rules)."""
    from PIL import Image  # Pillow comes with matplotlib, a core dependency

    root = Path(path)
    folders = class_folders(root)
    if len(folders) < 2:
        raise DataError(
            f"image folder {root} has only 1 class sub-folder ({folders[0].name!r}); a classifier "
            "needs at least 2 classes, so add one sub-folder of images per class"
        )
    listing: list[str] = []
    decoded: list[Image.Image] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for label, folder in enumerate(folders):
        for file in image_files(folder):
            data = file.read_bytes()
            rel = file.relative_to(root).as_posix()
            listing.append(f"{rel}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}\n")
            try:
                img = Image.open(io.BytesIO(data))
                img.load()
            except Exception as exc:  # Pillow raises many kinds for a damaged file
                raise DataError(
                    f"cannot read image {file} ({one_line(exc)}); replace it with a valid image "
                    "or remove it"
                ) from None
            if image_size is None:
                if first is None:
                    first = (file, img.size)
                elif img.size != first[1]:
                    (w0, h0), (w, h) = first[1], img.size
                    raise DataError(
                        f"images differ in size: {first[0]} is {w0}x{h0} but {file} is {w}x{h}; "
                        "set image_size in the dataset spec to resize them all"
                    )
            decoded.append(img)
            labels.append(label)
    if channels is None:
        channels = 1 if all(img.mode in GREY_MODES for img in decoded) else 3
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for original in decoded:
        picture = original.convert(mode)
        if image_size is not None and picture.size != (image_size, image_size):
            picture = picture.resize((image_size, image_size), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(picture, dtype=np.uint8))
    pixels = np.stack(arrays)
    x = pixels[:, None] if channels == 1 else pixels.transpose(0, 3, 1, 2)
    y = np.asarray(labels, dtype=np.int64)
    listing.sort()
    return Images(
        x=np.ascontiguousarray(x, dtype=np.float32) / np.float32(255.0),
        y=y,
        class_names=tuple(f.name for f in folders),
        source="image folder",
        path=root.resolve(),
        sha256=hashlib.sha256("".join(listing).encode()).hexdigest(),
        sha256_of="listing",
    )
