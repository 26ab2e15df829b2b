"""The Evaluator ABC: turns an architecture into named metrics.

Evaluators are the expensive part of a study (training, measuring, or, for benchmarks, a table that
stands in for them). A study calls :meth:`Evaluator.evaluate` only for architectures it has not
seen; the budget counts those calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.errors import HwnasError

if TYPE_CHECKING:
    import pandas as pd

    from hwnas.data import Dataset
    from hwnas.spaces.base import Arch, SearchSpace


class MissingArchError(HwnasError, KeyError):
    """The evaluator has no value for this architecture (e.g. a table without its row)."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class EvaluatorContext:
    """What an evaluator factory may need besides its own options.

    Attributes:
        space: the search space.
        base_dir: the folder relative paths resolve against.
        data_dir: the config's ``data_dir`` (benchmark tables), resolved.
        seed: the study seed (seeds what an evaluator draws, e.g. training from scratch).
        dataset: the config's ``data:`` block, loaded (:func:`hwnas.data.load_dataset`).
        supernet_dir: the folder of the config's supernet (``supernet.dir``, else
            ``<out>/supernet``); it may not be trained yet when the evaluators are built.
        supernet_config: the checked :class:`hwnas.oneshot.SupernetConfig` mapping it is
            trained with (``SupernetConfig.to_dict()``).
    """

    space: SearchSpace
    base_dir: Path = field(default_factory=Path.cwd)
    data_dir: Path | None = None
    seed: int = 0
    dataset: Dataset | None = None
    supernet_dir: Path | None = None
    supernet_config: dict[str, Any] | None = None


class Evaluator(ABC):
    """Maps an architecture to metrics named with unit and target (``latency_ms@raspi4``).

    Subclasses implement :meth:`metrics` and :meth:`evaluate`. ``expensive`` says whether a call
    counts against the budget; ``cacheable`` whether results may be shared across studies.
    """

    expensive: bool = True
    cacheable: bool = True
    #: True for evaluators whose results change when others run beside them on the same
    #: machine (latency measured here): a parallel executor with local workers warns.
    shares_machine_badly: bool = False

    @abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """Names of all metrics this evaluator yields."""

    @abstractmethod
    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Metrics of one architecture; raise :class:`MissingArchError` if it has none."""

    def describe(self) -> str:
        """One line for reports: what the metrics are and how they are obtained (the backend,
        batch, threads and unit of a measurement, say)."""
        return f"{', '.join(self.metrics())} from {self.key()}"

    def key(self) -> str:
        """Identity of this evaluator's results (cache key part); override when options matter."""
        return type(self).__name__

    def table(self) -> pd.DataFrame | None:
        """All known results, indexed by canonical arch string, for tabular evaluators.

        Used to validate configs (e.g. constraints no architecture meets) and by benchmarks to
        score a search afterwards. Strategies never see it.
        """
        return None

    def provenance(self) -> dict[str, dict[str, str]]:
        """The data files this evaluator's results depend on.

        Returns ``{label: {"path": absolute path, "sha256": hex digest of the content}}``, the
        label readable in an error message (``"table my.csv"``). The study stores it and refuses a
        resume whose data changed (path or content), naming what changed. Default: no files.
        """
        return {}

    def notes(self) -> list[str]:
        """Warnings about this evaluator's data worth showing to the user, one line each.

        E.g. rows of a table that were excluded and why. The CLI prints them and the report lists
        them. Default: none.
        """
        return []
