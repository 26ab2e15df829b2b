"""Exceptions that carry one clear line for the user.

Every error a user can cause by bad input is a :class:`HwnasError`; its message names the problem
and the fix, and the CLI prints it as one line with exit code 2.
"""

from __future__ import annotations


def one_line(text: object) -> str:
    """``text`` on one line: its non-blank lines, stripped, joined by spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class HwnasError(Exception):
    """Base class for errors caused by input (config, data, arguments)."""


class ConfigError(HwnasError, ValueError):
    """A config or argument is invalid."""


class DataError(HwnasError):
    """A data file is missing or malformed."""


class StudyMismatchError(HwnasError):
    """A stored study does not match the config it is resumed with."""


class StoreError(HwnasError):
    """A study database or the evaluation cache cannot be read or written (disk full, I/O error)."""


class StoreLockedError(StoreError):
    """Another process holds a study database (or a program holds an SQLite lock on it)."""


class MissingExtraError(HwnasError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed; "
            f"install it with: pip install 'hwnas[{extra}]'"
        )


def require_torch(purpose: str) -> None:
    """Raise :class:`MissingExtraError` unless PyTorch can be imported."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise MissingExtraError("torch", "torch", purpose)
