"""``load_dataset(spec)``: images from a source, split, normalised, ready for training.

Example:
    >>> from hwnas.data import load_dataset
    >>> ds = load_dataset({"name": "digits", "seed": 1})
    >>> ds.input_shape, ds.num_classes, len(ds.indices["train"])
    ((1, 8, 8), 10, 1259)

Loading and splitting need only numpy; :meth:`Dataset.tensors`, :meth:`Dataset.augment` and
resizing an array source (``image_size`` with digits, mnist or npz) need the ``torch`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.data.sources import SOURCES, Images
from hwnas.data.spec import AugmentSpec, DataSpec, parse_spec
from hwnas.data.splits import SPLITS, limit_indices, stratified_split
from hwnas.errors import ConfigError, require_torch
from hwnas.registry import closest, factory_parameters

if TYPE_CHECKING:
    import torch

_RESIZE_CHUNK = 1024  # images per interpolate call, to bound peak memory


@dataclass(frozen=True)
class Augmentation:
    """Augmentation in effect: random crop with ``crop_padding`` pixels of padding, and flips."""

    crop_padding: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip

    @classmethod
    def resolve(cls, spec: AugmentSpec | None, height: int, width: int) -> Augmentation:
        """``augment: true`` pads 2 pixels for inputs of at most 32 px, else 4; flip is off."""
        if spec is None:
            return cls()
        padding = spec.crop_padding
        if padding is None:
            padding = 2 if max(height, width) <= 32 else 4
        return cls(padding, spec.flip)


class Dataset:
    """Loaded, split and normalised images; build one with :func:`load_dataset`.

    Attributes:
        name: the source name (``digits``, ``mnist``, ``npz`` or ``folder``).
        num_classes: number of classes; labels are ``0..num_classes-1``.
        class_names: one name per class (folder names, or the original npz labels as strings).
        input_shape: ``(C, H, W)`` of one image after any resize.
        mean, std: per-channel values subtracted and divided by (computed on the train split);
            ``(0, ...)`` and ``(1, ...)`` when ``normalize`` is false.
        indices: ``{"train", "valid", "test"}`` -> sorted int64 positions in the loaded order.
        augmentation: the :class:`Augmentation` :meth:`augment` applies.
    """

    def __init__(
        self,
        *,
        spec: DataSpec,
        images: Images,
        x: np.ndarray,
        y: np.ndarray,
        indices: dict[str, np.ndarray],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        source_images: int,
    ) -> None:
        self.name = spec.name
        self.num_classes = len(images.class_names)
        self.class_names = images.class_names
        self.input_shape: tuple[int, int, int] = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
        self.mean = mean
        self.std = std
        self.indices = indices
        self.augmentation = Augmentation.resolve(spec.augment, x.shape[2], x.shape[3])
        self._spec = spec
        # what provenance needs, not the pixel array itself
        self._origin = (images.source, images.path, images.sha256, images.sha256_of)
        self._x = x  # float32 (N, C, H, W), normalised
        self._y = y
        self._source_images = source_images

    @property
    def num_images(self) -> int:
        return int(self._y.shape[0])

    def _split(self, split: str) -> np.ndarray:
        if split not in self.indices:
            raise ConfigError(f"unknown split {split!r}; {closest(split, SPLITS)}")
        return self.indices[split]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of one split as numpy: float32 ``(N, C, H, W)`` normalised, int64 labels."""
        idx = self._split(split)
        return self._x[idx], self._y[idx]

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of ``"train"``, ``"valid"`` or ``"test"``: float32 ``(N, C, H, W)``
        normalised, and int64 labels (an empty split gives tensors with N = 0)."""
        require_torch("Dataset.tensors")
        import torch

        x, y = self.arrays(split)
        return torch.from_numpy(x), torch.from_numpy(y)

    def augment(self, x_batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A randomly cropped (and, with ``flip``, half the time mirrored) copy of a batch.

        Each image is padded by ``crop_padding`` pixels of black (raw pixel value 0, which is
        ``-mean/std`` once normalised, as torchvision's ``RandomCrop`` before ``Normalize``)
        and cropped back to its size at a random offset; all draws come from ``generator``, so
        the same generator state gives the same batch. Returns ``x_batch`` itself, drawing
        nothing, when augmentation is off.
        """
        aug = self.augmentation
        if not aug.active:
            return x_batch
        require_torch("Dataset.augment")
        import torch

        if x_batch.ndim != 4 or tuple(x_batch.shape[1:]) != self.input_shape:
            raise ConfigError(
                f"augment expects a batch of shape (B, {', '.join(map(str, self.input_shape))}),"
                f" got {tuple(x_batch.shape)}"
            )
        b, c, h, w = x_batch.shape
        out = x_batch
        if aug.crop_padding > 0:
            p = aug.crop_padding
            dev = generator.device
            oy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
            ox = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
            black = [-m / s for m, s in zip(self.mean, self.std)]
            fill = torch.tensor(black, dtype=x_batch.dtype, device=x_batch.device)
            padded = fill.view(1, c, 1, 1).repeat(b, 1, h + 2 * p, w + 2 * p)
            padded[:, :, p : p + h, p : p + w] = x_batch
            rows = oy.to(x_batch.device)[:, None] + torch.arange(h, device=x_batch.device)
            cols = ox.to(x_batch.device)[:, None] + torch.arange(w, device=x_batch.device)
            batch = torch.arange(b, device=x_batch.device)[:, None, None]
            # advanced indices around a slice: the result is (B, H, W, C)
            out = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
            out = out.contiguous()
        if aug.flip:
            mirror = torch.rand(b, generator=generator, device=generator.device) < 0.5
            mirror = mirror.to(x_batch.device)[:, None, None, None]
            out = torch.where(mirror, out.flip(3), out)
        return out

    def provenance(self) -> dict[str, Any]:
        """Where the data came from and how it was split, as a JSON-ready dict."""
        spec = self._spec
        source, path, sha256, sha256_of = self._origin
        return {
            "name": self.name,
            "source": source,
            "path": None if path is None else str(path),
            "sha256": sha256,
            "sha256_of": sha256_of,
            "num_images": self.num_images,
            "source_images": self._source_images,
            "limit": spec.limit,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "image_size": spec.image_size,
            "channels": self.input_shape[0],
            "splits": {s: int(v.size) for s, v in self.indices.items()},
            "seed": spec.seed,
            "valid_fraction": spec.valid_fraction,
            "test_fraction": spec.test_fraction,
            "normalize": spec.normalize,
            "mean": list(self.mean),
            "std": list(self.std),
            "augment": {
                "crop_padding": self.augmentation.crop_padding,
                "flip": self.augmentation.flip,
            },
        }

    def describe(self) -> str:
        """One line, e.g. ``digits: 1797 images 1x8x8, 10 classes; train/valid/test ...``."""
        path = self._origin[1]
        where = f" ({path})" if path is not None else ""
        shape = "x".join(map(str, self.input_shape))
        sizes = "/".join(str(self.indices[s].size) for s in SPLITS)
        norm = "normalised" if self._spec.normalize else "not normalised"
        aug = self.augmentation
        if aug.active:
            augment = f"augment crop {aug.crop_padding}{' + flip' if aug.flip else ''}"
        else:
            augment = "no augmentation"
        return (
            f"{self.name}{where}: {self.num_images} images {shape}, {self.num_classes} classes; "
            f"train/valid/test {sizes}; seed {self._spec.seed}; {norm}; {augment}"
        )

    def __repr__(self) -> str:
        return f"<Dataset {self.describe()}>"


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``(N, C, H, W)`` to ``size x size`` (antialiased when shrinking)."""
    if x.shape[2:] == (size, size):
        return x
    require_torch("resizing images (image_size)")
    import torch
    import torch.nn.functional as F

    parts = []
    for start in range(0, len(x), _RESIZE_CHUNK):
        chunk = torch.from_numpy(x[start : start + _RESIZE_CHUNK])
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        parts.append(resized.clamp_(0.0, 1.0).numpy())
    return np.concatenate(parts)


def _load_images(spec: DataSpec) -> Images:
    factory = SOURCES.get(spec.name)  # unknown names raise with the closest ones
    params = factory_parameters(factory)
    given: dict[str, Any] = {"path": spec.path, "channels": spec.channels}
    options = {k: v for k, v in given.items() if v is not None}
    for key in options:
        if key not in params:
            raise ConfigError(
                f"dataset {spec.name!r} takes no {key!r}; remove {key} from the dataset spec"
            )
    for key, param in params.items():
        if param.default is param.empty and key not in options:
            what = "the .npz file" if spec.name == "npz" else "the folder"
            raise ConfigError(
                f"dataset {spec.name!r} needs {key!r}: add {key}: <{what}> to the dataset spec"
            )
    if "image_size" in params and spec.image_size is not None:
        options["image_size"] = spec.image_size
    return factory(**options)


def _stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x`` (float64 sums); a constant channel gets std 1."""
    means, stds = [], []
    for c in range(x.shape[1]):
        channel = x[:, c]
        means.append(float(channel.mean(dtype=np.float64)))
        std = float(channel.std(dtype=np.float64))
        stds.append(std if std > 1e-12 else 1.0)
    return tuple(means), tuple(stds)


