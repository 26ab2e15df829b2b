"""Bad input for the ``hwnas`` CLI: one table of cases, run in-process by
``tests/test_bad_input.py`` and through the installed CLI by ``benchmarks/bad_inputs.py``.

Every case prepares its files in a folder of its own (:class:`Workspace`) and returns the command
line to run (:class:`Run`). The contract checked for each (:func:`check`): exit code 2; exactly one
line on stderr, starting with ``error: `` and holding the case's expected words (the problem and
the fix); no traceback; a study stored before the run still holds every trial; a file the run must
refuse keeps its bytes; and an ``--out`` folder that did not exist before is not left behind.
Cases marked ``warning`` are the opposite kind: the run succeeds (exit 0) and prints a
``warning:`` line naming what was left out.

``fixed`` says what went wrong in a case before issue 9 part 6 fixed it (a traceback, a silently
accepted value, a study.db left behind, a misleading line).
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hwnas.storage import SQLiteStore

ACC, RASPI, PIXEL = "accuracy", "latency_ms@raspi4", "latency_ms@pixel3"
SEARCH_HELP = "see 'hwnas search --help'"


# -- shared fixtures -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Fixtures:
    """Files every case may read; made once per session."""

    root: Path
    small_table: Path  # 200 valid rows: arch, accuracy, latency_ms@raspi4 / pixel3 / eyeriss
    nb201_dir: Path  # a data folder laid out like ../shared/data, with synthetic NB201 tables
    template: Path  # a finished study: template/study.yaml and template/out (study.db, ...)


def write_nb201_dir(root: Path, frame: pd.DataFrame) -> Path:
    """The three NB201 CSVs of ``frame`` (columns index, arch, accuracy, latency_ms@<device>)."""
    (root / "nb201_nats_test_acc").mkdir(parents=True)
    pd.DataFrame(
        {
            "CIFAR10TestAccuracy200Epochs": frame["accuracy"],
            "CIFAR100TestAccuracy200Epochs": frame["accuracy"] - 20,
            "ImageNetTestAccuracy200Epochs": frame["accuracy"] - 40,
            "ArchitectureString": frame["arch"],
            "UniqueString": frame["arch"],
        }
    ).to_csv(root / "nb201_nats_test_acc" / "nats_bench.csv", index=False)
    (root / "nb201_cifar10valid_landscapes").mkdir()
    pd.DataFrame(
        {"index": frame["index"], "arch_str": frame["arch"], "valid-accuracy": frame["accuracy"]}
    ).to_csv(root / "nb201_cifar10valid_landscapes" / "cifar10_avg.csv", index=False)
    (root / "nb201_fbnet_latency_help").mkdir()
    lat = pd.DataFrame({"index": frame["index"], "arch_str": frame["arch"]})
    for col in frame.columns:
        if col.startswith("latency_ms@"):
            lat[col.split("@", 1)[1]] = frame[col]
    lat.to_csv(root / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv", index=False)
    return root


def build_fixtures(root: Path, frame: pd.DataFrame) -> Fixtures:
    """Write the shared files under ``root`` and run the template study (in this process)."""
    from hwnas.cli import main

    root.mkdir(parents=True, exist_ok=True)
    small = root / "small.csv"
    frame.drop(columns=["index"]).head(200).to_csv(small, index=False)
    nb201 = write_nb201_dir(root / "nb201-data", frame)
    template = root / "template"
    template.mkdir()
    config = nb201_config(nb201, strategy={"name": "random"}, budget={"evaluations": 6})
    cfg = write_config(template / "study.yaml", config)
    with quiet():
        rc = main(["search", str(cfg), "--out", str(template / "out"), "--quiet"])
    if rc != 0:
        raise RuntimeError(f"the template study failed with exit code {rc}")
    return Fixtures(root=root, small_table=small, nb201_dir=nb201, template=template)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


# -- configs -------------------------------------------------------------------------------------
def table_config(table: Path | str, **changes: Any) -> dict[str, Any]:
    """A valid table-evaluator config; ``changes`` replace (or, with None, drop) top-level keys."""
    config: dict[str, Any] = {
        "space": "nb201",
        "evaluators": [{"table": {"path": str(table)}}],
        "objectives": [
            {"metric": ACC, "direction": "maximize"},
            {"metric": RASPI, "direction": "minimize"},
        ],
        "constraints": [{"metric": PIXEL, "le": 10.0}],
        "budget": {"evaluations": 10},
        "seed": 0,
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def nb201_config(data_dir: Path | None, evaluator: Any = None, **changes: Any) -> dict[str, Any]:
    """A valid config with the NB201 benchmark evaluator (``data_dir`` None: not given)."""
    entry = {"nb201": {"dataset": "cifar10"} if evaluator is None else evaluator}
    extra: dict[str, Any] = {"data_dir": str(data_dir) if data_dir is not None else None}
    return table_config("unused.csv", evaluators=[entry], **{**extra, **changes})


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- one case's folder and command ---------------------------------------------------------------
@dataclass
class Run:
    """What a case runs, and what must hold afterwards besides the error line."""

    argv: list[str]
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset the variable
    stored: Path | None = None  # a study folder whose trials must all survive the run
    untouched: tuple[Path, ...] = ()  # files that must keep their bytes
    readonly: Path | None = None  # bind-mounted read-only for the run (subprocess runs only)
    holder: subprocess.Popen[str] | None = None  # holds the study; stopped after the run
    after: Callable[[], list[str]] | None = None  # more checks, returning what went wrong


@dataclass
class Workspace:
    """The folder a case writes its files into, and helpers to write them."""

    fx: Fixtures
    dir: Path
    values: dict[str, str] = field(default_factory=dict)  # for {placeholders} in expected words

    def __post_init__(self) -> None:
        self.values.setdefault("dir", str(self.dir))

    def config(self, config: dict[str, Any], name: str = "study.yaml") -> Path:
        return write_config(self.dir / name, config)

    def table(self, **changes: Any) -> Path:
        return self.config(table_config(self.fx.small_table, **changes))

    def nb201(self, evaluator: Any = None, **changes: Any) -> Path:
        return self.config(nb201_config(self.fx.nb201_dir, evaluator, **changes))

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def search(self, config: Path, *flags: str, out: Path | None = None) -> list[str]:
        return ["search", str(config), "--out", str(out or self.dir / "out"), "--quiet", *flags]

    def search_table(self, *flags: str, **changes: Any) -> Run:
        return Run(self.search(self.table(**changes), *flags))

    def search_nb201(self, evaluator: Any = None, **changes: Any) -> Run:
        return Run(self.search(self.nb201(evaluator, **changes)))

    def with_table(self, content: str | bytes, **options: Any) -> Run:
        """Search with a table evaluator reading ``content`` (written to ``t.csv``)."""
        path = self.file("t.csv", content)
        return Run(self.search(self.table(evaluators=[{"table": {"path": str(path), **options}}])))

    def stored(self) -> tuple[Path, Path]:
        """A copy of the template study: its config (unchanged) and its folder."""
        shutil.copytree(self.fx.template / "out", self.dir / "stored")
        return self.fx.template / "study.yaml", self.dir / "stored"

    def nb201_copy(self, edit: Callable[[Path], None]) -> Path:
        """A copy of the NB201 data folder, changed by ``edit``."""
        folder = Path(shutil.copytree(self.fx.nb201_dir, self.dir / "data"))
        edit(folder)
        return folder

    def hold(self, db: Path, script: str | None = None) -> subprocess.Popen[str]:
        """Another process holding ``db`` open for writing (as a running search does; with
        ``script=SQLITE_HOLD_SCRIPT``, as another program in an SQLite transaction does)."""
        proc = subprocess.Popen(
            [sys.executable, "-c", script or HOLD_SCRIPT, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError("the process that should hold the study did not start")
        self.values["pid"] = str(proc.pid)
        return proc


HOLD_SCRIPT = """
import sys
from hwnas.storage import SQLiteStore
store = SQLiteStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
store.close()
"""

SQLITE_HOLD_SCRIPT = """
import sqlite3
import sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("ready", flush=True)
sys.stdin.read()
con.execute("ROLLBACK")
"""


def stop_holder(proc: subprocess.Popen[str] | None) -> None:
    if proc is None:
        return
    with contextlib.suppress(OSError, ValueError):
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, what the error line must say."""

    id: str
    shown: str  # the command or config snippet, for the results table
    make: Callable[[Workspace], Run]
    expect: tuple[str, ...]  # words of the line (problem and fix); {dir}, {pid} are filled in
    warning: bool = False  # not an error: exit 0 and a warning line
    slow: bool = False  # takes seconds (it waits out a timeout)
    fixed: str = ""  # what went wrong here before issue 9 part 6 fixed it ("": nothing)


