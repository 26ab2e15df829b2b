"""One typed registry per component kind, filled by a decorator.

Example:
    >>> from hwnas.registry import Registry
    >>> SHAPES: Registry[type] = Registry("shape")
    >>> @SHAPES.register("square")
    ... class Square:
    ...     def __init__(self, *, side: float = 1.0) -> None:
    ...         self.side = side
    >>> SHAPES.create("square", side=2.0).side
    2.0
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from hwnas.errors import ConfigError

T = TypeVar("T")


def closest(name: str, options: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A short hint naming the options closest to ``name`` (or all of them when few)."""
    close = difflib.get_close_matches(name, list(options), n=n, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = sorted(options)
    if len(shown) > 12:
        shown = [*shown[:12], "..."]
    return "choose from " + ", ".join(shown)


def factory_parameters(factory: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    """The parameters a factory takes: a class's ``__init__`` (without ``self``), even where a
    base class defines ``__new__(*args, **kwargs)``; none for a class without ``__init__``."""
    if isinstance(factory, type):
        init = factory.__init__  # type: ignore[misc]
        if init is object.__init__:
            return {}
        params = list(inspect.signature(init).parameters.items())[1:]
        return dict(params)
    return inspect.signature(factory).parameters


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], what: str) -> None:
    """Raise :class:`ConfigError` if ``options`` holds a keyword ``factory`` does not accept."""
    params = factory_parameters(factory)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and n != "self"
    ]
    for key in options:
        if key not in accepted:
            hint = closest(key, accepted) if accepted else "it takes no options"
            raise ConfigError(f"{what} has no option {key!r}; {hint}")


def check_required(
    factory: Callable[..., Any],
    options: Mapping[str, Any],
    what: str,
    supplied: tuple[str, ...] = (),
) -> None:
    """Raise :class:`ConfigError` if ``options`` lacks a keyword ``factory`` requires (those in
    ``supplied`` are given by the caller later, e.g. an evaluator's ``context``)."""
    for n, p in factory_parameters(factory).items():
        required = p.default is inspect.Parameter.empty and p.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
        if required and n != "self" and n not in supplied and n not in options:
            raise ConfigError(f"{what} needs the option {n!r}; add it to its options")


class Registry(Generic[T]):
    """Maps names to factories of one component kind.

    Unknown names raise :class:`ConfigError` with the closest registered names; registering a
    name twice raises ``ValueError``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; {closest(name, self.names())}"
            ) from None

    def create(self, name: str, **options: Any) -> T:
        factory = self.get(name)
        what = f"{self.kind} {name!r}"
        check_options(factory, options, what)
        check_required(factory, options, what)
        return factory(**options)

    def name_of(self, factory: object) -> str | None:
        """The name ``factory`` is registered under, or None."""
        return next((n for n, f in self._entries.items() if f is factory), None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