def load_dataset(spec: Mapping[str, Any]) -> Dataset:
    """Load, split and normalise the dataset a spec names.

    See :mod:`hwnas.data.spec` for the keys, :mod:`hwnas.data.sources` for pixel scaling and
    the npz channel rule, and :mod:`hwnas.data.splits` for how splits are drawn. Spec problems
    raise :class:`~hwnas.errors.ConfigError`, file problems :class:`~hwnas.errors.DataError`,
    each with a one-line message.

    Example:
        >>> ds = load_dataset({"name": "digits", "limit": 200, "augment": True})
        >>> ds.describe()[:40]
        'digits: 200 images 1x8x8, 10 classes; tr'
    """
    checked = parse_spec(spec)
    images = _load_images(checked)
    source_images = len(images.y)
    keep = limit_indices(source_images, checked.limit, checked.seed)
    x, y = images.x[keep], images.y[keep]
    if np.unique(y).size < 2:
        raise ConfigError(
            f"limit {checked.limit} leaves images of only 1 class; raise limit so that at least "
            "2 classes remain"
        )
    if checked.image_size is not None and "image_size" not in factory_parameters(
        SOURCES.get(checked.name)
    ):
        x = _resize(x, checked.image_size)
    indices = stratified_split(
        y,
        len(images.class_names),
        valid_fraction=checked.valid_fraction,
        test_fraction=checked.test_fraction,
        seed=checked.seed,
    )
    channels = x.shape[1]
    if checked.normalize:
        mean, std = _stats(x[indices["train"]])
        x = (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[
            :, None, None
        ]
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    return Dataset(
        spec=checked,
        images=images,
        x=np.ascontiguousarray(x, dtype=np.float32),
        y=y,
        indices=indices,
        mean=mean,
        std=std,
        source_images=source_images,
    )
