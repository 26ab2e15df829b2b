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
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hwnas.cli_progress import JsonLog, SearchProgress
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one line naming the problem, exit code 2."""

    def error(self, message: str) -> Any:
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(self.prog)}: {escape(message)}; see "
            f"'{escape(self.prog)} --help'",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwnas", description="Hardware-aware neural architecture search")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("search", help="run (or resume) a study from a YAML config")
    s.add_argument("config", type=Path)
    s.add_argument("--out", type=Path, required=True, help="output folder (re-use it to resume)")
    s.add_argument("--budget", type=int, default=None, help="evaluations (overrides the config)")
    s.add_argument("--seed", type=int, default=None, help="seed (overrides the config)")
    s.add_argument(
        "--executor",
        choices=["sequential", "process", "ray"],
        default=None,
        help="where evaluations run (overrides execution.executor; default sequential)",
    )
    s.add_argument(
        "--workers", type=_positive_int, default=None, help="evaluations in flight at once"
    )
    s.add_argument(
        "--address", default=None, help="Ray cluster to join (default: start a local Ray)"
    )
    s.add_argument(
        "--log-json", type=Path, default=None, help="append one JSON object per trial to a file"
    )
    s.add_argument(
        "--progress-every",
        type=int,
        default=10,
        help="when stderr is not a terminal, a progress line every N trials (0: none)",
    )
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
    from hwnas.config import build_parts, load_config

    config = load_config(args.config)
    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"--budget must be a positive number of evaluations, got {args.budget}")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.progress_every < 0:
        raise ConfigError(f"--progress-every must be >= 0, got {args.progress_every}")
    execution = config.execution.model_copy(
        update={
            k: v
            for k, v in {
                "executor": args.executor,
                "workers": args.workers,
                "address": args.address,
            }.items()
            if v is not None
        }
    )
    config = config.model_copy(update={"execution": execution})
    out: Path = args.out
    check_out_folder(out)
    if args.log_json is not None:
        check_log_file(args.log_json)
    # Everything is built and checked before a file is written: a config error leaves nothing.
    # A table's excluded rows are logged as it loads and printed below as warnings: once.
    with _logger_level("hwnas.evaluation.table", logging.ERROR):
        parts = build_parts(
            config, base_dir=args.config.resolve().parent, budget=args.budget, seed=args.seed
        )
    from hwnas.execution import create_backend

    err = Console(stderr=True)
    for ev in parts.evaluators:
        for note in ev.notes():
            err.print(f"warning: {escape(note)}", highlight=False, soft_wrap=True)
    # The executor starts before the store is opened: one that cannot start leaves no study.db.
    backend = create_backend(
        execution.executor,
        parts.evaluators,
        workers=execution.workers,
        address=execution.address,
        timeout_s=parts.policy.timeout_s,
    )
    with closing(backend), open_study_folder(out, parts) as (store, study):
        meta = {
            "objectives": [[o.metric, o.direction] for o in study.problem.objectives],
            "constraints": [[c.metric, c.le, c.ge] for c in study.problem.constraints],
            "space": study.space.name,
            "strategy": parts.strategy_name,
            "seed": study.seed,
            "budget": parts.budget,
            "config_path": str(args.config.resolve()),
            "config_text": args.config.read_text(),
            "notes": [n for ev in parts.evaluators for n in ev.notes()],
        }
        store.set_meta({"report": meta})
        done_before = study.n_charged
        stopped: BaseException | None = None
        callbacks: list[Any] = []
        log_json = JsonLog(args.log_json) if args.log_json is not None else None
        if log_json is not None:
            callbacks.append(log_json)
        start = time.perf_counter()
        progress = SearchProgress(
            err,
            budget=parts.budget,
            done_before=done_before,
            every=args.progress_every,
            quiet=args.quiet,
        )
        try:
            with progress:
                study.optimize(
                    parts.budget,
                    executor=backend,
                    policy=parts.policy,
                    callbacks=[progress, *callbacks],
                )
        except (KeyboardInterrupt, HwnasError) as exc:
            stopped = exc  # write what is stored before saying why the run stopped
        finally:
            if log_json is not None:
                log_json.close()
        wall = time.perf_counter() - start
        trials = study.trials
        summary = _summary(meta, trials, study.n_charged, wall, done_before)
        summary["executor"] = backend.describe()
        diagnostics = study.strategy.diagnostics()
        store.set_meta({"diagnostics": _plain(diagnostics)})
        outputs = _write(
            out, meta, trials, summary, diagnostics=diagnostics, evaluators=parts.evaluators
        )
        if isinstance(stopped, HwnasError):
            raise stopped
        if not args.quiet:
            _print_front(outputs.pareto, study.problem.objectives, study.problem.constraints)
            if diagnostics:
                _stdout().print(
                    "; ".join(f"{k} {_fmt(v)}" for k, v in diagnostics.items()), highlight=False
                )
            _stdout().print(
                f"{study.n_charged} of {parts.budget} evaluations stored in {out / 'study.db'}"
                f" ({study.n_charged - done_before} new, {wall:.1f} s, {study.n_failed} failed); "
                f"report: {outputs.files['report.html']}",
                highlight=False,
            )
        if stopped is not None:
            err.print(
                "interrupted: every finished evaluation is stored; re-run the same command to "
                "resume",
                highlight=False,
            )
            return 130
        return 0


@contextmanager
def _logger_level(name: str, level: int) -> Iterator[None]:
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def check_out_folder(out: Path) -> None:
    """Raise :class:`ConfigError` when ``out`` cannot hold a study (before anything is built)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    _check_writable("--out", out, "folder", "give a folder you can write to")


