"""The scripts of ``benchmarks/`` imported for the tests of their helpers.

``with imported("nb201_gradient") as (bench,): ...`` puts ``benchmarks/`` first on ``sys.path``
(and sets ``env``) while the block runs, then puts both back.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextmanager
def imported(*names: str, env: dict[str, str] | None = None) -> Iterator[tuple[ModuleType, ...]]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        mp.syspath_prepend(str(BENCHMARKS))
        yield tuple(importlib.import_module(name) for name in names)
