"""Search spaces: one ABC, one registry (``create_space``, ``list_spaces``)."""

from __future__ import annotations

from typing import Any

from hwnas.registry import Registry
from hwnas.spaces.base import Arch, CategoricalSpace, SearchSpace
from hwnas.spaces.categorical import UserCategoricalSpace
from hwnas.spaces.fbnet import FBNetSpace
from hwnas.spaces.mbv3 import MBV3Space
from hwnas.spaces.nb201 import NB201Space
from hwnas.spaces.resnet import ResNetSpace

SPACES: Registry[SearchSpace] = Registry("space")
SPACES.register("nb201")(NB201Space)
SPACES.register("fbnet")(FBNetSpace)
SPACES.register("mbv3")(MBV3Space)
SPACES.register("resnet")(ResNetSpace)
SPACES.register("categorical")(UserCategoricalSpace)


def create_space(name: str, **options: Any) -> SearchSpace:
    """Create a registered space, e.g. ``create_space("nb201", num_classes=100)``."""
    return SPACES.create(name, **options)


def list_spaces() -> list[str]:
    return SPACES.names()


__all__ = [
    "SPACES",
    "Arch",
    "CategoricalSpace",
    "FBNetSpace",
    "MBV3Space",
    "NB201Space",
    "ResNetSpace",
    "SearchSpace",
    "UserCategoricalSpace",
    "create_space",
    "list_spaces",
]
