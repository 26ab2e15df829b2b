"""The bad-input table: every case of ``tests/bad_input_cases.py`` through the installed ``hwnas``
console script, each in its own subprocess, checked against the CLI contract (exit code 2,
exactly one stderr line starting ``error: `` that names the problem and the fix, no traceback,
nothing stored lost, nothing left behind; ``warning`` cases: exit 0 and one ``warning:`` line).

The cases prepare their files in a temporary folder (synthetic NB201 data, a 200-row table, a
finished template study); the case that needs a read-only folder runs the CLI inside a private
mount namespace (``unshare``) where that folder is bind-mounted read-only, since we run as root.

Usage::

    python benchmarks/bad_inputs.py                      # writes benchmarks/results/bad_inputs.md
    python benchmarks/bad_inputs.py -k table --jobs 1    # a subset, one subprocess at a time
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_input_cases import (  # noqa: E402
    CASES,
    Before,
    Case,
    Run,
    Workspace,
    before,
    build_fixtures,
    check,
    cli_command,
    error_line,
    readonly_mounts_work,
    run_subprocess,
    stop_holder,
)
from conftest import synthetic_rows  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bad_inputs.md"


@dataclass
class Outcome:
    case: Case
    rc: int | None
    line: str
    problems: list[str]
    skipped: str = ""

    @property
    def passed(self) -> bool:
        return not self.skipped and not self.problems


def _execute(
    case: Case, ws: Workspace, run: Run, was: Before, env: dict[str, str], mounts: bool
) -> Outcome:
    try:
        if run.readonly is not None and not mounts:
            return Outcome(case, None, "", [], skipped="no read-only bind mounts here")
        rc, _, err = run_subprocess(run, env)
    finally:
        stop_holder(run.holder)
    return Outcome(case, rc, error_line(err), check(case, ws, run, was, rc, err))


def _cell(text: str, tmp: str) -> str:
    text = text.replace(tmp, "<tmp>").replace("`", "'").replace("|", "\\|")
    return f"`{text}`" if text else ""


def _markdown(outcomes: list[Outcome], tmp: str, wall_s: float, jobs: int) -> str:
    n = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    skipped = sum(bool(o.skipped) for o in outcomes)
    fixed = sum(bool(o.case.fixed) for o in outcomes)
    exe = " ".join(cli_command([])[:3]).replace(str(Path.home()), "~")
    lines = [
        "# Bad input: the CLI contract, case by case",
        "",
        "Every case of `tests/bad_input_cases.py` run through the installed CLI "
        f"(`{exe} ...`), one subprocess each, by `python benchmarks/bad_inputs.py` "
        f"({jobs} at a time, {wall_s:.0f} s on {platform.machine()}, Python "
        f"{platform.python_version()}). A case passes when the run exits with code 2 and prints "
        "exactly one stderr line, starting `error: `, that holds the case's expected words (the "
        "problem and the fix); no traceback; a study stored before keeps every trial; a refused "
        "file keeps its bytes; and an `--out` folder that did not exist is not left behind. "
        "`warning` cases are runs that must succeed (exit 0) with one `warning:` line naming "
        "the excluded rows. *before part 6*: what the case did before issue 9 part 6 fixed it "
        "(blank: it already passed). `<tmp>` is the temporary folder.",
        "",
        "| # | case | input | exit | line printed | before part 6 | result |",
        "|---|------|-------|------|--------------|---------------|--------|",
    ]
    for i, o in enumerate(outcomes, 1):
        if o.skipped:
            result = f"skipped ({o.skipped})"
        elif o.passed:
            result = "pass"
        else:
            result = "FAIL: " + "; ".join(o.problems).replace(tmp, "<tmp>").replace("|", "\\|")
        kind = " (warning)" if o.case.warning else ""
        lines.append(
            f"| {i} | {o.case.id}{kind} | {_cell(o.case.shown, tmp)} | "
            f"{'' if o.rc is None else o.rc} | {_cell(o.line, tmp)} | "
            f"{o.case.fixed} | {result} |"
        )
    lines += [
        "",
        f"**{n} cases, {passed} pass**"
        + (f", {skipped} skipped" if skipped else "")
        + f"; {fixed} of them needed a code fix in issue 9 part 6.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="the markdown file to write")
    parser.add_argument("--jobs", type=int, default=2, help="subprocesses at a time")
    parser.add_argument("-k", dest="select", default="", help="only cases whose id holds this")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if args.select in c.id]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-bad-inputs-") as tmp_name:
        tmp = Path(tmp_name).resolve()
        os.environ["HWNAS_CACHE_DIR"] = str(tmp / "cache")
        os.environ.pop("HWNAS_DATA", None)
        env = dict(os.environ)
        fx = build_fixtures(tmp / "fixtures", synthetic_rows())
        mounts = readonly_mounts_work()
        prepared = []
        for case in cases:  # setups run here, one by one; the CLI runs in parallel below
            ws = Workspace(fx, tmp / "cases" / case.id)
            ws.dir.mkdir(parents=True)
            run = case.make(ws)
            prepared.append((case, ws, run, before(run)))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(lambda p: _execute(p[0], p[1], p[2], p[3], env, mounts), prepared)
            )
        wall = time.perf_counter() - start
        text = _markdown(outcomes, str(tmp), wall, args.jobs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    for o in outcomes:
        if not o.passed:
            print(f"{o.case.id}: {o.skipped or '; '.join(o.problems)}\n    {o.line}")
    print(text.strip().splitlines()[-1])
    print(f"wrote {args.out}")
    return 0 if all(o.passed or o.skipped for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
