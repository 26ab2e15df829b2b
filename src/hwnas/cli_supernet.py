"""``hwnas supernet train CONFIG --out DIR``: train a config's supernet alone, and the training
step ``hwnas search`` runs before its study when the config has a ``supernet:`` block.

Training shows a rich progress bar on stderr when it is a terminal and nothing otherwise; a
finished supernet in the folder is reused without training (:func:`hwnas.oneshot.train_supernet`),
and a killed run resumes from its last finished epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwnas.cli_output import check_out_folder, stdout
from hwnas.errors import ConfigError

if TYPE_CHECKING:
    from hwnas.config import SupernetSetup
    from hwnas.data import Dataset
    from hwnas.oneshot import SupernetResult
    from hwnas.spaces.base import SearchSpace


def add_supernet_commands(sub: Any) -> None:
    sn = sub.add_parser("supernet", help="weight-sharing supernets: train a config's supernet")
    ssub = sn.add_subparsers(dest="supernet_command", required=True)
    t = ssub.add_parser(
        "train",
        help="train the supernet of a config's supernet: block into a folder (reused when done)",
    )
    t.add_argument("config", type=Path)
    t.add_argument(
        "--out", type=Path, required=True, help="the supernet's folder (re-use it to resume)"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_supernet_train)


class SupernetProgress:
    """The training loop's progress callback: a bar over every epoch of every phase, with the
    last epoch's loss and validation accuracy, on a terminal; silent otherwise.

    Args:
        console: where to draw (stderr).
        total: epochs of the whole run (all phases).
        quiet: show nothing.
    """

    def __init__(self, console: Console, *, total: int, quiet: bool) -> None:
        self.console = console
        self.total = total
        self.quiet = quiet
        self.epochs = 0
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> SupernetProgress:
        if not self.quiet and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]supernet"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs {task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("supernet", total=self.total, status="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, report: Any) -> None:
        if not hasattr(report, "train_loss"):  # batch reports are not asked for
            return
        self.epochs += 1
        if self._progress is not None:
            valid = "" if report.valid_acc is None else f", valid {100 * report.valid_acc:.1f} %"
            self._progress.update(
                self._task,
                completed=min(self.epochs, self.total),
                status=f"loss {report.train_loss:.3f}{valid}",
            )


def train_config_supernet(
    space: SearchSpace,
    dataset: Dataset,
    setup: SupernetSetup,
    console: Console,
    *,
    quiet: bool,
) -> SupernetResult:
    """Train the config's supernet into ``setup.dir`` (or reuse a finished one there), with
    progress on ``console``."""
    from hwnas.oneshot import SupernetConfig, train_supernet
    from hwnas.spaces.mbv3 import MBV3Space

    if not isinstance(space, MBV3Space):  # the config check says so first; kept for the API
        raise ConfigError(f"supernets are built for space 'mbv3', not {space.name!r}")
    cfg = SupernetConfig.from_dict(setup.config)
    total = sum(c.epochs for _, c in cfg.phases())
    with SupernetProgress(console, total=total, quiet=quiet) as progress:
        return train_supernet(space, dataset, cfg, setup.dir, progress=progress)


def describe_result(result: SupernetResult) -> str:
    """One line: where the supernet is, whether it was trained now, and how its largest and
    smallest sub-networks score (percent)."""
    acc = result.accuracy
    epochs = f"{result.epochs} epoch{'s' if result.epochs != 1 else ''}"
    how = (
        f"reused (trained {epochs} before)"
        if result.reused
        else f"trained {epochs} in {result.seconds:.1f} s"
        + (" (resumed)" if result.resumed else "")
    )
    if acc.get("largest") is None:
        scores = "no validation or test images to score it on"
    else:
        scores = (
            f"{acc['split']} accuracy: largest {100 * acc['largest']:.2f} %, "
            f"smallest {100 * acc['smallest']:.2f} %"
        )
    return f"supernet in {result.out_dir}: {how}; {scores}"


def cmd_supernet_train(args: argparse.Namespace) -> int:
    from hwnas.config import build_space, load_config, load_config_data, supernet_setup
    from hwnas.evaluation.train import check_data_fits

    config = load_config(args.config)
    if config.supernet is None:
        raise ConfigError(
            f"{args.config} has no supernet: block to train; add one, e.g. "
            "supernet: {train: {epochs: 4}}"
        )
    check_out_folder(args.out)
    base_dir = args.config.resolve().parent
    # Everything is checked before the folder is made: a bad config leaves nothing behind.
    space = build_space(config)
    dataset = load_config_data(config, base_dir=base_dir)
    setup = supernet_setup(config, base_dir=base_dir, out_dir=args.out)
    assert dataset is not None and setup is not None  # parse_config checked the blocks
    check_data_fits(space, dataset, "supernet")
    setup = dataclasses.replace(setup, dir=args.out.resolve())
    start = time.perf_counter()
    err = Console(stderr=True)
    try:
        result = train_config_supernet(space, dataset, setup, err, quiet=args.quiet)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: the finished epochs are stored in {setup.dir}; re-run the same "
            "command to resume",
            highlight=False,
            soft_wrap=True,
        )
        return 130
    line = describe_result(result)
    if not result.reused:
        line += f" ({time.perf_counter() - start:.1f} s with scoring)"
    stdout().print(escape(line), highlight=False, soft_wrap=True)
    return 0
