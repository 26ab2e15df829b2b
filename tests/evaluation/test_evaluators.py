from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas import ConfigError, DataError, create_space
from hwnas.evaluation import EvaluatorContext, MissingArchError, create_evaluator
from hwnas.evaluation.data import cache_dir, load_nb201_tables

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture()
def nb201():  # type: ignore[no-untyped-def]
    return create_space("nb201")


def test_nb201_metrics_match_the_tables(nb201, synthetic_nb201_dir, synthetic_frame) -> None:  # type: ignore[no-untyped-def]
    ev = create_evaluator(
        "nb201", EvaluatorContext(space=nb201, data_dir=synthetic_nb201_dir), dataset="cifar10"
    )
    assert ev.metrics() == (
        "accuracy",
        "valid_accuracy",
        "latency_ms@raspi4",
        "latency_ms@pixel3",
        "latency_ms@eyeriss",
    )
    row = synthetic_frame.iloc[1234]
    got = ev.evaluate(nb201.from_string(row["arch"]))
    assert got["accuracy"] == pytest.approx(row["accuracy"])
    assert got["valid_accuracy"] == pytest.approx(row["accuracy"] - 1)
    assert got["latency_ms@pixel3"] == pytest.approx(row["latency_ms@pixel3"])
    assert ev.table().shape == (15625, 5)


def test_nb201_other_datasets_and_devices(nb201, synthetic_nb201_dir, synthetic_frame) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, data_dir=synthetic_nb201_dir)
    ev = create_evaluator("nb201", ctx, dataset="ImageNet16-120", devices=["eyeriss"])
    assert ev.metrics() == ("accuracy", "latency_ms@eyeriss")
    row = synthetic_frame.iloc[7]
    assert ev.lookup(row["arch"])["accuracy"] == pytest.approx(row["accuracy"] - 40)
    with pytest.raises(ConfigError, match=r"unknown dataset 'cifar-100'; did you mean 'cifar100'"):
        create_evaluator("nb201", ctx, dataset="cifar-100")
    with pytest.raises(ConfigError, match=r"unknown device 'raspi3'; did you mean 'raspi4'"):
        create_evaluator("nb201", ctx, devices=["raspi3"])
    with pytest.raises(ConfigError, match="needs space 'nb201'"):
        create_evaluator(
            "nb201", EvaluatorContext(space=create_space("fbnet"), data_dir=synthetic_nb201_dir)
        )


def test_nb201_missing_folder_says_where_it_looked(nb201, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"tried data_dir in the config = .*empty"):
        create_evaluator("nb201", EvaluatorContext(space=nb201, data_dir=tmp_path / "empty"))


def test_table_cache_is_written_and_reused(synthetic_nb201_dir) -> None:  # type: ignore[no-untyped-def]
    load_nb201_tables.cache_clear()
    first = load_nb201_tables(synthetic_nb201_dir)
    caches = list(cache_dir().glob("nb201-*.npz"))
    assert caches
    load_nb201_tables.cache_clear()
    second = load_nb201_tables(synthetic_nb201_dir)
    assert np.array_equal(first.accuracy["cifar10"], second.accuracy["cifar10"])
    assert list(first.arch) == list(second.arch)
    for c in caches:  # a damaged cache is rebuilt, never trusted
        c.write_bytes(b"garbage")
    load_nb201_tables.cache_clear()
    third = load_nb201_tables(synthetic_nb201_dir)
    assert np.array_equal(first.latency["raspi4"], third.latency["raspi4"])
    load_nb201_tables.cache_clear()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
def test_nb201_real_tables_hold_published_values(nb201) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, data_dir=SHARED)
    ev = create_evaluator("nb201", ctx, dataset="cifar10")
    best = ev.tables.arch[6111]
    assert ev.lookup(best)["accuracy"] == pytest.approx(94.373, abs=1e-3)
    assert ev.lookup(best)["valid_accuracy"] == pytest.approx(91.607, abs=1e-3)
    first = ev.lookup(ev.tables.arch[0])
    assert first["latency_ms@raspi4"] == pytest.approx(10.481976820010459)
    assert first["latency_ms@pixel3"] == pytest.approx(3.60585)
    assert len([m for m in ev.metrics() if m.startswith("latency_ms@")]) == 20
    c100 = create_evaluator("nb201", ctx, dataset="cifar100")
    assert "valid_accuracy" not in c100.metrics()
    assert c100.table()["accuracy"].max() == pytest.approx(73.513, abs=1e-3)


def test_table_evaluator(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    b = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {"arch": [a, b], "acc": [10.0, 50.0], "lat": [1.0, np.nan], "device": ["x", "y"]}
    ).to_csv(path, index=False)
    ev = create_evaluator("table", EvaluatorContext(space=nb201, base_dir=tmp_path), path="t.csv")
    assert ev.metrics() == ("acc", "lat")
    assert ev.evaluate(nb201.from_string(a)) == {"acc": 10.0, "lat": 1.0}
    # A row with an empty metric cell is excluded and reported, never silently half-used.
    with pytest.raises(MissingArchError, match=r"is excluded from t\.csv \(line 3: lat is empty\)"):
        ev.evaluate(nb201.from_string(b))
    assert ev.notes() == ["table t.csv: 1 row excluded (line 3: lat is empty)"]
    with pytest.raises(MissingArchError, match=r"is not in t\.csv"):
        ev.evaluate(nb201.from_string(a.replace("none~2", "skip_connect~2")))
    only = create_evaluator(
        "table", EvaluatorContext(space=nb201, base_dir=tmp_path), path=str(path), metrics=["acc"]
    )
    assert only.metrics() == ("acc",)
    assert only.evaluate(nb201.from_string(b)) == {"acc": 50.0}  # 'lat' is not asked for
    assert only.notes() == []


def test_table_evaluator_rejects_bad_files(nb201, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = EvaluatorContext(space=nb201, base_dir=tmp_path)
    a = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (tmp_path / "dup.csv").write_text(f"arch,acc\n{a},1\n{a},2\n")
    with pytest.raises(DataError, match="more than once"):
        create_evaluator("table", ctx, path="dup.csv")
    (tmp_path / "bad.csv").write_text(f"arch,acc\n{a},1\n|conv~0|,2\n")
    with pytest.raises(DataError, match=r"bad.csv line 3: nb201:"):
        create_evaluator("table", ctx, path="bad.csv")
    (tmp_path / "nokey.csv").write_text(f"arc,acc\n{a},1\n")
    with pytest.raises(DataError, match=r"no key column 'arch'; did you mean 'arc'"):
        create_evaluator("table", ctx, path="nokey.csv")
    (tmp_path / "text.csv").write_text(f"arch,name\n{a},x\n")
    with pytest.raises(DataError, match="no numeric column"):
        create_evaluator("table", ctx, path="text.csv")
    with pytest.raises(DataError, match="does not exist"):
        create_evaluator("table", ctx, path="missing.csv")
