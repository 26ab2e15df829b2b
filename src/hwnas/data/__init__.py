"""Datasets for training networks on a user's images: built-in digits and MNIST, an ``.npz``
file or a folder of images, split and normalised reproducibly.

Example:
    >>> from hwnas.data import list_datasets, load_dataset
    >>> list_datasets()
    ['digits', 'folder', 'mnist', 'npz']
    >>> ds = load_dataset({"name": "digits", "valid_fraction": 0.1, "test_fraction": 0.2})
    >>> ds.num_classes, ds.input_shape
    (10, (1, 8, 8))
"""

from __future__ import annotations

from hwnas.data import folder as _folder  # noqa: F401  (registers the "folder" source)
from hwnas.data.dataset import Augmentation, Dataset, load_dataset
from hwnas.data.sources import SOURCES, Images, list_datasets
from hwnas.data.spec import DataSpec, parse_spec

__all__ = [
    "SOURCES",
    "Augmentation",
    "DataSpec",
    "Dataset",
    "Images",
    "list_datasets",
    "load_dataset",
    "parse_spec",
]
