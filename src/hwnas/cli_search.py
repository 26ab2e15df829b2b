"""``hwnas search``: check the flags and the config, build everything, then open the study
folder, run the study on the chosen executor with progress, and write the files."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from hwnas.cli_output import (
    check_file_flag,
    check_out_folder,
    print_front,
    quiet_logger,
    stdout,
    summary_of,
    write_files,
)
from hwnas.cli_progress import JsonLog, SearchProgress
from hwnas.errors import ConfigError, HwnasError, StoreError


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
        check_file_flag("--log-json", args.log_json, "append to")
    # Everything is built and checked before a file is written: a config error leaves nothing.
    # A table's excluded rows are logged as it loads and printed below as warnings: once.
    with quiet_logger("hwnas.evaluation.table", logging.ERROR):
        parts = build_parts(
            config,
            base_dir=args.config.resolve().parent,
            budget=args.budget,
            seed=args.seed,
            out_dir=out,
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
    # The supernet is trained once everything is checked (the executor too) and before the
    # study starts; a finished one in its folder is reused, so a resume trains nothing.
    try:
        ready = parts.supernet is None or _supernet_ready(parts, err, quiet=args.quiet)
    except BaseException:
        backend.close()
        raise
    if ready:
        try:
            ready = _gradient_ready(parts, err, quiet=args.quiet)
        except BaseException:
            backend.close()
            raise
    if not ready:
        backend.close()
        return 130
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
            "evaluators": [ev.describe() for ev in parts.evaluators],
        }
        store.set_meta({"report": meta})
        gradient = getattr(parts.strategy, "result", None)
        if gradient is not None:
            meta_gradient = gradient.to_dict()
            store.set_meta({"gradient": meta_gradient})
        write_config_copy(out, args.config, parts)
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
        summary = summary_of(meta, trials, study.n_charged, wall, done_before)
        summary["executor"] = backend.describe()
        diagnostics = study.strategy.diagnostics()
        store.set_meta({"diagnostics": _plain(diagnostics)})
        report_meta = meta if gradient is None else {**meta, "gradient": meta_gradient}
        outputs = write_files(
            out, report_meta, trials, summary, diagnostics=diagnostics, evaluators=parts.evaluators
        )
        if isinstance(stopped, HwnasError):
            raise stopped
        if not args.quiet:
            print_front(outputs.pareto, study.problem.objectives, study.problem.constraints)
            if diagnostics:
                stdout().print(
                    "; ".join(f"{k} {_fmt(v)}" for k, v in diagnostics.items()), highlight=False
                )
            stdout().print(
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


def _supernet_ready(parts: Any, err: Console, *, quiet: bool) -> bool:
    """Train the config's supernet before the study (or reuse the finished one in its folder);
    False when the user interrupted training (its finished epochs are kept)."""
    from hwnas.cli_supernet import describe_result, train_config_supernet

    assert parts.dataset is not None  # the config check asks for data beside a supernet
    try:
        result = train_config_supernet(parts.space, parts.dataset, parts.supernet, err, quiet=quiet)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: the supernet's finished epochs are stored in {parts.supernet.dir}; "
            "re-run the same command to resume",
            highlight=False,
            soft_wrap=True,
        )
        return False
    if not quiet:
        err.print(escape(describe_result(result)), highlight=False, soft_wrap=True)
    return True


def _gradient_ready(parts: Any, err: Console, *, quiet: bool) -> bool:
    """Run a gradient strategy's search before the study (resumed from its last epoch, or a
    finished one reused); False when the user interrupted it."""
    from hwnas.strategies.differentiable import GradientStrategy

    strategy = parts.strategy
    if not isinstance(strategy, GradientStrategy):
        return True

    def show(epoch: dict[str, Any]) -> None:
        cost = epoch["expected_cost"]
        tail = "" if cost != cost else f", expected cost {cost:.4g}"  # NaN without a cost model
        err.print(
            f"{strategy.method} {epoch['label']}: epoch {epoch['epoch']}/{epoch['epochs']}, "
            f"loss {epoch['loss']:.4f}, train accuracy {epoch['accuracy']:.3f}{tail}",
            highlight=False,
            soft_wrap=True,
        )

    strategy.progress = None if quiet else show
    try:
        result = strategy.prepare()
    except KeyboardInterrupt:
        err.print(
            f"interrupted: the search's finished epochs are stored in {strategy.search_folder()}; "
            "re-run the same command to resume",
            highlight=False,
            soft_wrap=True,
        )
        return False
    if not quiet:
        archs = result.ranked_archs()
        err.print(
            f"{strategy.method}: search done in {result.wall_s:.1f} s; {len(archs)} derived "
            f"architecture(s) to evaluate, first {archs[0]}",
            highlight=False,
            soft_wrap=True,
        )
    return True


def write_config_copy(out: Path, config_path: Path, parts: Any) -> None:
    """Write ``out/config.yaml``: the config as given, with what the run used filled in (the
    seed and budget after ``--seed``/``--budget``, and ``base_dir``, the absolute folder its
    relative paths resolve against), so ``hwnas export`` can rebuild the study's parts from
    the output folder alone."""
    import os

    import yaml

    from hwnas.config import config_base_dir

    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["base_dir"] = str(config_base_dir(parts.config, config_path.resolve().parent))
    data["seed"] = parts.seed
    if parts.config.data is not None:
        data["data"] = dict(parts.config.data)  # the mapping, also where a name was given
    data["budget"] = {"evaluations": parts.budget}
    header = (
        f"# The config of this study, written by hwnas search from {config_path.resolve()}:\n"
        "# as given, with the seed and budget it ran with and the folder its relative paths\n"
        "# resolve against (base_dir).\n"
    )
    path = out / "config.yaml"
    tmp = out / f".config.yaml.{os.getpid()}.tmp"
    try:
        tmp.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(
            f"cannot write {path} ({exc.strerror or exc}); give an --out folder you can write to"
        ) from None


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