# -- checks --------------------------------------------------------------------------------------
@dataclass
class Before:
    trials: list[tuple[Any, ...]] | None
    files: dict[Path, bytes]
    out: Path | None
    out_existed: bool


def stored_trials(folder: Path) -> list[tuple[Any, ...]]:
    store = SQLiteStore(folder / "study.db", readonly=True)
    try:
        _, trials = store.load()
    finally:
        store.close()
    return [(t.number, t.arch, t.state, sorted(t.metrics.items())) for t in trials]


def out_folder(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("--out") + 1]) if "--out" in argv else None


def before(run: Run) -> Before:
    out = out_folder(run.argv)
    return Before(
        trials=stored_trials(run.stored) if run.stored is not None else None,
        files={p: p.read_bytes() for p in run.untouched},
        out=out,
        out_existed=out is not None and out.exists(),
    )


def check(case: Case, ws: Workspace, run: Run, was: Before, rc: int, err: str) -> list[str]:
    """What breaks the contract in one run (empty: the case passes)."""
    problems = []
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    words = [w.format(**ws.values) for w in case.expect]
    if case.warning:
        if rc != 0:
            problems.append(f"exit code {rc}, expected 0")
        shown = [line for line in lines if line.startswith("warning: ")]
        if len(shown) != 1 or len(lines) != 1:
            problems.append(f"expected one warning line, got {lines!r}")
        line = shown[0] if shown else ""
    else:
        if rc != 2:
            problems.append(f"exit code {rc}, expected 2")
        if len(lines) != 1:
            problems.append(f"expected one line on stderr, got {len(lines)}")
        line = lines[0] if lines else ""
        if not line.startswith("error: "):
            problems.append("the line does not start with 'error: '")
        if was.out is not None and not was.out_existed and was.out.exists():
            problems.append(f"{was.out} was left behind")
    problems += [f"{w!r} not in the line" for w in words if w not in line]
    if was.trials is not None:
        assert run.stored is not None
        if stored_trials(run.stored) != was.trials:
            problems.append("the stored trials changed")
    for path, data in was.files.items():
        if not path.exists() or path.read_bytes() != data:
            problems.append(f"{path} was changed")
    if run.after is not None:
        problems += run.after()
    return problems


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else " | ".join(lines)


# -- running the installed CLI -------------------------------------------------------------------
def cli_command(argv: list[str], readonly: Path | None = None) -> list[str]:
    """The installed ``hwnas`` console script (else ``python -m hwnas.cli``) with ``argv``;
    with ``readonly``, inside a private mount namespace where that folder is read-only."""
    beside = Path(sys.executable).with_name("hwnas")
    exe = str(beside) if beside.is_file() else shutil.which("hwnas")
    cmd = [exe, *argv] if exe else [sys.executable, "-m", "hwnas.cli", *argv]
    if readonly is None:
        return cmd
    mount = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    unshare = ["unshare", "--mount", "--propagation", "private"]
    return [*unshare, "sh", "-c", mount, "sh", str(readonly), *cmd]


