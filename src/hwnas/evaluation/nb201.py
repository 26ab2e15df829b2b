"""The built-in NAS-Bench-201 benchmark evaluator: accuracy and real device latency by lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwnas.errors import ConfigError
from hwnas.evaluation.base import Evaluator, EvaluatorContext, MissingArchError
from hwnas.evaluation.data import ACCURACY_COLUMNS, NB201_FILES, find_data_dir, load_nb201_tables
from hwnas.registry import closest

if TYPE_CHECKING:
    import pandas as pd

    from hwnas.spaces.base import Arch


class NB201Benchmark(Evaluator):
    """Tabular NB201: ``accuracy`` (test, 200 epochs), ``valid_accuracy`` (cifar10) and
    ``latency_ms@<device>`` for every device column (HW-NAS-Bench raspi4/pixel3/eyeriss/fpga, GPUs,
    Xeon CPUs, pixel2; measured with CIFAR-10-sized inputs).

    Args:
        dataset: cifar10, cifar100 or ImageNet16-120.
        devices: restrict the latency metrics to these devices (default: all).
        context: the space and folders (given by the study builder).

    Example (config)::

        evaluators:
          - nb201: {dataset: cifar10}
    """

    expensive = True
    cacheable = False  # a lookup is cheaper than the cache

    def __init__(
        self,
        *,
        dataset: str = "cifar10",
        devices: list[str] | None = None,
        context: EvaluatorContext,
    ) -> None:
        if context.space.name != "nb201":
            raise ConfigError(
                f"evaluator 'nb201' needs space 'nb201', but the space is {context.space.name!r}"
            )
        if dataset not in ACCURACY_COLUMNS:
            raise ConfigError(
                f"nb201: unknown dataset {dataset!r}; {closest(dataset, list(ACCURACY_COLUMNS))}"
            )
        folder = find_data_dir(list(NB201_FILES.values()), context.data_dir)
        self.tables = load_nb201_tables(folder.resolve())
        self.dataset = dataset
        self.space = context.space
        if devices is not None:
            for d in devices:
                if d not in self.tables.latency:
                    raise ConfigError(
                        f"nb201: unknown device {d!r}; {closest(d, self.tables.devices)}"
                    )
        self.devices = list(devices) if devices is not None else self.tables.devices
        self._columns: dict[str, np.ndarray] = {"accuracy": self.tables.accuracy[dataset]}
        if dataset in self.tables.valid_accuracy:
            self._columns["valid_accuracy"] = self.tables.valid_accuracy[dataset]
        for d in self.devices:
            self._columns[f"latency_ms@{d}"] = self.tables.latency[d]

    def metrics(self) -> tuple[str, ...]:
        return tuple(self._columns)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        return self.lookup(self.space.to_string(arch))

    def lookup(self, arch_str: str) -> dict[str, float]:
        """Metrics of a canonical NB201 string."""
        try:
            i = self.tables.index[arch_str]
        except KeyError:
            raise MissingArchError(f"nb201: {arch_str!r} is not in the NB201 tables") from None
        return {name: float(col[i]) for name, col in self._columns.items()}

    def key(self) -> str:
        return f"nb201:{self.dataset}"

    def provenance(self) -> dict[str, dict[str, str]]:
        """The CSVs behind this evaluator's metrics (hashed once, when they were parsed)."""
        used = {"test": "test accuracy"}
        if "valid_accuracy" in self._columns:
            used["valid"] = "validation accuracy"
        if self.devices:
            used["latency"] = "latency"
        out = {}
        for k, what in used.items():
            path = self.tables.folder / NB201_FILES[k]
            out[f"nb201 {what} ({path.name})"] = {
                "path": str(path),
                "sha256": self.tables.sha256[k],
            }
        return out

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self._columns, index=pd.Index(self.tables.arch, name="arch"))
