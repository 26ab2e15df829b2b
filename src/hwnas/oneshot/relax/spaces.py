"""Which spaces can be relaxed, and how: the search network, the slot names, PC-DARTS's edge
groups and the parameter-free choices of each relaxable space (``nb201``: the cell's 6 edges;
``fbnet``: FBNet's 22 layers, every mode but PC-DARTS's ``partial``).

A relaxed network takes ``(x, sample)`` where ``sample`` is an
:class:`~hwnas.oneshot.relax.nb201_net.ArchSample` (per slot, the weight of each choice and the
choices to compute) and returns logits; its architecture weights live outside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.relax import fbnet_net
from hwnas.oneshot.relax.methods import MODES, MethodSettings
from hwnas.oneshot.relax.nb201_net import PARAMETER_FREE, SLOT_NAMES, RelaxedNB201
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.nb201 import NB201_EDGES


@dataclass(frozen=True)
class Relaxation:
    """How one space is relaxed.

    Attributes:
        build: ``(space, settings, num_classes, in_channels) -> nn.Module`` (the search network).
        slot_names: one name per slot, for the trajectory and the report.
        groups: slots whose edges feed the same node (PC-DARTS's edge normalisation), or None.
        parameter_free: choices without weights (a collapse toward them is reported).
        modes: the relaxation modes the network supports.
    """

    build: Callable[[SearchSpace, MethodSettings, int, int], nn.Module]
    slot_names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...] | None
    parameter_free: frozenset[str]
    modes: tuple[str, ...] = MODES


def _nb201(space: SearchSpace, s: MethodSettings, num_classes: int, in_channels: int) -> nn.Module:
    return RelaxedNB201(
        channels=s.channels,
        cells=s.cells,
        num_classes=num_classes,
        in_channels=in_channels,
        partial_k=s.partial_k if s.mode == "partial" else 1,
    )


def _fbnet(space: SearchSpace, s: MethodSettings, num_classes: int, in_channels: int) -> nn.Module:
    # the macro is fixed: the settings' channels and cells do not apply
    return fbnet_net.RelaxedFBNet(num_classes=num_classes, in_channels=in_channels)


RELAXATIONS: dict[str, Relaxation] = {
    "nb201": Relaxation(
        build=_nb201,
        slot_names=SLOT_NAMES,
        groups=tuple(
            tuple(i for i, (t, _) in enumerate(NB201_EDGES) if t == node) for node in (1, 2, 3)
        ),
        parameter_free=PARAMETER_FREE,
    ),
    "fbnet": Relaxation(
        build=_fbnet,
        slot_names=fbnet_net.SLOT_NAMES,
        groups=None,
        parameter_free=fbnet_net.PARAMETER_FREE,
        # no partial channels: a chain of layers whose width and stride change
        modes=tuple(m for m in MODES if m != "partial"),
    ),
}


def relaxation(space: SearchSpace, settings: MethodSettings) -> Relaxation:
    """The relaxation of ``space`` for ``settings``' mode; ConfigError when there is none."""
    found = RELAXATIONS.get(space.name)
    if found is None:
        raise ConfigError(
            f"{settings.method}: the {space.name!r} space has no relaxation; relaxable spaces: "
            f"{', '.join(RELAXATIONS)}"
        )
    if settings.mode not in found.modes:
        raise ConfigError(
            f"{settings.method}: its {settings.mode!r} relaxation is not available on the "
            f"{space.name!r} space; use a method whose mode is one of {', '.join(found.modes)}"
        )
    return found