def readonly_mounts_work() -> bool:
    """Whether this machine lets us bind-mount a folder read-only in a private namespace (we run
    as root, which ignores permission bits, so a read-only mount is the honest test)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount --bind / / && true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def run_subprocess(run: Run, env: dict[str, str]) -> tuple[int, str, str]:
    full = dict(env)
    for key, value in run.env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run(
        cli_command(run.argv, run.readonly),
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


# -- the cases -----------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    lines = path.read_text().split("\n")
    fields = lines[line - 1].split(",")
    fields[lines[0].split(",").index(column)] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines))


def _table_text(ws: Workspace) -> str:
    return ws.fx.small_table.read_text()


def _with_cells(ws: Workspace, cells: dict[tuple[int, str], str]) -> str:
    """The small table with some cells replaced: ``{(line, column): text}``."""
    lines = _table_text(ws).split("\n")
    header = lines[0].split(",")
    for (line, column), value in cells.items():
        fields = lines[line - 1].split(",")
        fields[header.index(column)] = value
        lines[line - 1] = ",".join(fields)
    return "\n".join(lines)


def _some_rows_bad(ws: Workspace) -> Run:
    text = _with_cells(ws, {(4, RASPI): "nan", (5, PIXEL): "inf"})
    lines = text.split("\n")
    excluded = {lines[3].split(",")[0], lines[4].split(",")[0]}
    path = ws.file("t.csv", text)
    config = table_config(path, strategy={"name": "random"}, budget={"evaluations": 3})
    out = ws.dir / "out"

    def after() -> list[str]:
        store = SQLiteStore(out / "study.db", readonly=True)
        try:
            trials = [t for t in store.load()[1] if t.ok]
        finally:
            store.close()
        problems = []
        if not trials:
            problems.append("no complete trial was stored")
        if any(t.arch in excluded for t in trials):
            problems.append("an excluded row was stored as a complete trial")
        if not all(math.isfinite(v) for t in trials for v in t.metrics.values()):
            problems.append("a complete trial holds a non-finite metric")
        return problems

    return Run(ws.search(ws.config(config), out=out), after=after)


def _truncated_table(ws: Workspace) -> Run:
    text = _table_text(ws).rstrip("\n")
    path = ws.file("t.csv", text[: text.rindex(",")])  # the last row loses its last field
    config = table_config(path, strategy={"name": "random"}, budget={"evaluations": 3})
    return Run(ws.search(ws.config(config)))


def _every_row_excluded(ws: Workspace) -> Run:
    cells = {(line, RASPI if line % 2 else PIXEL): "nan" for line in range(2, 202)}
    return ws.with_table(_with_cells(ws, cells))


def _table_with_text_metric(ws: Workspace) -> Run:
    frame = pd.read_csv(ws.fx.small_table)
    frame["note"] = "fast"
    path = ws.dir / "t.csv"
    frame.to_csv(path, index=False)
    evaluators = [{"table": {"path": str(path), "metrics": [ACC, "note"]}}]
    return Run(ws.search(ws.table(evaluators=evaluators)))


def _resume_other_strategy(ws: Workspace) -> Run:
    _, stored = ws.stored()
    config = nb201_config(ws.fx.nb201_dir, strategy={"name": "nsga2"}, budget={"evaluations": 6})
    return Run(ws.search(ws.config(config), out=stored), stored=stored)


def _table_study(ws: Workspace) -> tuple[Path, Path]:
    """A small stored study over ``t.csv`` in the workspace (made through the Python API)."""
    from hwnas.config import build_parts, load_config

    shutil.copy(ws.fx.small_table, ws.dir / "t.csv")
    config = table_config(
        "t.csv", strategy={"name": "random"}, budget={"evaluations": 3}, constraints=None
    )
    cfg = ws.config(config)
    out = ws.dir / "stored"
    parts = build_parts(load_config(cfg), base_dir=ws.dir)
    store = SQLiteStore(out / "study.db")
    try:
        parts.make_study(store).optimize(parts.budget)
    finally:
        store.close()
    return cfg, out


def _resume_table_changed(ws: Workspace) -> Run:
    cfg, out = _table_study(ws)
    _set_cell(ws.dir / "t.csv", 2, ACC, "99.5")
    return Run(ws.search(cfg, out=out), stored=out)


def _resume_table_moved(ws: Workspace) -> Run:
    _, out = _table_study(ws)
    (ws.dir / "moved").mkdir()
    shutil.move(ws.dir / "t.csv", ws.dir / "moved" / "t.csv")
    config = table_config(
        "moved/t.csv", strategy={"name": "random"}, budget={"evaluations": 3}, constraints=None
    )
    return Run(ws.search(ws.config(config, "moved.yaml"), out=out), stored=out)


def _locked(ws: Workspace) -> Run:
    cfg, stored = ws.stored()
    holder = ws.hold(stored / "study.db")
    return Run(ws.search(cfg, out=stored), stored=stored, holder=holder)


def _sqlite_locked(ws: Workspace) -> Run:
    cfg, stored = ws.stored()
    holder = ws.hold(stored / "study.db", SQLITE_HOLD_SCRIPT)
    return Run(ws.search(cfg, out=stored), stored=stored, holder=holder)


def _foreign_db(ws: Workspace, command: str) -> Run:
    import sqlite3

    folder = ws.dir / "foreign"
    folder.mkdir()
    db = folder / "study.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    argv = ["report", str(folder)] if command == "report" else ws.search(ws.table(), out=folder)
    run = Run(argv, untouched=(db,))

    def after() -> list[str]:
        left = sorted(p.name for p in folder.iterdir())
        return [] if left == ["study.db"] else [f"new files beside the foreign db: {left}"]

    run.after = after
    return run


def _newer_schema(ws: Workspace, command: str) -> Run:
    import sqlite3

    cfg, stored = ws.stored()
    con = sqlite3.connect(stored / "study.db")
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    db = stored / "study.db"
    argv = ["report", str(stored)] if command == "report" else ws.search(cfg, out=stored)
    return Run(argv, untouched=(db,))


def _readonly_out(ws: Workspace) -> Run:
    parent = ws.dir / "readonly"
    parent.mkdir()
    return Run(ws.search(ws.table(), out=parent / "out"), readonly=parent)


def _edit_nb201(ws: Workspace, edit: Callable[[Path], None]) -> Run:
    return Run(ws.search(ws.config(nb201_config(ws.nb201_copy(edit)))))


def _nan_in_test_table(folder: Path) -> None:
    _set_cell(
        folder / "nb201_nats_test_acc" / "nats_bench.csv",
        101,
        "CIFAR10TestAccuracy200Epochs",
        "nan",
    )


def _inf_in_latency(folder: Path) -> None:
    _set_cell(folder / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv", 8, "raspi4", "inf")


def _cut_latency(folder: Path) -> None:
    path = folder / "nb201_fbnet_latency_help" / "nb201_latency_ms.csv"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _hwnas_data(ws: Workspace, folder: Path) -> Run:
    run = Run(ws.search(ws.config(nb201_config(None))))
    run.env["HWNAS_DATA"] = str(folder)
    return run


NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
PREDICT = ["hw", "predict", "--arch", NONE_CELL, "--model"]

CASES: list[Case] = [
    # -- the config file ---------------------------------------------------------------------
    Case(
        "config-empty",
        "an empty study.yaml",
        lambda ws: Run(ws.search(ws.file("study.yaml", ""))),
        ("the config must be a YAML mapping", "space, evaluators, objectives, budget"),
    ),
    Case(
        "config-scalar",
        "study.yaml holding just 'nb201'",
        lambda ws: Run(ws.search(ws.file("study.yaml", "nb201\n"))),
        ("the config must be a YAML mapping",),
    ),
    Case(
        "config-is-folder",
        "hwnas search FOLDER --out out",
        lambda ws: Run(ws.search(ws.dir)),
        ("config file {dir} is a folder", "give the YAML file itself"),
        fixed="said 'does not exist'",
    ),
    Case(
        "config-duplicate-key",
        "seed: 0 ... seed: 7 (one key twice)",
        lambda ws: Run(ws.search(ws.file("study.yaml", ws.table().read_text() + "seed: 7\n"))),
        ("line 16: key 'seed' is given twice (first on line 15)", "keep one of them"),
        fixed="silently kept the last value",
    ),
    Case(
        "config-tab-indent",
        "space:<TAB>nb201",
        lambda ws: Run(ws.search(ws.file("study.yaml", "space:\tnb201\n"))),
        ("line 1: not valid YAML", "'\\t'"),
    ),
    Case(
        "config-utf16",
        "study.yaml saved as UTF-16",
        lambda ws: Run(ws.search(ws.file("s.yaml", ws.table().read_text().encode("utf-16")))),
        ("is not a text file in UTF-8", "saved as UTF-8"),
    ),
    # -- misspelt keys, at every level ---------------------------------------------------------
    Case(
        "key-top-level",
        "datadir: /data (for data_dir)",
        lambda ws: ws.search_table(datadir="/data"),
        ("top level: unknown key 'datadir'", "did you mean 'data_dir'"),
    ),
    Case(
        "key-space",
        "space: {nme: nb201}",
        lambda ws: ws.search_table(space={"nme": "nb201"}),
        ("space: unknown key 'nme'", "did you mean 'name'?"),
    ),
    Case(
        "key-space-option",
        "space: {name: nb201, options: {num_clases: 10}}",
        lambda ws: ws.search_table(space={"name": "nb201", "options": {"num_clases": 10}}),
        ("space 'nb201' has no option 'num_clases'", "did you mean 'num_classes'"),
    ),
    Case(
        "key-evaluator-option",
        "- table: {pth: small.csv}",
        lambda ws: ws.search_table(evaluators=[{"table": {"pth": "small.csv"}}]),
        ("evaluator 'table' has no option 'pth'", "did you mean 'path'?"),
    ),
    Case(
        "key-objective",
        "- {metrc: accuracy, direction: maximize}",
        lambda ws: ws.search_table(objectives=[{"metrc": ACC, "direction": "maximize"}]),
        ("objectives.0: unknown key 'metrc'", "did you mean 'metric'?"),
    ),
    Case(
        "key-constraint",
        "- {metric: latency_ms@pixel3, lee: 10}",
        lambda ws: ws.search_table(constraints=[{"metric": PIXEL, "lee": 10}]),
        ("constraints.0: unknown key 'lee'", "did you mean 'le'"),
    ),
    Case(
        "key-budget",
        "budget: {evaluation: 10}",
        lambda ws: ws.search_table(budget={"evaluation": 10}),
        ("budget: unknown key 'evaluation'", "did you mean 'evaluations'?"),
    ),
    Case(
        "key-execution",
        "execution: {workrs: 2}",
        lambda ws: ws.search_table(execution={"workrs": 2}),
        ("execution: unknown key 'workrs'", "did you mean 'workers'?"),
    ),
    Case(
        "key-strategy-option",
        "strategy: {name: thompson, samples: 5}",
        lambda ws: ws.search_table(strategy={"name": "thompson", "samples": 5}),
        ("strategy 'thompson' has no option 'samples'", "'initial_samples'"),
    ),
    Case(
        "key-random-has-no-options",
        "strategy: {name: random, population_size: 5}",
        lambda ws: ws.search_table(strategy={"name": "random", "population_size": 5}),
        ("strategy 'random' has no option 'population_size'", "it takes no options"),
        fixed="silently accepted",
    ),
    # -- wrong types and values ----------------------------------------------------------------
    Case(
        "space-fractional-option",
        "space: {name: nb201, options: {num_classes: 10.5}}",
        lambda ws: ws.search_table(space={"name": "nb201", "options": {"num_classes": 10.5}}),
        ("option 'num_classes' must be a whole number, got 10.5", "fix its value in the config"),
        fixed="silently accepted",
    ),
    Case(
        "space-text-option",
        'space: {name: nb201, options: {num_classes: "ten"}}',
        lambda ws: ws.search_table(space={"name": "nb201", "options": {"num_classes": "ten"}}),
        ("option 'num_classes' must be a whole number, got 'ten'",),
        fixed="traceback",
    ),
    Case(
        "space-negative-input-size",
        "space: {name: nb201, options: {input_size: -3}}",
        lambda ws: ws.search_table(space={"name": "nb201", "options": {"input_size": -3}}),
        ("nb201: input_size must be a whole number >= 4, got -3",),
    ),
    Case(
        "fbnet-fractional-option",
        "space: {name: fbnet, options: {input_size: 31.5}}",
        lambda ws: ws.search_table(space={"name": "fbnet", "options": {"input_size": 31.5}}),
        ("space 'fbnet': option 'input_size' must be a whole number, got 31.5",),
        fixed="silently accepted",
    ),
    Case(
        "budget-text",
        'budget: {evaluations: "ten"}',
        lambda ws: ws.search_table(budget={"evaluations": "ten"}),
        ("budget.evaluations", "valid integer", "'ten'"),
    ),
    Case(
        "budget-zero",
        "budget: {evaluations: 0}",
        lambda ws: ws.search_table(budget={"evaluations": 0}),
        ("budget.evaluations", "greater than 0, got 0"),
    ),
    Case(
        "budget-true",
        "budget: {evaluations: true}",
        lambda ws: ws.search_table(budget={"evaluations": True}),
        ("budget.evaluations: expected a whole number, got true",),
        fixed="silently accepted",
    ),
    Case(
        "seed-negative",
        "seed: -1",
        lambda ws: ws.search_table(seed=-1),
        ("seed", "greater than or equal to 0, got -1"),
    ),
    Case(
        "seed-fraction",
        "seed: 1.5",
        lambda ws: ws.search_table(seed=1.5),
        ("seed", "fractional part, got 1.5"),
    ),
    Case(
        "seed-text",
        'seed: "x"',
        lambda ws: ws.search_table(seed="x"),
        ("seed", "valid integer", "'x'"),
    ),
    Case(
        "seed-true",
        "seed: true",
        lambda ws: ws.search_table(seed=True),
        ("seed: expected a whole number, got true",),
        fixed="silently accepted",
    ),
    Case(
        "workers-zero",
        "execution: {workers: 0}",
        lambda ws: ws.search_table(execution={"workers": 0}),
        ("execution.workers", "greater than or equal to 1, got 0"),
    ),
    Case(
        "timeout-negative",
        "execution: {timeout_s: -1}",
        lambda ws: ws.search_table(execution={"timeout_s": -1}),
        ("execution.timeout_s", "greater than 0, got -1"),
    ),
    Case(
        "retries-negative",
        "execution: {retries: -1}",
        lambda ws: ws.search_table(execution={"retries": -1}),
        ("execution.retries", "greater than or equal to 0, got -1"),
    ),
    Case(
        "max-failures-zero",
        "execution: {max_failures_in_row: 0}",
        lambda ws: ws.search_table(execution={"max_failures_in_row": 0}),
        ("execution.max_failures_in_row", "greater than or equal to 1, got 0"),
    ),
    Case(
        "executor-unknown",
        "execution: {executor: gpu}",
        lambda ws: ws.search_table(execution={"executor": "gpu"}),
        ("execution.executor", "'sequential', 'process' or 'ray'", "got 'gpu'"),
    ),
    Case(
        "sequential-with-workers",
        "execution: {workers: 2}  (executor sequential)",
        lambda ws: ws.search_table(execution={"workers": 2}),
        ("the sequential executor runs one evaluation at a time", "use --executor process"),
        fixed="left a study.db behind",
    ),
    Case(
        "address-without-ray",
        "execution: {address: 'head:6379'}  (executor sequential)",
        lambda ws: ws.search_table(execution={"address": "head:6379"}),
        ("an address is for the ray executor, not 'sequential'", "use --executor ray"),
        fixed="left a study.db behind",
    ),
    Case(
        "objectives-duplicate",
        "objectives: accuracy maximize, accuracy minimize",
        lambda ws: ws.search_table(
            objectives=[
                {"metric": ACC, "direction": "maximize"},
                {"metric": ACC, "direction": "minimize"},
            ]
        ),
        ("metric 'accuracy' is named by objectives 0 and 1", "keep one objective per metric"),
        fixed="no fix named",
    ),
    Case(
        "objectives-empty",
        "objectives: []",
        lambda ws: ws.search_table(objectives=[]),
        ("objectives", "at least 1 item"),
    ),
    Case(
        "evaluators-missing",
        "no evaluators key",
        lambda ws: ws.search_table(evaluators=None),
        ("evaluators: this key is required",),
    ),
    Case(
        "constraint-text-bound",
        '- {metric: latency_ms@pixel3, le: "ten"}',
        lambda ws: ws.search_table(constraints=[{"metric": PIXEL, "le": "ten"}]),
        ("constraints.0.le", "valid number", "'ten'"),
    ),
    Case(
        "constraint-nan-bound",
        "- {metric: latency_ms@pixel3, le: .nan}",
        lambda ws: ws.search_table(constraints=[{"metric": PIXEL, "le": math.nan}]),
        ("constraints.0.le", "finite number, got nan"),
        fixed="said 'relax the bounds'",
    ),
    Case(
        "constraint-unknown-metric",
        "- {metric: latency_ms@fpga, le: 5}",
        lambda ws: ws.search_table(constraints=[{"metric": "latency_ms@fpga", "le": 5}]),
        ("constraint metric 'latency_ms@fpga' is not provided by any evaluator", "did you mean"),
    ),
    # -- evaluators and their data -------------------------------------------------------------
    Case(
        "nb201-dataset-number",
        "- nb201: {dataset: 3}",
        lambda ws: ws.search_nb201({"dataset": 3}),
        ("evaluator 'nb201': option 'dataset' must be a string, got 3",),
        fixed="traceback",
    ),
    Case(
        "nb201-dataset-typo",
        "- nb201: {dataset: cifar11}",
        lambda ws: ws.search_nb201({"dataset": "cifar11"}),
        ("nb201: unknown dataset 'cifar11'", "did you mean 'cifar10'"),
    ),
    Case(
        "nb201-devices-string",
        "- nb201: {devices: raspi4}",
        lambda ws: ws.search_nb201({"devices": "raspi4"}),
        ("option 'devices' must be a list of strings, got 'raspi4'", "e.g. [raspi4]"),
        fixed="said \"unknown device 'r'\"",
    ),
    Case(
        "nb201-device-typo",
        "- nb201: {devices: [raspi5]}",
        lambda ws: ws.search_nb201({"devices": ["raspi5"]}),
        ("nb201: unknown device 'raspi5'", "did you mean 'raspi4'?"),
    ),
    Case(
        "nb201-on-fbnet",
        "space: fbnet with - nb201: {}",
        lambda ws: ws.search_nb201({}, space="fbnet"),
        ("evaluator 'nb201' needs space 'nb201'", "the space is 'fbnet'"),
    ),
    Case(
        "nb201-data-dir-missing",
        "data_dir: no-such-folder",
        lambda ws: Run(ws.search(ws.config(nb201_config(ws.dir / "no-such-folder")))),
        ("NB201 benchmark tables not found", "{dir}/no-such-folder", "Set data_dir"),
    ),
    Case(
        "hwnas-data-missing-folder",
        "HWNAS_DATA=/no/such/folder, no data_dir",
        lambda ws: _hwnas_data(ws, ws.dir / "no-such-folder"),
        ("HWNAS_DATA is set to {dir}/no-such-folder, which is not a folder", "or unset it"),
    ),
    Case(
        "hwnas-data-empty-folder",
        "HWNAS_DATA=an empty folder",
        lambda ws: _hwnas_data(ws, ws.dir),
        ("HWNAS_DATA is set to {dir}, which lacks", "set HWNAS_DATA to the folder"),
    ),
    Case(
        "nb201-nan",
        "nats_bench.csv line 101: nan accuracy",
        lambda ws: _edit_nb201(ws, _nan_in_test_table),
        (
            "nats_bench.csv line 101, column 'CIFAR10TestAccuracy200Epochs'",
            "expected a finite number, found nan",
            "restore the file from its source",
        ),
    ),
    Case(
        "nb201-inf",
        "nb201_latency_ms.csv line 8: inf latency",
        lambda ws: _edit_nb201(ws, _inf_in_latency),
        ("nb201_latency_ms.csv line 8, column 'raspi4'", "found inf", "restore the file"),
    ),
    Case(
        "nb201-truncated",
        "nb201_latency_ms.csv cut in half",
        lambda ws: _edit_nb201(ws, _cut_latency),
        ("nb201_latency_ms.csv line", "the file may be truncated", "restore the file"),
    ),
    Case(
        "table-path-folder",
        "- table: {path: <a folder>}",
        lambda ws: ws.search_table(evaluators=[{"table": {"path": str(ws.dir)}}]),
        ("table: {dir} is a folder", "set 'path' to the CSV file in it"),
        fixed="said 'does not exist'",
    ),
    Case(
        "table-without-path",
        "- table: {key: arch}",
        lambda ws: ws.search_table(evaluators=[{"table": {"key": "arch"}}]),
        ("evaluator 'table' needs the option 'path'", "add it to its options"),
        fixed="traceback",
    ),
    Case(
        "space-option-name",
        "space: {name: nb201, options: {name: fbnet}}",
        lambda ws: ws.search_table(space={"name": "nb201", "options": {"name": "fbnet"}}),
        ("space 'nb201' has no option 'name'",),
        fixed="traceback",
    ),
    Case(
        "table-path-number",
        "- table: {path: 3}",
        lambda ws: ws.search_table(evaluators=[{"table": {"path": 3}}]),
        ("evaluator 'table': option 'path' must be a string, got 3",),
        fixed="traceback",
    ),
    Case(
        "table-metrics-string",
        "- table: {path: t.csv, metrics: accuracy}",
        lambda ws: ws.with_table(_table_text(ws), metrics=ACC),
        ("option 'metrics' must be a list of strings", "e.g. [accuracy]"),
        fixed="said \"no numeric column 'a'\"",
    ),
    Case(
        "table-empty",
        "t.csv is empty",
        lambda ws: ws.with_table(""),
        ("table: {dir}/t.csv is empty", "export it again as UTF-8 CSV"),
    ),
    Case(
        "table-header-only",
        "t.csv holds only its header",
        lambda ws: ws.with_table(_lines(ws.fx.small_table)[0] + "\n"),
        ("has a header (line 1) but no rows", "add one row per architecture"),
    ),
    Case(
        "table-binary",
        "t.csv is a zip file",
        lambda ws: ws.with_table(b"PK\x03\x04" + bytes(300)),
        ("cannot parse {dir}/t.csv as CSV", "NUL byte", "export it again as UTF-8 CSV"),
        fixed="printed the NUL bytes",
    ),
    Case(
        "table-latin1",
        "t.csv in Latin-1 (an accented header)",
        lambda ws: ws.with_table(_table_text(ws).replace(ACC, "précision", 1).encode("latin-1")),
        ("line 1 is not UTF-8 text (byte 0xe9)", "export it again as UTF-8 CSV"),
    ),
    Case(
        "table-tab-separated",
        "t.csv separated by tabs",
        lambda ws: ws.with_table(_table_text(ws).replace(",", "\t")),
        ("is one column holding '\\t'", "save it as CSV with commas"),
        fixed="misleading message",
    ),
    Case(
        "table-no-key-column",
        "- table: {path: t.csv, key: architecture}",
        lambda ws: ws.with_table(_table_text(ws), key="architecture"),
        ("has no key column 'architecture'", "did you mean 'arch'"),
    ),
    Case(
        "table-bad-arch",
        "t.csv line 3: arch 'resnet18'",
        lambda ws: ws.with_table(_with_cells(ws, {(3, "arch"): "resnet18"})),
        ("t.csv line 3", "'resnet18' is not an NB201 string"),
    ),
    Case(
        "table-duplicate-arch",
        "t.csv lists one arch twice",
        lambda ws: ws.with_table(_table_text(ws) + _lines(ws.fx.small_table)[1] + "\n"),
        ("more than once (lines 2 and 202)", "keep one row per arch"),
    ),
    Case(
        "table-extra-fields",
        "t.csv line 202 has 7 fields",
        lambda ws: ws.with_table(_table_text(ws) + _lines(ws.fx.small_table)[1] + ",1,2\n"),
        ("line 202 has 7 fields but the header has 5", "quote cells that hold commas"),
    ),
    Case(
        "table-every-row-excluded",
        "t.csv: a NaN latency in every row",
        _every_row_excluded,
        ("every row is excluded", "line 2: latency_ms@pixel3 is nan", "fix the file"),
    ),
    Case(
        "table-no-numbers",
        "t.csv: arch and a text column only",
        lambda ws: ws.with_table(
            "arch,device\n"
            + "".join(f"{r.split(',')[0]},pi\n" for r in _lines(ws.fx.small_table)[1:])
        ),
        ("has no numeric column besides the key 'arch'", "add a column of finite numbers"),
        fixed="no fix named",
    ),
    Case(
        "table-text-metric",
        "- table: {metrics: [accuracy, note]}, note is text",
        _table_with_text_metric,
        ("column 'note' is not numeric", "remove it from 'metrics'"),
    ),
    Case(
        "table-some-rows-bad",
        "t.csv: nan on line 4, inf on line 5",
        _some_rows_bad,
        ("warning: table t.csv: 2 rows excluded", "line 4: latency_ms@raspi4 is nan", "line 5"),
        warning=True,
        fixed="warning printed twice",
    ),
    Case(
        "table-truncated",
        "t.csv cut inside its last row",
        _truncated_table,
        ("warning: table t.csv: 1 row excluded", "line 201: 4 of 5 fields", "truncated"),
        warning=True,
        fixed="warning printed twice",
    ),
    # -- strategies ----------------------------------------------------------------------------
    Case(
        "strategy-population-1",
        "strategy: {name: nsga2, population_size: 1}",
        lambda ws: ws.search_table(strategy={"name": "nsga2", "population_size": 1}),
        ("nsga2: population_size must be >= 2, got 1",),
    ),
    Case(
        "strategy-population-text",
        'strategy: {name: nsga2, population_size: "ten"}',
        lambda ws: ws.search_table(strategy={"name": "nsga2", "population_size": "ten"}),
        ("strategy 'nsga2': option 'population_size' must be a whole number, got 'ten'",),
        fixed="traceback",
    ),
    Case(
        "strategy-population-fraction",
        "strategy: {name: nsga2, population_size: 2.5}",
        lambda ws: ws.search_table(strategy={"name": "nsga2", "population_size": 2.5}),
        ("option 'population_size' must be a whole number, got 2.5",),
        fixed="traceback, left a study.db behind",
    ),
    Case(
        "strategy-crossover-2",
        "strategy: {name: nsga2, crossover_prob: 2}",
        lambda ws: ws.search_table(strategy={"name": "nsga2", "crossover_prob": 2}),
        ("nsga2: crossover_prob must lie in [0, 1], got 2",),
    ),
    Case(
        "strategy-crossover-text",
        "strategy: {name: nsga2, crossover_prob: high}",
        lambda ws: ws.search_table(strategy={"name": "nsga2", "crossover_prob": "high"}),
        ("option 'crossover_prob' must be a number, got 'high'",),
        fixed="traceback",
    ),
    Case(
        "strategy-thompson-samples",
        "strategy: {name: thompson, initial_samples: 0}",
        lambda ws: ws.search_table(strategy={"name": "thompson", "initial_samples": 0}),
        ("thompson: initial_samples must be >= 2, got 0",),
    ),
    Case(
        "strategy-optuna-sampler",
        "strategy: {name: optuna, sampler: tpee}",
        lambda ws: ws.search_table(strategy={"name": "optuna", "sampler": "tpee"}),
        ("optuna: unknown sampler 'tpee'", "did you mean 'tpe'"),
    ),
    Case(
        "strategy-optuna-options-list",
        "strategy: {name: optuna, sampler_options: [1]}",
        lambda ws: ws.search_table(strategy={"name": "optuna", "sampler_options": [1]}),
        ("option 'sampler_options' must be a mapping, got [1]",),
        fixed="traceback",
    ),
    # -- command-line flags --------------------------------------------------------------------
    Case(
        "flag-budget-negative",
        "--budget -5",
        lambda ws: ws.search_table("--budget", "-5"),
        ("--budget must be a positive number of evaluations, got -5",),
    ),
    Case(
        "flag-budget-text",
        "--budget x",
        lambda ws: ws.search_table("--budget", "x"),
        ("argument --budget: invalid int value: 'x'", SEARCH_HELP),
    ),
    Case(
        "flag-seed-negative",
        "--seed -1",
        lambda ws: ws.search_table("--seed", "-1"),
        ("--seed must be a whole number >= 0, got -1",),
    ),
    Case(
        "flag-workers-zero",
        "--workers 0",
        lambda ws: ws.search_table("--workers", "0"),
        ("argument --workers: expected a whole number >= 1, got 0", SEARCH_HELP),
    ),
    Case(
        "flag-workers-sequential",
        "--workers 2  (executor sequential)",
        lambda ws: ws.search_table("--workers", "2"),
        ("the sequential executor runs one evaluation at a time", "--executor process"),
        fixed="left a study.db behind",
    ),
    Case(
        "flag-executor-unknown",
        "--executor foo",
        lambda ws: ws.search_table("--executor", "foo"),
        ("argument --executor: invalid choice: 'foo'", "'sequential', 'process', 'ray'"),
    ),
    Case(
        "flag-address-sequential",
        "--address 10.0.0.1:6379  (executor sequential)",
        lambda ws: ws.search_table("--address", "10.0.0.1:6379"),
        ("an address is for the ray executor, not 'sequential'", "drop --address"),
        fixed="left a study.db behind",
    ),
    Case(
        "flag-address-process",
        "--executor process --address 10.0.0.1:6379",
        lambda ws: ws.search_table("--executor", "process", "--address", "10.0.0.1:6379"),
        ("an address is for the ray executor, not 'process'",),
        fixed="left a study.db behind",
    ),
    Case(
        "flag-address-unreachable",
        "--executor ray --address 127.0.0.1:9  (nothing listens there)",
        lambda ws: ws.search_table("--executor", "ray", "--address", "127.0.0.1:9"),
        ("cannot reach the Ray cluster at 127.0.0.1:9", "fix --address"),
        fixed="hung for a minute, then Ray ended the process without a line",
    ),
    Case(
        "flag-log-json-folder",
        "--log-json <a folder>",
        lambda ws: ws.search_table("--log-json", str(ws.dir)),
        ("--log-json {dir} is a folder", "give a file to append to"),
        fixed="left a study.db behind",
    ),
    Case(
        "flag-progress-negative",
        "--progress-every -1",
        lambda ws: ws.search_table("--progress-every", "-1"),
        ("--progress-every must be >= 0, got -1",),
    ),
    Case(
        "out-is-file",
        "--out <an existing file>",
        lambda ws: Run(ws.search(ws.table(), out=ws.file("taken", "x"))),
        ("--out {dir}/taken is a file", "give a folder"),
    ),
    Case(
        "out-under-file",
        "--out <file>/out",
        lambda ws: Run(ws.search(ws.table(), out=ws.file("taken", "x") / "out")),
        ("{dir}/taken is a file, so the folder cannot be made there",),
    ),
    Case(
        "out-read-only",
        "--out <read-only mount>/out",
        _readonly_out,
        ("{dir}/readonly is not writable", "give a folder you can write to"),
    ),
    Case(
        "out-impossible",
        "--out /proc/hwnas-out  (a folder the kernel will not make)",
        lambda ws: Run(ws.search(ws.table(), out=Path("/proc/hwnas-out"))),
        ("--out /proc/hwnas-out: cannot make the folder", "give a folder you can write to"),
    ),
    Case(
        "no-command",
        "hwnas",
        lambda ws: Run([]),
        ("the following arguments are required: command", "see 'hwnas --help'"),
    ),
    Case(
        "unknown-command",
        "hwnas serch",
        lambda ws: Run(["serch"]),
        ("invalid choice: 'serch'", "'search'"),
    ),
    # -- report ----------------------------------------------------------------------------------
    Case(
        "report-missing-folder",
        "hwnas report no-such-folder",
        lambda ws: Run(["report", str(ws.dir / "no-such-folder")]),
        ("{dir}/no-such-folder holds no study.db", "--out folder of a search"),
    ),
    Case(
        "report-foreign-db",
        "hwnas report DIR  (study.db of another tool)",
        lambda ws: _foreign_db(ws, "report"),
        ("is not an hwnas study database", "tables people"),
    ),
    Case(
        "report-not-sqlite",
        "hwnas report DIR  (study.db is text)",
        lambda ws: Run(["report", str(ws.file("study.db", "hello").parent)]),
        ("is not an hwnas study database (it is not an SQLite file)",),
    ),
    Case(
        "report-newer-schema",
        "hwnas report DIR  (schema version 99)",
        lambda ws: _newer_schema(ws, "report"),
        ("has schema version 99", "use the hwnas version that wrote it"),
    ),
    # -- hw commands -----------------------------------------------------------------------------
    Case(
        "hw-measure-bad-arch",
        "hwnas hw measure --space nb201 --arch resnet18",
        lambda ws: Run(["hw", "measure", "--space", "nb201", "--arch", "resnet18"]),
        ("'resnet18' is not an NB201 string", "expected three '+'-joined groups"),
    ),
    Case(
        "hw-measure-unknown-space",
        "hwnas hw measure --space nb2011 ...",
        lambda ws: Run(["hw", "measure", "--space", "nb2011", "--arch", NONE_CELL]),
        ("unknown space 'nb2011'", "did you mean 'nb201'?"),
    ),
    Case(
        "hw-measure-unknown-backend",
        "hwnas hw measure ... --backend tpu",
        lambda ws: Run(
            ["hw", "measure", "--space", "nb201", "--arch", NONE_CELL, "--backend", "tpu"]
        ),
        ("unknown latency backend 'tpu'", "choose from onnxruntime, torch"),
    ),
    Case(
        "hw-predict-missing-model",
        "hwnas hw predict --model no-such-folder ...",
        lambda ws: Run([*PREDICT, str(ws.dir / "no-such-folder")]),
        ("latency predictor folder {dir}/no-such-folder does not exist", "fix the path"),
    ),
    Case(
        "hw-predict-model-file",
        "hwnas hw predict --model <a file> ...",
        lambda ws: Run([*PREDICT, str(ws.file("model.json", "{}"))]),
        ("{dir}/model.json is a file", "'hwnas hw calibrate --out' wrote"),
        fixed="said 'does not exist'",
    ),
    Case(
        "hw-predict-empty-folder",
        "hwnas hw predict --model <an empty folder> ...",
        lambda ws: Run([*PREDICT, str(ws.dir)]),
        ("{dir} has no predictor.json", "not a folder written by LatencyPredictor.save"),
    ),
    Case(
        "hw-calibrate-few-samples",
        "hwnas hw calibrate --space nb201 --samples 5 --out DIR",
        lambda ws: Run(
            ["hw", "calibrate", "--space", "nb201", "--samples", "5", "--out", str(ws.dir / "o")]
        ),
        ("--samples must be at least 10, got 5",),
    ),
    # -- the store ---------------------------------------------------------------------------
    Case(
        "resume-other-strategy",
        "search into a stored study with strategy nsga2 (stored: random)",
        _resume_other_strategy,
        ("made with different strategy", "use a new output folder, or the original config"),
    ),
    Case(
        "resume-table-changed",
        "resume after t.csv's content changed",
        _resume_table_changed,
        ("table t.csv ({dir}/t.csv) changed content", "restore the original data to resume"),
        fixed="named no file",
    ),
    Case(
        "resume-table-moved",
        "resume with t.csv moved to moved/t.csv",
        _resume_table_moved,
        ("moved from {dir}/t.csv to {dir}/moved/t.csv", "restore the original data to resume"),
    ),
    Case(
        "store-locked",
        "a second search while another process holds the folder",
        _locked,
        ("is in use by another hwnas process (pid {pid})", "wait for it to finish"),
    ),
    Case(
        "store-sqlite-locked",
        "a search while another program holds an SQLite lock on study.db",
        _sqlite_locked,
        ("is locked by another program (still busy after 5 s)", "close the program that holds it"),
        slow=True,
    ),
    Case(
        "store-foreign-db",
        "hwnas search ... --out DIR  (study.db of another tool)",
        lambda ws: _foreign_db(ws, "search"),
        ("is not an hwnas study database", "give a new --out folder"),
    ),
    Case(
        "store-newer-schema",
        "hwnas search ... --out DIR  (schema version 99)",
        lambda ws: _newer_schema(ws, "search"),
        ("has schema version 99, newer than version", "give a new --out folder"),
    ),
]


def case_ids() -> list[str]:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    return ids