def check_log_file(path: Path) -> None:
    """Raise :class:`ConfigError` when ``--log-json`` cannot be appended to (checked before the
    study is opened, so a bad flag leaves no new study behind)."""
    if path.is_dir():
        raise ConfigError(f"--log-json {path} is a folder; give a file to append to")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"--log-json {path} is not writable; give a file you can write to")
    _check_writable("--log-json", path, "file", "give a file in a folder you can write to")


def _check_writable(flag: str, path: Path, what: str, fix: str) -> None:
    """The nearest existing folder above (or at) ``path`` must be one this process can write in."""
    probe = path if what == "folder" else path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} {path}: {probe} is a file, so the {what} cannot be made there")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {path}: {probe} is not writable (read-only or no permission); {fix}"
        )


@contextmanager
def open_study_folder(out: Path, parts: Any) -> Iterator[tuple[Any, Any]]:
    """The store and the (resumed) study in ``out``; when the study cannot be made, nothing
    this call created is left behind (no empty ``study.db``, no new empty folder)."""
    from hwnas.storage import SQLiteStore

    made_folder = not out.exists()
    db = out / "study.db"
    new_db = not db.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--out {out}: cannot make the folder ({exc.strerror}); give a folder you can write to"
        ) from None
    store = None
    try:
        store = SQLiteStore(db)
        study = parts.make_study(store)
    except BaseException:
        if store is not None:
            store.close()
        if new_db:
            for extra in ("", "-wal", "-shm", "-journal"):
                Path(f"{db}{extra}").unlink(missing_ok=True)
            for leftover in out.glob(".study.db*"):
                leftover.unlink(missing_ok=True)
        if made_folder and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    try:
        yield store, study
    finally:
        store.close()


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in values.items()}


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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


def _write(
    out: Path,
    meta: dict[str, Any],
    trials: list[Trial],
    summary: dict[str, str],
    *,
    diagnostics: dict[str, Any] | None = None,
    evaluators: Sequence[Any] | None = None,
) -> Any:
    from hwnas.report import write_outputs
    from hwnas.report.reference import reference_table

    objectives, constraints = _problem_from_meta(meta)
    title = f"hwnas: {meta['space']} / {meta['strategy']} / " + ", ".join(
        o.metric for o in objectives
    )
    names = [o.metric for o in objectives] + [c.metric for c in constraints]
    reference = reference_table(evaluators, names) if evaluators else None
    return write_outputs(
        out,
        trials=trials,
        objectives=objectives,
        constraints=constraints,
        summary=summary,
        title=title,
        diagnostics=diagnostics,
        notes=meta.get("notes", ()),
        reference=reference,
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
    store = SQLiteStore(db, readonly=True)
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
    outputs = _write(
        args.out,
        meta,
        trials,
        summary,
        diagnostics=meta_all.get("diagnostics"),
        evaluators=_stored_evaluators(meta),
    )
    objectives, constraints = _problem_from_meta(meta)
    _print_front(outputs.pareto, objectives, constraints)
    _stdout().print(f"wrote {', '.join(str(p) for p in outputs.files.values())}", highlight=False)
    return 0


def _stored_evaluators(meta: dict[str, Any]) -> list[Any] | None:
    """The study's evaluators rebuilt from its stored config, to score it against benchmark
    tables in the report; None when they cannot be rebuilt (data moved, config gone)."""
    from hwnas.config import build_evaluators, parse_config

    text, path = meta.get("config_text"), meta.get("config_path")
    if not text or not path:
        return None
    try:
        import yaml

        config = parse_config(yaml.safe_load(text), str(path))
        return build_evaluators(config, base_dir=Path(path).parent)[1]
    except (HwnasError, yaml.YAMLError) as exc:
        logging.getLogger(__name__).info("report without benchmark scores: %s", exc)
        return None


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
