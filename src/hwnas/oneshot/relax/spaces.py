"""Which spaces can be relaxed, and how: the search network, the slots and their choices, the
architecture a choice per slot is, the derived top-k, the cost slots, PC-DARTS's edge groups and
the parameter-free choices of each relaxable space (``nb201``: the cell's 6 edges; ``fbnet``:
FBNet's 22 layers; ``mbv3``: 20 blocks and 5 stage depths at a fixed resolution and width;
``fbnet`` and ``mbv3`` offer every mode but PC-DARTS's ``partial``).

A relaxed network takes ``(x, sample)`` where ``sample`` is an
:class:`~hwnas.oneshot.relax.nb201_net.ArchSample` (per slot, the weight of each choice and the
choices to compute) and returns logits; its architecture weights live outside it.

Example:
    >>> from hwnas.oneshot.relax.methods import method_settings
    >>> from hwnas.spaces import create_space
    >>> space = create_space("mbv3", preset="small", input_size=28)
    >>> relax = relaxation(space, method_settings("gdas", {}))
    >>> len(relax.slot_names), relax.to_arch(space, method_settings("gdas", {}), [0] * 25)["d"]
    (25, [2, 2, 2, 2, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.oneshot.relax import fbnet_net, mbv3_relax
from hwnas.oneshot.relax.cost_model import CostSlots, categorical_slots
from hwnas.oneshot.relax.derive import top_k
from hwnas.oneshot.relax.methods import MODES, MethodSettings
from hwnas.oneshot.relax.nb201_net import PARAMETER_FREE, SLOT_NAMES, RelaxedNB201
from hwnas.spaces.base import Arch, CategoricalSpace, SearchSpace
from hwnas.spaces.nb201 import NB201_EDGES


def _categorical(space: SearchSpace) -> CategoricalSpace:
    if not isinstance(space, CategoricalSpace):
        raise ConfigError(f"the {space.name!r} space is not categorical; its relaxation must say")
    return space


def _slot_choices(space: SearchSpace) -> list[list[str]]:
    return [list(c) for c in _categorical(space).slots]


def _ops_arch(space: SearchSpace, settings: MethodSettings, picks: Sequence[int]) -> Arch:
    slots = _categorical(space).slots
    return {"ops": [slots[i][j] for i, j in enumerate(picks)]}


def _top_k(
    space: SearchSpace, settings: MethodSettings, probs: Sequence[np.ndarray], k: int
) -> list[tuple[int, ...]]:
    return top_k(probs, k)


def _space_cost_slots(space: SearchSpace, settings: MethodSettings) -> CostSlots:
    return categorical_slots(space)


def _same(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return list(weights)


def _no_check(space: SearchSpace, settings: MethodSettings) -> None:
    return None


@dataclass(frozen=True)
class Relaxation:
    """How one space is relaxed. The defaults fit a categorical space (``{"ops": [...]}``).

    Attributes:
        build: ``(space, settings, num_classes, in_channels) -> nn.Module`` (the search network).
        slot_names: one name per slot, for the trajectory and the report.
        groups: slots whose edges feed the same node (PC-DARTS's edge normalisation), or None.
        parameter_free: choices without weights (a collapse toward them is reported).
        modes: the relaxation modes the network supports.
        slot_choices: ``space -> per slot, its choice names``.
        to_arch: ``(space, settings, one choice index per slot) -> arch``.
        derive: ``(space, settings, per-slot probabilities, k) -> the k best distinct
            architectures as choice indices``, the per-slot argmax first.
        cost_slots: ``(space, settings) -> the slots an additive hardware cost sums over``.
        cost_weights: per-slot weights -> per cost slot, the weights of its choices (the
            expected cost is taken over these).
        options: the method settings only this relaxation reads (others refuse them).
        check: ``(space, settings) -> None``, a ConfigError for settings the space refuses.
    """

    build: Callable[[SearchSpace, MethodSettings, int, int], nn.Module]
    slot_names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...] | None
    parameter_free: frozenset[str]
    modes: tuple[str, ...] = MODES
    slot_choices: Callable[[SearchSpace], list[list[str]]] = _slot_choices
    to_arch: Callable[[SearchSpace, MethodSettings, Sequence[int]], Arch] = _ops_arch
    derive: Callable[
        [SearchSpace, MethodSettings, Sequence[np.ndarray], int], list[tuple[int, ...]]
    ] = _top_k
    cost_slots: Callable[[SearchSpace, MethodSettings], CostSlots] = _space_cost_slots
    cost_weights: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] = _same
    options: tuple[str, ...] = ()
    check: Callable[[SearchSpace, MethodSettings], None] = _no_check


# The settings that only some relaxations read.
SPACE_OPTIONS: tuple[str, ...] = mbv3_relax.OPTIONS


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


# no partial channels on chains of blocks whose width and stride change (see fbnet_net, mbv3_net)
_NO_PARTIAL = tuple(m for m in MODES if m != "partial")

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
        modes=_NO_PARTIAL,
    ),
    "mbv3": Relaxation(
        build=mbv3_relax.build,
        slot_names=mbv3_relax.SLOT_NAMES,
        groups=None,
        parameter_free=frozenset(),  # every candidate block has weights
        modes=_NO_PARTIAL,
        slot_choices=mbv3_relax.slot_choices,
        to_arch=mbv3_relax.to_arch,
        derive=mbv3_relax.derive,
        cost_slots=mbv3_relax.cost_slots,
        cost_weights=mbv3_relax.cost_weights,
        options=mbv3_relax.OPTIONS,
        check=mbv3_relax.check,
    ),
}


def relaxation(space: SearchSpace, settings: MethodSettings) -> Relaxation:
    """The relaxation of ``space`` for ``settings``' mode; ConfigError when there is none, when
    the mode is not offered, or when a setting does not apply to the space."""
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
    for name in SPACE_OPTIONS:
        if getattr(settings, name) is not None and name not in found.options:
            users = [n for n, r in RELAXATIONS.items() if name in r.options]
            raise ConfigError(
                f"{settings.method}: option {name!r} applies to the {' and '.join(users)} space "
                f"only, not {space.name!r}; remove it"
            )
    found.check(space, settings)
    return found
