"""TinyNAS's first stage (hwnas.hardware.tinynas) and ``hwnas hw tinynas``: the grid's figures,
the chosen cell, monotonicity in the limits, the CSV, and the error lines."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.errors import ConfigError
from hwnas.hardware.mcu import mcu_memory
from hwnas.hardware.tinynas import GridCell, TinyNASResult, optimize_space
from hwnas.spaces.mbv3 import MBV3Space, plan_params_macs

GRID = {"preset": "small", "widths": [0.5, 1.0], "resolutions": [24, 32], "samples": 40}


def _grid(
    sram_kb: float,
    flash_kb: float,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> TinyNASResult:
    """The 2 x 2 grid of GRID on the small preset."""
    return optimize_space(
        sram_kb=sram_kb,
        flash_kb=flash_kb,
        preset="small",
        widths=[0.5, 1.0],
        resolutions=[24, 32],
        samples=40,
        seed=seed,
        progress=progress,
    )


@pytest.fixture(scope="module")
def result() -> TinyNASResult:
    return _grid(40, 500, seed=7)


def test_the_grid_is_computed_cell_by_cell(result: TinyNASResult) -> None:
    assert [(c.width, c.resolution) for c in result.cells] == [
        (0.5, 24),
        (0.5, 32),
        (1.0, 24),
        (1.0, 32),
    ]
    # cell i draws its samples from the i-th child of SeedSequence(seed), as documented
    seeds = np.random.SeedSequence(7).spawn(4)
    for cell, seed in zip(result.cells, seeds):
        space = MBV3Space(preset="small", widths=[cell.width], resolutions=[cell.resolution])
        rng = np.random.default_rng(seed)
        plans = [space.plan(space.sample(rng)) for _ in range(40)]
        mems = [mcu_memory(p) for p in plans]
        fits = [
            plan_params_macs(p)[1] / 1e6
            for p, m in zip(plans, mems)
            if m.peak_sram_kb <= 40 and m.flash_kb <= 500
        ]
        assert (cell.samples, cell.feasible, cell.share) == (40, len(fits), len(fits) / 40)
        assert cell.min_peak_sram_kb == min(m.peak_sram_kb for m in mems)
        assert cell.min_flash_kb == min(m.flash_kb for m in mems)
        if fits:
            assert cell.mean_flops_m == pytest.approx(np.mean(fits))
            assert cell.median_flops_m == pytest.approx(np.median(fits))
            assert cell.p90_flops_m == pytest.approx(np.percentile(fits, 90))
        else:
            assert math.isnan(cell.mean_flops_m) and math.isnan(cell.p90_flops_m)
    assert 0 < sum(c.feasible for c in result.cells) < 160  # some cells fit, not all networks


def test_the_chosen_cell_has_the_highest_mean_flops(result: TinyNASResult) -> None:
    fitting = [c for c in result.cells if c.feasible]
    assert len(fitting) >= 2
    assert result.chosen is not None
    assert result.chosen.mean_flops_m == max(c.mean_flops_m for c in fitting)
    rows = result.rows()
    assert [r["chosen"] for r in rows].count(True) == 1
    chosen_row = next(r for r in rows if r["chosen"])
    assert (chosen_row["width"], chosen_row["resolution"]) == (
        result.chosen.width,
        result.chosen.resolution,
    )


def test_min_share_leaves_thin_cells_out_of_the_choice(result: TinyNASResult) -> None:
    assert result.chosen is not None and result.min_share == 0.0
    floor = result.chosen.share + 1e-9  # the argmax's own share is now too thin
    picky = optimize_space(sram_kb=40, flash_kb=500, seed=7, min_share=floor, **GRID)  # type: ignore[arg-type]
    assert picky.cells == result.cells  # the same samples; only the choice changes
    allowed = [c for c in result.cells if c.feasible and c.share >= floor]
    if allowed:
        assert picky.chosen == max(allowed, key=lambda c: c.mean_flops_m)
    else:
        assert picky.chosen is None


def test_tighter_limits_never_raise_the_share() -> None:
    results = [
        _grid(sram, flash, seed=1)
        for sram, flash in [(80, 900), (60, 900), (40, 900), (40, 500), (30, 300), (20, 300)]
    ]
    for looser, tighter in itertools.pairwise(results):
        for a, b in zip(looser.cells, tighter.cells):
            assert b.feasible <= a.feasible and b.share <= a.share
    assert results[0].cells[0].share > results[-1].cells[0].share  # the limits do bite


def test_nothing_fits_gives_no_chosen_cell() -> None:
    out = _grid(1, 1)
    assert out.chosen is None and all(c.feasible == 0 for c in out.cells)
    assert all(isinstance(c, GridCell) and c.min_peak_sram_kb > 1 for c in out.cells)


def test_seed_makes_it_reproducible_and_progress_is_reported() -> None:
    calls: list[tuple[int, int]] = []
    a = _grid(40, 500, seed=3, progress=lambda *p: calls.append(p))
    b = _grid(40, 500, seed=3)
    assert a.rows() == b.rows()
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sram_kb": -1}, r"tinynas: sram_kb must be a number > 0 \(kB"),
        ({"flash_kb": float("inf")}, "tinynas: flash_kb must be a number > 0"),
        ({"preset": "smal"}, "tinynas: unknown preset 'smal'; did you mean 'small'"),
        ({"widths": []}, "tinynas: widths must be a non-empty list"),
        ({"widths": [0.5, 0.5]}, "tinynas: widths must not repeat a value"),
        ({"widths": [0]}, "tinynas: a width multiplier must be a number > 0, got 0"),
        ({"resolutions": [32.5]}, "tinynas: a resolution must be a whole number >= 1"),
        ({"samples": 0}, "tinynas: samples must be a whole number >= 1, got 0"),
        ({"seed": -2}, "tinynas: seed must be a whole number >= 0, got -2"),
        ({"min_share": 1.5}, r"tinynas: min_share must be a number in 0\.\.1, got 1\.5"),
    ],
)
def test_bad_options_fail_clearly(options: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"sram_kb": 64, "flash_kb": 512, **GRID, **options}
    with pytest.raises(ConfigError, match=message):
        optimize_space(**kwargs)  # type: ignore[arg-type]


# -- the CLI ------------------------------------------------------------------------------------
ARGV = ["hw", "tinynas", "--space", "mbv3", "--preset", "small", "--widths", "0.5,1.0"]
ARGV += ["--resolutions", "24,32", "--samples", "40", "--seed", "7"]


def test_cli_prints_the_chosen_cell_and_writes_the_csv(
    result: TinyNASResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "grid.csv"
    rc = main([*ARGV, "--sram-kb", "40", "--flash-kb", "500", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    best = result.chosen
    assert best is not None
    assert f"chosen: w={best.width!r} r={best.resolution} (mean {best.mean_flops_m:.1f}" in printed
    assert f"widths: [{best.width!r}] and resolutions: [{best.resolution}]" in printed
    thin = f"note: only {best.feasible} of its 40 samples fit, so its mean is uncertain"
    assert (thin in printed) == (best.feasible < 10)
    assert f"wrote {out}" in printed
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        *("width", "resolution", "samples", "feasible", "share", "mean_flops_m"),
        *("median_flops_m", "p90_flops_m", "min_peak_sram_kb", "min_flash_kb", "chosen"),
    ]
    assert [(float(r["width"]), int(r["resolution"])) for r in rows] == [
        (c.width, c.resolution) for c in result.cells
    ]
    assert [int(r["feasible"]) for r in rows] == [c.feasible for c in result.cells]
    assert [r["chosen"] for r in rows].count("True") == 1
    chosen = next(r for r in rows if r["chosen"] == "True")
    assert (float(chosen["width"]), int(chosen["resolution"])) == (best.width, best.resolution)


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--sram-kb", "-5", "--flash-kb", "500"],
            ("--sram-kb must be a number > 0", "--sram-kb 320 --flash-kb 1024"),
        ),
        (["--sram-kb", "40", "--flash-kb", "0"], ("--flash-kb must be a number > 0",)),
        (
            ["--sram-kb", "1", "--flash-kb", "500"],
            ("no network of the grid fits --sram-kb 1", "raise the limits or add smaller"),
        ),
        (
            ["--sram-kb", "40", "--flash-kb", "500", "--widths", "0.5,half"],
            ("--widths: 'half' is not a number", "like 0.3,0.4,0.5"),
        ),
        (
            ["--sram-kb", "40", "--flash-kb", "500", "--resolutions", "24,3x"],
            ("--resolutions: '3x' is not a number", "whole numbers like 96,112,128"),
        ),
        (["--sram-kb", "40", "--flash-kb", "500", "--samples", "0"], ("--samples must be",)),
        (
            ["--sram-kb", "30", "--flash-kb", "500", "--min-share", "1"],
            ("no cell of the grid has --min-share 1 of its networks", "lower --min-share"),
        ),
        (["--sram-kb", "40", "--flash-kb", "500", "--min-share", "-0.1"], ("--min-share must",)),
    ],
)
def test_cli_bad_input_is_one_error_line(
    capsys: pytest.CaptureFixture[str], extra: list[str], expected: tuple[str, ...]
) -> None:
    line = _error_line(capsys, [*ARGV, *extra])
    for text in expected:
        assert text in line, line


@pytest.mark.parametrize(
    ("space", "expected"),
    [("nb201", "has no width multiplier and resolution"), ("mbv2", "is not a space")],
)
def test_cli_other_spaces_are_refused(
    capsys: pytest.CaptureFixture[str], space: str, expected: str
) -> None:
    argv = ["hw", "tinynas", "--space", space, "--sram-kb", "40", "--flash-kb", "500"]
    line = _error_line(capsys, argv)
    assert expected in line and "tinynas runs on --space mbv3" in line


def test_cli_out_must_be_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _error_line(
        capsys, [*ARGV, "--sram-kb", "40", "--flash-kb", "500", "--out", str(tmp_path)]
    )
    assert f"--out {tmp_path} is a folder; give a file" in line
