"""What a gradient-based search leaves behind: the derived architectures, the architecture-weight
trajectory per epoch, and the hardware cost model it used, saved as readable JSON.

One :class:`GradientResult` holds one :class:`SearchRun` per latency weight of a sweep (one run
without a sweep). The study asks the runs' argmax architectures first (in sweep order), then their
top-k alternatives, so a budget smaller than the list still scores every run's own choice.

Example:
    >>> run = SearchRun(label="latency_weight=0", archs=["a", "b"], slots=["s0"],
    ...                 choices=[["x", "y"]], trajectory=[[[0.5, 0.5]], [[0.2, 0.8]]])
    >>> GradientResult(method="darts", options={}, runs=[run]).ranked_archs()
    ['a', 'b']
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import DataError

RESULT_FORMAT = "hwnas-gradient-search"
RESULT_VERSION = 1
RESULT_FILE = "result.json"


@dataclass
class SearchRun:
    """One gradient search (one latency weight of a sweep).

    Attributes:
        label: what distinguishes the run, e.g. ``"latency_weight=0.1"``.
        archs: canonical strings of the derived architectures, best first: the argmax, then the
            top-k alternatives by joint probability.
        slots: one name per relaxed slot (e.g. ``"edge 0->1"``).
        choices: the choices of each slot, in the space's order.
        trajectory: per epoch (the initial weights first), per slot, the probability of each choice.
        expected_cost: per epoch, the expected hardware cost under the architecture distribution
            (empty without a cost model).
        metrics: figures of the run (final search accuracy, loss, wall time, ...).
        picks: per derived architecture, its choice index per slot (empty in results stored
            before they were kept; a measured repair into a target's band needs them).
    """

    label: str
    archs: list[str]
    slots: list[str]
    choices: list[list[str]]
    trajectory: list[list[list[float]]]
    expected_cost: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    picks: list[list[int]] = field(default_factory=list)


@dataclass
class GradientResult:
    """A finished gradient search: the method, its options, the cost model and the runs."""

    method: str
    options: dict[str, Any]
    runs: list[SearchRun]
    cost: dict[str, Any] | None = None
    wall_s: float = 0.0
    key: str = ""  # fingerprint of what the search depended on (method, options, data, seed)

    def ranked_archs(self) -> list[str]:
        """Every run's argmax first (in run order), then the alternatives, without repeats."""
        out: list[str] = []
        depth = max((len(r.archs) for r in self.runs), default=0)
        for i in range(depth):
            for run in self.runs:
                if i < len(run.archs) and run.archs[i] not in out:
                    out.append(run.archs[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format": RESULT_FORMAT, "version": RESULT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "result") -> GradientResult:
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise DataError(f"{source}: not a hwnas gradient-search result (format field)")
        if data.get("version") != RESULT_VERSION:
            raise DataError(
                f"{source}: result version {data.get('version')!r} is not {RESULT_VERSION}; "
                "delete the folder to search again"
            )
        try:
            runs = [SearchRun(**r) for r in data["runs"]]
            return cls(
                method=str(data["method"]),
                options=dict(data["options"]),
                runs=runs,
                cost=data.get("cost"),
                wall_s=float(data.get("wall_s", 0.0)),
                key=str(data.get("key", "")),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(
                f"{source}: damaged result ({exc}); delete it to search again"
            ) from None

    def save(self, folder: Path) -> Path:
        """Write ``folder/result.json`` atomically; returns its path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RESULT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: Path) -> GradientResult | None:
        """The result in ``folder``, or None when there is none yet."""
        path = folder / RESULT_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable ({exc}); delete it to search again") from None
        return cls.from_dict(data, str(path))
