"""The generic ``table`` evaluator: any CSV keyed by canonical architecture strings.

Every numeric column other than the key becomes a metric named by its header. This is how a user
brings numbers measured on their own devices, and how a tabular task is defined without code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hwnas.errors import ConfigError, DataError, HwnasError
from hwnas.evaluation.base import Evaluator, EvaluatorContext, MissingArchError
from hwnas.registry import closest

if TYPE_CHECKING:
    from hwnas.spaces.base import Arch


class TableEvaluator(Evaluator):
    """Look metrics up in a CSV.

    Args:
        path: the CSV; a relative path is resolved against the config file's folder.
        key: the column holding canonical architecture strings (default ``arch``).
        metrics: keep only these columns (default: every numeric column).
        context: the space and folders (given by the study builder).

    Example (config)::

        evaluators:
          - table: {path: my_device.csv, key: arch}
    """

    expensive = True
    cacheable = False

    def __init__(
        self,
        *,
        path: str,
        key: str = "arch",
        metrics: list[str] | None = None,
        context: EvaluatorContext,
    ) -> None:
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = context.base_dir / p
        if not p.is_file():
            raise DataError(
                f"table: file {p} does not exist; fix 'path' (relative paths are "
                "resolved against the config file's folder)"
            )
        try:
            df = pd.read_csv(p)
        except Exception as exc:
            raise DataError(f"table: cannot parse {p} as CSV: {exc}") from None
        if key not in df.columns:
            raise DataError(
                f"table: {p} has no key column {key!r}; "
                f"{closest(key, [str(c) for c in df.columns])}"
            )
        self.space = context.space
        self.path = p
        keys = []
        for row, raw in enumerate(df[key].tolist(), start=2):
            try:
                keys.append(context.space.canonical(str(raw)))
            except HwnasError as exc:
                raise DataError(f"table: {p} line {row}: {exc}") from None
        dup = pd.Index(keys)[pd.Index(keys).duplicated()]
        if len(dup):
            raise DataError(f"table: {p} lists {dup[0]!r} more than once; keep one row per arch")
        numeric = [str(c) for c in df.columns if c != key and pd.api.types.is_numeric_dtype(df[c])]
        if metrics is not None:
            for m in metrics:
                if m not in numeric:
                    raise ConfigError(
                        f"table: {p} has no numeric column {m!r}; {closest(m, numeric)}"
                    )
            numeric = list(metrics)
        if not numeric:
            raise DataError(f"table: {p} has no numeric column besides the key {key!r}")
        self._frame = pd.DataFrame(
            {c: df[c].to_numpy(dtype=np.float64) for c in numeric},
            index=pd.Index(keys, name="arch"),
        )
        self._index = {k: i for i, k in enumerate(keys)}
        self._values = self._frame.to_numpy()
        self._names = tuple(numeric)
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        self._key = f"table:{p.name}:{digest}"

    def metrics(self) -> tuple[str, ...]:
        return self._names

    def evaluate(self, arch: Arch) -> dict[str, float]:
        s = self.space.to_string(arch)
        try:
            row = self._values[self._index[s]]
        except KeyError:
            raise MissingArchError(f"table: {s!r} is not in {self.path.name}") from None
        return {n: float(v) for n, v in zip(self._names, row) if not np.isnan(v)}

    def key(self) -> str:
        return self._key

    def table(self) -> pd.DataFrame:
        return self._frame
