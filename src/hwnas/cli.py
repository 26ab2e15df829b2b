"""The ``hwnas`` command line, built on the public API only.

    hwnas search CONFIG.yaml --out DIR [--budget N] [--seed S]   run or resume a study
    hwnas report DIR                                             rebuild tables and plots
    hwnas list [spaces|strategies|evaluators]                    what is registered
    hwnas hw measure|calibrate|predict ...                       latency on this machine
    hwnas supernet train CONFIG.yaml --out DIR                   train a config's supernet
    hwnas export DIR --trial N --out PATH                        a trial as a checked model

Bad input prints one line ``error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from hwnas.cli_output import (
    positive_int,
    print_front,
    problem_from_meta,
    quiet_logger,
    stdout,
    summary_of,
    write_files,
)
from hwnas.cli_search import cmd_search
from hwnas.errors import ConfigError, HwnasError, one_line

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
        line = one_line(exc)
        err.print(
            f"[bold red]error:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True
        )
        return EXIT_BAD_INPUT


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
        "--workers", type=positive_int, default=None, help="evaluations in flight at once"
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

    from hwnas.cli_supernet import add_supernet_commands

    add_supernet_commands(sub)

    from hwnas.cli_export import add_export_command

    add_export_command(sub)

    ls = sub.add_parser("list", help="list registered spaces, strategies and evaluators")
    ls.add_argument("kind", nargs="?", choices=["spaces", "strategies", "evaluators"])
    ls.set_defaults(func=cmd_list)
    return p


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
    if "gradient" in meta_all:  # a gradient search's weights per epoch, for the report
        meta = {**meta, "gradient": meta_all["gradient"]}
    charged = sum(t.charged for t in trials)
    summary = summary_of(meta, trials, charged, 0.0, charged)
    summary.pop("this run")
    outputs = write_files(
        args.out,
        meta,
        trials,
        summary,
        diagnostics=meta_all.get("diagnostics"),
        evaluators=_stored_evaluators(meta),
    )
    objectives, constraints = problem_from_meta(meta)
    print_front(outputs.pareto, objectives, constraints)
    stdout().print(f"wrote {', '.join(str(p) for p in outputs.files.values())}", highlight=False)
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
        with quiet_logger("hwnas.evaluation.table", logging.ERROR):  # notes were shown by search
            return build_evaluators(config, base_dir=Path(path).parent)[1]
    except (HwnasError, yaml.YAMLError) as exc:
        logging.getLogger(__name__).info("report without benchmark scores: %s", exc)
        return None


# -- list ---------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from hwnas import list_evaluators, list_spaces, list_strategies

    kinds = {"spaces": list_spaces, "strategies": list_strategies, "evaluators": list_evaluators}
    console = stdout()
    for kind, fn in kinds.items():
        if args.kind in (None, kind):
            console.print(f"{kind}: {', '.join(fn())}", highlight=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
