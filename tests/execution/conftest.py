"""Fixtures of the executor tests."""

from __future__ import annotations

import pytest
from execution_support import make_study


@pytest.fixture(scope="session")
def first_archs() -> list[str]:
    """The first 40 architectures a random search with seed 0 asks for."""
    study = make_study()
    study.optimize(40)
    return [t.arch for t in sorted(study.trials, key=lambda t: t.number)]
