"""Data is checked before it is trusted: NB201 tables, ``HWNAS_DATA``, user table CSVs,
provenance (path + SHA-256 of every data file) and notes about excluded rows."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from hwnas import ConfigError, DataError, create_space
from hwnas.evaluation import Evaluator, EvaluatorContext, MissingArchError, create_evaluator
from hwnas.evaluation.data import (
    NB201_FILES,
    cache_dir,
    data_dir_candidates,
    find_data_dir,
    load_nb201_tables,
)
from hwnas.hardware.predictor import LatencyPredictor
from hwnas.spaces import NB201Space

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TEST, VALID, LAT = (NB201_FILES[k] for k in ("test", "valid", "latency"))
FIX = "restore the file from its source (see the README.md beside it)"
ARCHS = [NB201Space().to_string(a) for a, _ in zip(NB201Space().enumerate(), range(20))]


@pytest.fixture()
def nb201():  # type: ignore[no-untyped-def]
    return create_space("nb201")


@pytest.fixture()
def data(tmp_path: Path, synthetic_nb201_dir: Path) -> Path:
    """A fresh copy of the synthetic NB201 folder (load_nb201_tables is cached by folder)."""
    return Path(shutil.copytree(synthetic_nb201_dir, tmp_path / "data"))


def _edit(path: Path, line: int, column: str | None = None, value: str = "") -> None:
    """Set one cell (or, with ``column=None``, the whole ``line``) of a CSV without quoting."""
    lines = path.read_text().split("\n")
    if column is None:
        lines[line - 1] = value
    else:
        fields = lines[line - 1].split(",")
        fields[lines[0].split(",").index(column)] = value
        lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines))


def _one_line_error(folder: Path) -> str:
    with pytest.raises(DataError) as info:
        load_nb201_tables(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- NB201 benchmark tables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "line", "column", "value", "found"),
    [
        (TEST, 7, "CIFAR10TestAccuracy200Epochs", "nan", "found nan"),
        (TEST, 15626, "ImageNetTestAccuracy200Epochs", "", "found an empty cell"),
        (VALID, 9, "valid-accuracy", "inf", "found inf"),
        (LAT, 4, "pixel3", "fast", "found 'fast'"),
    ],
)
def test_nb201_bad_metric_cell_names_file_line_and_column(  # type: ignore[no-untyped-def]
    data, monkeypatch, tmp_path, rel, line, column, value, found
) -> None:
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    _edit(data / rel, line, column, value)
    message = _one_line_error(data)
    assert message == (
        f"{data / rel} line {line}, column {column!r}: expected a finite number, {found}; {FIX}"
    )
    assert not list((tmp_path / "cache").glob("*.npz"))  # invalid data is never cached


def test_nb201_unused_columns_are_not_checked(data) -> None:  # type: ignore[no-untyped-def]
    _edit(data / TEST, 5, "UniqueString", "")  # empty, but it becomes no metric
    tables = load_nb201_tables(data)
    assert tables.accuracy["cifar10"].shape == (15625,)


def test_nb201_short_and_long_rows(data) -> None:  # type: ignore[no-untyped-def]
    text = (data / LAT).read_text()
    (data / LAT).write_text(text[: text.rindex(",") - 3])  # the last line is cut mid-row
    assert _one_line_error(data) == (
        f"{data / LAT} line 15626, column 'eyeriss': the row has 4 of 5 fields, the file may be "
        f"truncated; {FIX}"
    )
    _edit(data / TEST, 3, "UniqueString", "x,y")
    assert _one_line_error(data) == (
        f"{data / TEST} line 3: the row has 6 fields but the header has 5; {FIX}"
    )


def test_nb201_missing_rows_mean_a_truncated_file(data) -> None:  # type: ignore[no-untyped-def]
    lines = (data / VALID).read_text().split("\n")
    (data / VALID).write_text("\n".join(lines[:15001]) + "\n")
    assert _one_line_error(data) == (
        f"{data / VALID} has 15,000 data rows (lines 2-15001) but NB201 has 15,625 cells; "
        f"the file is truncated; {FIX}"
    )


def test_nb201_arch_strings_must_agree(data) -> None:  # type: ignore[no-untyped-def]
    other = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    original = (data / TEST).read_text().split("\n")[11].split(",")[3]
    assert original != other
    _edit(data / LAT, 12, "arch_str", other)
    message = _one_line_error(data)
    assert message.startswith(f"{data / LAT} line 12, column 'arch_str': {other!r} differs from ")
    assert f"nats_bench.csv line 12 ({original!r}) for NB201 index 10; {FIX}" in message


def test_nb201_index_column_must_be_a_permutation(data) -> None:  # type: ignore[no-untyped-def]
    _edit(data / VALID, 6, "index", "2")
    assert _one_line_error(data) == (
        f"{data / VALID} line 6, column 'index': index 2 is also on line 4; {FIX}"
    )


def test_nb201_test_table_arch_strings_are_checked(data) -> None:  # type: ignore[no-untyped-def]
    _edit(data / TEST, 20, "ArchitectureString", "|conv~0|")
    assert _one_line_error(data) == (
        f"{data / TEST} line 20, column 'ArchitectureString': '|conv~0|' is not an NB201 cell; "
        f"{FIX}"
    )


def test_nb201_provenance_hashes_and_survives_the_cache(nb201, data) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, data_dir=data)
    prov = create_evaluator("nb201", ctx, dataset="cifar10").provenance()
    root = data.resolve()
    assert prov == {
        f"nb201 {what} ({rel.name})": {
            "path": str(root / rel),
            "sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest(),
        }
        for what, rel in (("test accuracy", TEST), ("validation accuracy", VALID), ("latency", LAT))
    }
    load_nb201_tables.cache_clear()  # the next load reads the .npz written above
    assert create_evaluator("nb201", ctx, dataset="cifar10").provenance() == prov
    only = create_evaluator("nb201", ctx, dataset="cifar100", devices=[]).provenance()
    assert list(only) == ["nb201 test accuracy (nats_bench.csv)"]  # what its metrics depend on


def test_nb201_changed_file_is_reparsed_with_a_new_hash(nb201, data) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, data_dir=data)
    before = create_evaluator("nb201", ctx, dataset="cifar10")
    _edit(data / TEST, 2, "CIFAR10TestAccuracy200Epochs", "12.5")
    load_nb201_tables.cache_clear()
    after = create_evaluator("nb201", ctx, dataset="cifar10")
    label = "nb201 test accuracy (nats_bench.csv)"
    assert after.provenance()[label]["sha256"] != before.provenance()[label]["sha256"]
    assert (
        after.provenance()[label]["sha256"]
        == hashlib.sha256((data / TEST).read_bytes()).hexdigest()
    )
    assert after.tables.accuracy["cifar10"][0] == 12.5 != before.tables.accuracy["cifar10"][0]
    assert len(list(cache_dir().glob("nb201-*.npz"))) >= 2


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
def test_real_tables_pass_the_checks_with_the_readme_hashes(nb201) -> None:  # type: ignore[no-untyped-def]
    ev = create_evaluator("nb201", EvaluatorContext(space=nb201, data_dir=SHARED))
    prov = ev.provenance()
    assert prov["nb201 test accuracy (nats_bench.csv)"]["sha256"].startswith("cb5d777ec336")
    assert prov["nb201 validation accuracy (cifar10_avg.csv)"]["sha256"].startswith("1fc89edb42c8")
    assert prov["nb201 latency (nb201_latency_ms.csv)"]["sha256"].startswith("24fec9ac")


# --- HWNAS_DATA -----------------------------------------------------------------------------


def test_hwnas_data_missing_folder_is_an_error(nb201, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as info:
        create_evaluator("nb201", EvaluatorContext(space=nb201))
    assert str(info.value) == (
        f"HWNAS_DATA is set to {tmp_path / 'nowhere'}, which is not a folder; "
        "set HWNAS_DATA to the folder holding the NB201 tables, or unset it"
    )


def test_hwnas_data_without_tables_names_what_is_missing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / TEST).parent.mkdir(parents=True)
    (tmp_path / TEST).write_text("x\n")
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:  # no fallback to ../shared/data
        find_data_dir(list(NB201_FILES.values()))
    assert str(info.value) == (
        f"HWNAS_DATA is set to {tmp_path}, which lacks {VALID}, {LAT}; "
        "set HWNAS_DATA to the folder holding the NB201 tables, or unset it"
    )


def test_hwnas_data_valid_or_overridden_or_unset(
    tmp_path, monkeypatch, synthetic_nb201_dir
) -> None:  # type: ignore[no-untyped-def]
    required = list(NB201_FILES.values())
    monkeypatch.setenv("HWNAS_DATA", str(synthetic_nb201_dir))
    assert find_data_dir(required) == synthetic_nb201_dir
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "nowhere"))
    assert find_data_dir(required, synthetic_nb201_dir) == synthetic_nb201_dir  # config wins
    monkeypatch.setenv("HWNAS_DATA", "")  # empty: today's fallback order
    origins = [origin for origin, _ in data_dir_candidates()]
    assert origins[0] == "../shared/data beside the repository"
    monkeypatch.delenv("HWNAS_DATA")
    assert [origin for origin, _ in data_dir_candidates()] == origins


# --- user table CSVs -----------------------------------------------------------------------


def _table(tmp_path: Path, text: str, name: str = "my.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(n: int, fmt: str = "{a},{acc},{lat},ok") -> list[str]:
    return [fmt.format(a=ARCHS[i], acc=50.0 + i, lat=1.0 + i) for i in range(n)]


def test_table_bad_rows_are_excluded_and_reported(nb201, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    rows = ["arch,accuracy,latency_ms@pi,notes", *_rows(11)]
    rows[4] = f"{ARCHS[3]},n/a,4.0,ok"  # line 5
    rows[8] = f"{ARCHS[7]},57.0,inf,ok"  # line 9
    rows[11] = f"{ARCHS[10]},60.0"  # line 12, the last: cut off
    path = _table(tmp_path, "\n".join(rows))
    with caplog.at_level(logging.WARNING, logger="hwnas.evaluation.table"):
        ev = create_evaluator(
            "table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="my.csv"
        )
    summary = (
        "3 rows excluded (line 5: accuracy is 'n/a'; line 9: latency_ms@pi is inf; "
        "line 12: 2 of 4 fields, the file may be truncated)"
    )
    assert ev.notes() == [f"table my.csv: {summary}"]
    assert [r.getMessage() for r in caplog.records] == [f"table {path}: {summary}"]
    assert ev.metrics() == ("accuracy", "latency_ms@pi")  # 'notes' is text: not a metric
    assert list(ev.table().index) == [ARCHS[i] for i in (0, 1, 2, 4, 5, 6, 8, 9)]
    assert ev.evaluate(nb201.from_string(ARCHS[4])) == {"accuracy": 54.0, "latency_ms@pi": 5.0}
    with pytest.raises(MissingArchError) as info:
        ev.evaluate(nb201.from_string(ARCHS[3]))
    assert (
        str(info.value)
        == f"table: {ARCHS[3]!r} is excluded from my.csv (line 5: accuracy is 'n/a')"
    )
    with pytest.raises(
        MissingArchError, match=r"\(line 12: 2 of 4 fields, the file may be truncated\)"
    ):
        ev.evaluate(nb201.from_string(ARCHS[10]))


def test_table_summary_lists_the_first_few_and_counts_the_rest(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = ["arch,acc", *[f"{a},{'' if i % 2 else i}" for i, a in enumerate(ARCHS)]]
    _table(tmp_path, "\n".join(rows) + "\n")
    ev = create_evaluator("table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="my.csv")
    lines = "; ".join(f"line {n}: acc is empty" for n in (3, 5, 7, 9, 11))
    assert ev.notes() == [f"table my.csv: 10 rows excluded ({lines}; and 5 more)"]
    assert len(ev.table()) == 10


def test_table_valid_file_has_no_notes(nb201, synthetic_table) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, base_dir=synthetic_table.parent)
    ev = create_evaluator("table", ctx, path=synthetic_table.name)
    assert ev.notes() == []
    assert ev.table().shape == (15625, 4)
    row = pd.read_csv(synthetic_table).iloc[42]
    assert (
        ev.evaluate(nb201.from_string(row["arch"]))["latency_ms@pixel3"] == row["latency_ms@pixel3"]
    )


def test_table_text_column_asked_for_is_a_config_error(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _table(tmp_path, "\n".join(["arch,acc,lat,notes", *_rows(3, "{a},{acc},{lat},fine")]))
    ctx = EvaluatorContext(space=nb201, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        create_evaluator("table", ctx, path="my.csv", metrics=["acc", "notes"])
    assert str(info.value) == (
        f"table: {tmp_path / 'my.csv'} column 'notes' is not numeric (text in 3 of 3 cells "
        "(line 2: 'fine'), numbers in 0); fix the column or remove it from 'metrics'"
    )


def test_table_mostly_text_column_is_not_a_metric_and_noted(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = ["arch,acc,speed", *_rows(3, "{a},{acc},fast")]
    rows[2] = f"{ARCHS[1]},51.0,3"
    _table(tmp_path, "\n".join(rows))
    ev = create_evaluator("table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="my.csv")
    assert ev.metrics() == ("acc",)
    assert ev.notes() == [
        "table my.csv: column 'speed' is not a metric: text in 2 of 3 cells (line 2: 'fast'), "
        "numbers in 1"
    ]


def test_table_every_row_bad_is_a_data_error(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _table(tmp_path, f"arch,acc,lat\n{ARCHS[0]},1,inf\n{ARCHS[1]},2,nan\n{ARCHS[2]},,9\n")
    with pytest.raises(DataError) as info:
        create_evaluator("table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="my.csv")
    assert str(info.value) == (
        f"table: {path}: every row is excluded (line 2: lat is inf; line 3: lat is nan; "
        "line 4: acc is empty); fix the file or export it again as UTF-8 CSV"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "{p} is empty"),
        (b"arch,acc\n", "{p} has a header (line 1) but no rows; add one row per architecture"),
        (
            b"arch,acc\n" + ARCHS[0].encode() + b",\xff\n",
            "cannot parse {p} as CSV: line 2 is not UTF-8 text (byte 0xff)",
        ),
        (
            f"arch,acc\n{ARCHS[0]},1\n{ARCHS[1]},2,3\n".encode(),
            "{p} line 3 has 3 fields but the header has 2",
        ),
        (
            f"arch,acc\n{ARCHS[0]},1\n\n{ARCHS[0]},2\n".encode(),
            "{p} lists '" + ARCHS[0] + "' more than once (lines 2 and 4)",
        ),
        (f"arch,acc\n\n{ARCHS[0]},1\n|conv~0|,2\n".encode(), "{p} line 4: nb201:"),
    ],
    ids=["empty", "header-only", "not-utf8", "extra-field", "duplicate", "bad-arch"],
)
def test_table_malformed_files_are_one_line_data_errors(nb201, tmp_path, content, expected) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "my.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        create_evaluator("table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="my.csv")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("table: " + expected.format(p=path))


def test_table_provenance_follows_the_content(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _table(tmp_path, "\n".join(["arch,acc", *_rows(3, "{a},{acc}")]))
    ctx = EvaluatorContext(space=nb201, base_dir=tmp_path)
    first = create_evaluator("table", ctx, path="my.csv")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.provenance() == {"table my.csv": {"path": str(path.resolve()), "sha256": digest}}
    _table(tmp_path, "\n".join(["arch,acc", *_rows(3, "{a},{lat}")]))
    second = create_evaluator("table", ctx, path="my.csv")
    assert second.provenance()["table my.csv"]["sha256"] != digest
    assert second.key() != first.key()


# --- other evaluators ----------------------------------------------------------------------


def test_predicted_provenance_names_the_model_files(tmp_path, synthetic_frame) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic_frame.iloc[:60]
    p = LatencyPredictor("flops", device="raspi4")
    p.fit(create_space("nb201"), list(rows["arch"]), rows["latency_ms@raspi4"].to_numpy())
    folder = p.save(tmp_path / "raspi4-flops")
    ev = create_evaluator(
        "predicted", EvaluatorContext(space=create_space("nb201")), model=str(folder)
    )
    meta = folder / "predictor.json"
    assert ev.provenance() == {
        "predicted raspi4-flops/predictor.json": {
            "path": str(meta.resolve()),
            "sha256": hashlib.sha256(meta.read_bytes()).hexdigest(),
        }
    }


def test_evaluator_hooks_default_to_nothing(nb201) -> None:  # type: ignore[no-untyped-def]
    class Constant(Evaluator):
        def metrics(self) -> tuple[str, ...]:
            return ("x",)

        def evaluate(self, arch):  # type: ignore[no-untyped-def]
            return {"x": 1.0}

    assert Constant().provenance() == {}
    assert Constant().notes() == []
