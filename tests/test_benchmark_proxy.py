"""The cluttered-digits proxy (benchmarks/cluttered_mnist.py) and the uniform NB201 cells that
benchmarks/proxy_cells.py trains on it."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from benchmark_scripts import imported


@pytest.fixture(scope="module")
def bench() -> Iterator[SimpleNamespace]:
    with imported("cluttered_mnist", "proxy_cells") as (cm, cells):
        yield SimpleNamespace(cm=cm, cells=cells)


def test_shrink_averages_areas(bench: SimpleNamespace) -> None:
    x = np.zeros((2, 28, 28), dtype=np.float32)
    x[0] = 1.0
    x[1, :14, :14] = 1.0  # the top-left quarter
    out = bench.cm.shrink(x, 14)
    assert out.shape == (2, 14, 14)
    assert np.allclose(out[0], 1.0)
    assert np.allclose(out[1, :7, :7], 1.0) and np.allclose(out[1, 7:, :], 0.0)


def test_clutter_places_each_digit_whole_and_is_deterministic(bench: SimpleNamespace) -> None:
    rng = np.random.default_rng(0)
    digits = rng.random((5, 6, 6)).astype(np.float32) + 0.5
    plain = bench.cm.clutter(digits, 16, 0, 3, np.random.default_rng(1))
    assert plain.shape == (5, 16, 16)
    # No clutter: the canvas holds the digit and zeros, wherever it was put.
    assert np.allclose(plain.sum(axis=(1, 2)), digits.sum(axis=(1, 2)))
    a = bench.cm.clutter(digits, 16, 4, 3, np.random.default_rng(1))
    b = bench.cm.clutter(digits, 16, 4, 3, np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert np.all(a.sum(axis=(1, 2)) >= digits.sum(axis=(1, 2)) - 1e-4)


def test_proxy_cells_builds_uniform_cells(bench: SimpleNamespace) -> None:
    from hwnas.spaces import NB201Space

    for op in bench.cells.OPS:
        arch = NB201Space().from_string(bench.cells.uniform_cell(op))
        assert arch["ops"] == [op] * 6
