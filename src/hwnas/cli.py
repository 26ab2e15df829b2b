"""The ``hwnas`` command line, built on the public API only.

    hwnas search CONFIG.yaml --out DIR [--budget N] [--seed S]   run or resume a study
    hwnas report DIR                                             rebuild tables and plots
    hwnas list [spaces|strategies|evaluators]                    what is registered
    hwnas hw measure|calibrate|predict ...                       latency on this machine

Bad input prints one line ``error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwnas.errors import ConfigError, HwnasError
from hwnas.problem import Constraint, Objective, objective_matrix
from hwnas.trial import Trial

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    err = Console(stderr=True)
    try:
        return int(args.func(args))
    except HwnasError as exc:
        # One line, and the message is text, not rich markup: user input may hold "[...]".
        line = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        err.print(
            f"[bold red]error:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True
        )
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwnas", description="Hardware-aware neural architecture search"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="run (or resume) a study from a YAML config")
    s.add_argument("config", type=Path)
    s.add_argument("--out", type=Path, required=True, help="output folder (re-use it to resume)")
    s.add_argument("--budget", type=int, default=None, help="evaluations (overrides the config)")
    s.add_argument("--seed", type=int, default=None, help="seed (overrides the config)")
    s.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    s.set_defaults(func=cmd_search)

    r = sub.add_parser(
        "report", help="rebuild trials.csv, pareto.csv, plots and report from study.db"
    )
    r.add_argument("out", type=Path)
    r.set_defaults(func=cmd_report)

    from hwnas.cli_hw import add_hw_commands

    add_hw_commands(sub)

    ls = sub.add_parser("list", help="list registered spaces, strategies and evaluators")
    ls.add_argument("kind", nargs="?", choices=["spaces", "strategies", "evaluators"])
    ls.set_defaults(func=cmd_list)
    return p


# -- search -------------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.config import build_study, load_config
    from hwnas.storage import SQLiteStore

    config = load_config(args.config)
    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"--budget must be a positive number of evaluations, got {args.budget}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(out / "study.db")
    try:
        built = build_study(
            config,
            base_dir=args.config.resolve().parent,
            store=store,
            budget=args.budget,
            seed=args.seed,
        )
        study = built.study
        meta = {
            "objectives": [[o.metric, o.direction] for o in study.problem.objectives],
            "constraints": [[c.metric, c.le, c.ge] for c in study.problem.constraints],
            "space": study.space.name,
            "strategy": built.strategy_name,
            "seed": study.seed,
            "budget": built.budget,
            "config_path": str(args.config.resolve()),
            "config_text": args.config.read_text(),
        }
        store.set_meta({"report": meta})
        console = Console(stderr=True)
        done_before = study.n_charged
        interrupted = False
        start = time.perf_counter()
        try:
            _run_with_progress(study, built.budget, console, quiet=args.quiet)
        except KeyboardInterrupt:
            interrupted = True
        wall = time.perf_counter() - start
        trials = study.trials
        summary = _summary(meta, trials, study.n_charged, wall, done_before)
        for key, value in study.strategy.diagnostics().items():
            summary[f"strategy: {key}"] = f"{value:.4g}" if isinstance(value, float) else str(value)
        outputs = _write(out, meta, trials, summary)
        if not args.quiet:
            _print_front(outputs.pareto, study.problem.objectives, study.problem.constraints)
            diag = {k: v for k, v in summary.items() if k.startswith("strategy: ")}
            if diag:
                _stdout().print(
                    "; ".join(f"{k[10:]} {v}" for k, v in diag.items()), highlight=False
                )
            _stdout().print(
                f"{study.n_charged} of {built.budget} evaluations stored in {out / 'study.db'}"
                f" ({study.n_charged - done_before} new, {wall:.1f} s); "
                f"report: {outputs.files['report.html']}",
                highlight=False,
            )
        if interrupted:
            console.print(
                "interrupted: every finished evaluation is stored; re-run the same command to "
                "resume",
                highlight=False,
            )
            return 130
        return 0
    finally:
        store.close()


def _run_with_progress(study: Any, budget: int, console: Console, *, quiet: bool) -> None:
    if quiet or not console.is_terminal:
        study.optimize(budget)
        return
    columns = (
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("front {task.fields[front]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("search", total=budget, completed=study.n_charged, front="-")
        count = {"n": 0}

        def update(st: Any, trial: Trial) -> None:
            count["n"] += 1
            front = (
                len(st.pareto_front())
                if count["n"] % 10 == 0
                else progress.tasks[0].fields["front"]
            )
            progress.update(task, completed=st.n_charged, front=front)

        study.optimize(budget, callbacks=[update])


def _summary(
    meta: dict[str, Any], trials: list[Trial], charged: int, wall: float, before: int
) -> dict[str, str]:
    objectives, constraints = _problem_from_meta(meta)
    from hwnas.pareto import hypervolume, pareto_trials
    from hwnas.problem import total_violation

    done = [t for t in trials if t.ok]
    feasible = [t for t in done if total_violation(constraints, t.metrics) <= 0]
    front = pareto_trials(trials, objectives, constraints)
    hv = "n/a"
    if front and len(feasible) > 1:
        F_all = objective_matrix(objectives, [t.metrics for t in feasible])
        ideal, nadir = F_all.min(axis=0), F_all.max(axis=0)
        span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        F = objective_matrix(objectives, [t.metrics for t in front])
        hv = f"{hypervolume((F - ideal) / span, np.full(F.shape[1], 1.1)):.4f}"
    return {
        "space": str(meta["space"]),
        "strategy": str(meta["strategy"]),
        "seed": str(meta["seed"]),
        "evaluations (budget)": f"{charged} of {meta['budget']}",
        "completed trials": str(len(done)),
        "failed trials": str(len(trials) - len(done)),
        "feasible trials": str(len(feasible)),
        "Pareto front size": str(len(front)),
        "hypervolume (scaled to observed ranges, ref 1.1)": hv,
        "this run": f"{charged - before} new evaluations in {wall:.1f} s",
        "config": str(meta.get("config_path", "")),
    }


def _problem_from_meta(meta: dict[str, Any]) -> tuple[list[Objective], list[Constraint]]:
    objectives = [Objective(m, d) for m, d in meta["objectives"]]
    constraints = [Constraint(m, le=le, ge=ge) for m, le, ge in meta["constraints"]]
    return objectives, constraints


def _write(out: Path, meta: dict[str, Any], trials: list[Trial], summary: dict[str, str]) -> Any:
    from hwnas.report import write_outputs

    objectives, constraints = _problem_from_meta(meta)
    title = f"hwnas: {meta['space']} / {meta['strategy']} / " + ", ".join(
        o.metric for o in objectives
    )
    return write_outputs(
        out,
        trials=trials,
        objectives=objectives,
        constraints=constraints,
        summary=summary,
        title=title,
    )


def _stdout() -> Console:
    console = Console()
    if not console.is_terminal:  # files and pipes get whole lines, not 80 columns
        console = Console(width=240)
    return console


def _print_front(
    pareto: Any, objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> None:
    console = _stdout()
    table = Table(title=f"Pareto front ({len(pareto)} architectures)", title_justify="left")
    shown = [o.metric for o in objectives]
    shown += [c.metric for c in constraints if c.metric not in shown]
    for col in ["trial", "arch", *shown]:
        table.add_column(
            col,
            no_wrap=col != "arch",
            overflow="fold",
            justify="left" if col == "arch" else "right",
        )
    if len(pareto):
        first = objectives[0]
        rows = pareto.sort_values(first.metric, ascending=first.direction == "minimize")
        for _, row in rows.iterrows():
            cells = [str(int(row["trial"])), str(row["arch"])]
            cells += [f"{float(row[m]):.4g}" for m in shown]
            table.add_row(*cells)
    console.print(table)


# -- report -------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from hwnas.storage import SQLiteStore

    db = args.out / "study.db"
    if not db.is_file():
        raise ConfigError(f"{args.out} holds no study.db; give the --out folder of a search")
    store = SQLiteStore(db)
    try:
        meta_all, trials = store.load()
    finally:
        store.close()
    meta = meta_all.get("report")
    if meta is None:
        raise ConfigError(f"{db} has no report settings; run 'hwnas search' into it first")
    charged = sum(t.charged for t in trials)
    summary = _summary(meta, trials, charged, 0.0, charged)
    summary.pop("this run")
    outputs = _write(args.out, meta, trials, summary)
    objectives, constraints = _problem_from_meta(meta)
    _print_front(outputs.pareto, objectives, constraints)
    _stdout().print(f"wrote {', '.join(str(p) for p in outputs.files.values())}", highlight=False)
    return 0


# -- list ---------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from hwnas import list_evaluators, list_spaces, list_strategies

    kinds = {"spaces": list_spaces, "strategies": list_strategies, "evaluators": list_evaluators}
    console = _stdout()
    for kind, fn in kinds.items():
        if args.kind in (None, kind):
            console.print(f"{kind}: {', '.join(fn())}", highlight=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
