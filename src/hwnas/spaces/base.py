"""The SearchSpace ABC and the categorical product space most cell and block spaces are.

An architecture is a plain JSON-serialisable dict; every space has one canonical string per
architecture, and ``from_string(to_string(a)) == a``. Strategies work through the operators here
(sample, mutate, crossover, neighbours) and through :meth:`SearchSpace.encode` vectors, so they
never need to know what a space's architectures look like.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hwnas.errors import ConfigError

if TYPE_CHECKING:
    from hwnas.spaces.hooks import BlockNetwork, FeatureSet, OpSpec

Arch = dict[str, Any]


def whole_number(space: str, name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int, or a :class:`ConfigError` for anything but a whole number
    ``>= minimum`` (10.5, "ten" and True are refused, not rounded or read as 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(f"{space}: {name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class SearchSpace(ABC):
    """A set of architectures with sampling and variation operators.

    Subclasses implement :meth:`sample`, :meth:`to_string` and :meth:`from_string`; the rest have
    defaults that finite or categorical spaces override.
    """

    name: ClassVar[str] = ""
    # Keyword options added after the space's option sets were first saved (predictor and LUT
    # files, measurement cache keys): left out of those sets while at their defaults, so what
    # was saved before them still matches.
    added_options: ClassVar[tuple[str, ...]] = ()
    options: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> SearchSpace:
        # The options a space was made with identify it in a study's store (see
        # hwnas.study.study_definition), however it was made: by name from a config or by hand.
        obj = super().__new__(cls)
        obj.options = dict(kwargs)
        return obj

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """One architecture drawn uniformly at random."""

    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """The canonical string of ``arch``."""

    @abstractmethod
    def from_string(self, text: str) -> Arch:
        """Parse a canonical string; raise :class:`ConfigError` naming what is wrong."""

    # Defaults below; a space overrides what it can do better.

    @property
    def size(self) -> int | None:
        """Number of architectures, or None when unbounded."""
        return None

    def canonical(self, text: str) -> str:
        """Normalise a string to the canonical form (parse and print)."""
        return self.to_string(self.from_string(text))

    def encode(self, arch: Arch) -> np.ndarray:
        raise NotImplementedError(f"space {self.name!r} has no vector encoding")

    def decode(self, vector: np.ndarray) -> Arch:
        raise NotImplementedError(f"space {self.name!r} has no vector encoding")

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        raise NotImplementedError(f"space {self.name!r} has no mutation operator")

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        raise NotImplementedError(f"space {self.name!r} has no crossover operator")

    def neighbours(self, arch: Arch) -> list[Arch]:
        raise NotImplementedError(f"space {self.name!r} has no neighbourhood")

    def enumerate(self) -> Iterator[Arch]:
        raise NotImplementedError(f"space {self.name!r} is not enumerable")

    def cheap_metrics(self, arch: Arch) -> dict[str, float]:
        """Metrics computed from the architecture alone (params, FLOPs); free to strategies."""
        return {}

    def build_network(self, arch: Arch) -> Any:
        """The PyTorch module of ``arch`` (needs the torch extra)."""
        raise NotImplementedError(f"space {self.name!r} has no PyTorch builder")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample (channels, height, width) for built networks."""
        raise NotImplementedError(f"space {self.name!r} has no PyTorch builder")

    def cheap_metric_names(self) -> tuple[str, ...]:
        return ()

    # Hardware hooks (types in hwnas.spaces.hooks): what the latency and memory models of
    # hwnas.hardware know of the space's networks. None: the space has no such description.

    def latency_feature_set(self) -> FeatureSet | None:
        """The named features latency predictors read (:mod:`hwnas.hardware.features`)."""
        return None

    def lut_decomposer(self) -> Callable[[Arch], list[OpSpec]] | None:
        """A function listing the operator occurrences of an architecture's network, in
        execution order, for per-op latency tables (:mod:`hwnas.hardware.lut_ops`)."""
        return None

    def mcu_network(self) -> Callable[[Arch], BlockNetwork] | None:
        """A function giving an architecture's network as the closed-form MCU memory model
        reads it (:mod:`hwnas.hardware.mcu`); without one the ``memory`` evaluator traces the
        PyTorch network."""
        return None


class CategoricalSpace(SearchSpace):
    """A product of categorical choices: the architecture is ``{"ops": [choice per slot]}``.

    Subclasses set :attr:`slots` (one tuple of allowed choices per position) and the two string
    methods; sampling, variation, encoding and enumeration come from here.
    """

    slots: Sequence[tuple[str, ...]] = ()

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        """Integer index of each slot's choice."""
        ops = self._ops(arch)
        return np.array([self.slots[i].index(op) for i, op in enumerate(ops)], dtype=np.int64)

    def decode(self, vector: np.ndarray | Sequence[int]) -> Arch:
        values = [int(v) for v in vector]
        if len(values) != len(self.slots):
            raise ConfigError(
                f"{self.name}: a vector needs {len(self.slots)} entries, got {len(values)}"
            )
        ops = []
        for i, v in enumerate(values):
            if not 0 <= v < len(self.slots[i]):
                raise ConfigError(
                    f"{self.name}: entry {i} must lie in 0..{len(self.slots[i]) - 1}, got {v}"
                )
            ops.append(self.slots[i][v])
        return {"ops": ops}

    def one_hot(self, arch: Arch) -> np.ndarray:
        """One-hot encoding, concatenated over slots (for predictors)."""
        code = self.encode(arch)
        parts = [np.eye(len(choices))[c] for choices, c in zip(self.slots, code)]
        return np.concatenate(parts)

    # -- operators ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.slots)

    def sample(self, rng: np.random.Generator) -> Arch:
        return {"ops": [choices[int(rng.integers(len(choices)))] for choices in self.slots]}

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one slot to a different choice."""
        ops = list(self._ops(arch))
        candidates = [i for i, choices in enumerate(self.slots) if len(choices) > 1]
        i = candidates[int(rng.integers(len(candidates)))]
        others = [c for c in self.slots[i] if c != ops[i]]
        ops[i] = others[int(rng.integers(len(others)))]
        return {"ops": ops}

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each slot from either parent with probability 1/2."""
        ops_a, ops_b = self._ops(a), self._ops(b)
        take_a = rng.random(len(self.slots)) < 0.5
        return {"ops": [x if t else y for x, y, t in zip(ops_a, ops_b, take_a)]}

    def neighbours(self, arch: Arch) -> list[Arch]:
        """All architectures one slot change away, in slot then choice order."""
        ops = self._ops(arch)
        out = []
        for i, choices in enumerate(self.slots):
            for c in choices:
                if c != ops[i]:
                    out.append({"ops": [*ops[:i], c, *ops[i + 1 :]]})
        return out

    def enumerate(self) -> Iterator[Arch]:
        for combo in itertools.product(*self.slots):
            yield {"ops": list(combo)}

    # -- helpers --------------------------------------------------------------------------------
    def _ops(self, arch: Arch) -> list[str]:
        try:
            ops = arch["ops"]
        except (KeyError, TypeError):
            raise ConfigError(f"{self.name}: an architecture is a dict with key 'ops'") from None
        if len(ops) != len(self.slots):
            raise ConfigError(f"{self.name}: expected {len(self.slots)} ops, got {len(ops)}")
        return list(ops)

    def validate(self, arch: Arch) -> Arch:
        ops = self._ops(arch)
        for i, op in enumerate(ops):
            if op not in self.slots[i]:
                from hwnas.registry import closest

                raise ConfigError(
                    f"{self.name}: unknown op {op!r} at position {i}; {closest(op, self.slots[i])}"
                )
        return {"ops": ops}
