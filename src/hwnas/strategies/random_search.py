"""Random search without repeats: the baseline every strategy must beat."""

from __future__ import annotations

from hwnas.spaces.base import Arch
from hwnas.strategies.base import Strategy
from hwnas.trial import Observation


class RandomSearch(Strategy):
    """Uniform samples from the space, never the same architecture twice.

    Example (config)::

        strategy: {name: random}
    """

    def on_setup(self) -> None:
        self._seen: set[str] = set()

    def ask(self) -> Arch:
        arch = self.sample_unseen(self._seen)
        self._seen.add(self.key(arch))
        return arch

    def tell(self, observation: Observation) -> None:
        self._seen.add(observation.arch_str)
