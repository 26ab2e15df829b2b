"""Argument checks shared by the benchmark scripts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from hwnas.errors import HwnasError
from hwnas.spaces import create_space


def check_spaces(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Exit with the parser's one-line error at the first ``--spaces`` name hwnas does not know."""
    for name in names:
        try:
            create_space(name)
        except HwnasError as exc:
            parser.error(str(exc))
