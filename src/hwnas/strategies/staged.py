"""Two strategies in sequence: one for the first evaluations, the other from then on.

Model-based strategies and evolutionary ones are strong at different budgets: on several of the
NB201 hardware tasks Thompson sampling has the lowest regret at 50-100 evaluations and MOEA-BUS
with its surrogate catches up or leads at 300 (docs/BENCHMARKS.md section 1). ``staged`` asks
``first`` until ``switch_after`` architectures have been evaluated, then ``then``, which has been
told every result from the start (MOEA-BUS takes them as its first pool instead of its uniform
sample). Tried as the default (thompson, then the default's MOEA-BUS, switching after 50, 100
or 150) on tasks no benchmark scores, no switch point beat both parts alone (docs/BENCHMARKS.md
section 1.1), so the default stays MOEA-BUS; ``staged`` is for users who know their budget.

The switch is a fixed count, never the study's budget, so a run to 300 evaluations proposes the
same first 100 as a run to 100. ``first`` gets the study's generator unchanged (its proposals
are exactly those of ``first`` alone); ``then`` gets a generator spawned from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import SearchExhausted, Strategy
from hwnas.strategies.checks import at_least
from hwnas.trial import Observation

Spec = str | Mapping[str, Any]


class Staged(Strategy):
    """``first`` for the first ``switch_after`` evaluations, then ``then``.

    Args:
        first: the strategy that starts: a registered name, or a mapping with ``name`` and its
            options.
        then: the strategy that continues, told every result so far.
        switch_after: evaluated (not failed) architectures before ``then`` takes over.

    Example (config)::

        strategy:
          name: staged
          first: {name: thompson}
          then: {name: moea_bus, surrogate: true, population_size: 10, screen_factor: 30}
          switch_after: 100
    """

    def __init__(
        self,
        *,
        first: Spec = "thompson",
        then: Spec = "moea_bus",
        switch_after: int = 100,
    ) -> None:
        at_least("staged", switch_after=(switch_after, 1))
        self.switch_after = switch_after
        self.first = _build("first", first)
        self.then = _build("then", then)

    def on_setup(self) -> None:
        self.first.setup(self.problem, self.rng)
        self.then.setup(self.problem, _spawned(self.rng))
        self._evaluated: set[str] = set()
        self._asked_first: set[str] = set()
        self._switched = False

    @property
    def stage(self) -> str:
        """``"first"`` or ``"then"``: which strategy asks now."""
        return "then" if self._switched else "first"

    def ask(self) -> Arch:
        if not self._switched and len(self._evaluated) >= self.switch_after:
            self._switched = True
        if not self._switched:
            try:
                arch = self.first.ask()
            except SearchExhausted:
                self._switched = True
            else:
                self._asked_first.add(self.key(arch))
                return arch
        return self.then.ask()

    def tell(self, observation: Observation) -> None:
        key = observation.arch_str
        if not observation.failed:
            self._evaluated.add(key)
        if key in self._asked_first:  # the first strategy hears only what it asked for
            self._asked_first.discard(key)
            self.first.tell(observation)
        self.then.tell(observation)

    def diagnostics(self) -> dict[str, float | str]:
        active = self.then if self._switched else self.first
        return {"stage": self.stage, **active.diagnostics()}


def _build(role: str, spec: Spec) -> Strategy:
    from hwnas.strategies import STRATEGIES, create_strategy
    from hwnas.strategies.gradient import GRADIENT_STRATEGIES

    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        options = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise ConfigError(
            f"staged: {role} must be a strategy name or a mapping with 'name' and its options, "
            f"got {spec!r}"
        )
    if name == "staged" or name in GRADIENT_STRATEGIES:
        raise ConfigError(
            f"staged: {role} cannot be {name!r}; use a sampling strategy (e.g. thompson, moea_bus)"
        )
    STRATEGIES.get(name)  # an unknown name: one line with the closest names
    try:
        return create_strategy(name, **options)
    except ConfigError as exc:  # say where in the config the bad option sits
        raise ConfigError(f"staged: {role}: {exc}") from None


def _spawned(rng: np.random.Generator) -> np.random.Generator:
    """A child generator from the parent's seed sequence; the parent's stream is untouched."""
    return rng.spawn(1)[0]
