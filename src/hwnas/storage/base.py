"""The Store ABC: an append-only log of finished trials plus a few study attributes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, TypeVar

from hwnas.trial import Trial

_S = TypeVar("_S", bound="Store")


class Store(ABC):
    """Durable home of a study: :meth:`append` commits one trial before it returns.

    A store is a context manager that closes itself on exit.

    Example:
        >>> with MemoryStore() as store:
        ...     store.append(Trial(number=0, arch="a", metrics={"m": 1.0}))
        ...     len(store.load()[1])
        1
    """

    @abstractmethod
    def load(self) -> tuple[dict[str, Any], list[Trial]]:
        """Study attributes and all trials in tell order."""

    @abstractmethod
    def append(self, trial: Trial) -> None:
        """Commit one finished trial."""

    @abstractmethod
    def set_meta(self, values: dict[str, Any]) -> None:
        """Store study attributes (JSON-serialisable values)."""

    def close(self) -> None:
        """Release resources (no-op by default)."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemoryStore(Store):
    """A store that lives only as long as the process (tests, notebooks)."""

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._trials: list[Trial] = []

    def load(self) -> tuple[dict[str, Any], list[Trial]]:
        return dict(self._meta), list(self._trials)

    def append(self, trial: Trial) -> None:
        self._trials.append(trial)

    def set_meta(self, values: dict[str, Any]) -> None:
        self._meta.update(values)
