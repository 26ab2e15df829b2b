"""The paired process-chain benchmark (benchmarks/process_chain.py): which passes it pairs, the
common shift of a pair, and the interval of the difference between the two kinds of pair."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy import stats

from benchmark_scripts import imported


@pytest.fixture(scope="module")
def chain() -> Iterator[ModuleType]:
    with imported("process_chain") as (process_chain,):
        yield process_chain


def test_a_common_shift_is_measured_and_divided_out(chain: ModuleType) -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    row = chain.pair_row("separate processes", 0, a, [v * 1.08 for v in a])
    assert row["shift"] == pytest.approx(np.log(1.08))
    # 8 % apart is outside +-5 % and inside +-10 % (symmetric difference 0.08 / 1.04).
    assert (row["within_5pct"], row["within_10pct"]) == (0.0, 1.0)
    assert row["within_5pct_unshifted"] == row["within_10pct_unshifted"] == 1.0
    assert row["spearman"] == pytest.approx(1.0)


def test_welch_interval_matches_scipy(chain: ModuleType) -> None:
    x, y = [0.91, 0.95, 0.88, 0.97, 0.93], [0.85, 0.93, 0.80, 0.96]
    diff, low, high = chain.welch(x, y)
    ci = stats.ttest_ind(y, x, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(np.mean(y) - np.mean(x))
    assert (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_passes_are_paired_across_and_within_processes(
    chain: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Process k's passes: every network at 1 + k / 10 ms, then the same again within a process;
    # so in-process pairs agree exactly and each separate-process pair is 10 % / (1 + ...) apart.
    def fake(space: str, strings: list[str], backend: str, timing: str) -> list[list[float]]:
        k = fake.calls  # type: ignore[attr-defined]
        fake.calls += 1  # type: ignore[attr-defined]
        ms = [(1 + k / 10) * (i + 1) for i in range(len(strings))]
        return [ms, list(ms)]

    fake.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(chain, "run_process", fake)
    out = tmp_path / "chain.md"
    argv = ["--spaces", "nb201", "--samples", "4", "--processes", "3", "--out", str(out)]
    assert chain.main(argv) == 0
    res = json.loads(out.with_suffix(".json").read_text())["nb201"]
    kinds = [(p["kind"], p["pair"]) for p in res["pairs"]]
    assert kinds == [
        ("in-process", 0),
        ("separate processes", 0),
        ("in-process", 1),
        ("separate processes", 1),
        ("in-process", 2),
    ]
    shifts = [p["shift"] for p in res["pairs"]]
    assert shifts == pytest.approx([0, np.log(1.1 / 1.0), 0, np.log(1.2 / 1.1), 0])
    assert "| in-process | 2 | 100.0% |" in out.read_text()


def test_too_short_a_chain_is_refused(chain: ModuleType, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        chain.main(["--processes", "2"])
    assert info.value.code == 2
    assert "--processes 2: need at least 3" in capsys.readouterr().err
