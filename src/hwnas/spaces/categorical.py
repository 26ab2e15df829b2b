"""A product space defined in the config alone: named slots, each a list of choices.

A user who has measured or trained a set of their own architectures describes them by the
choices that tell them apart, and keys a CSV by the canonical string (the choices joined by the
separator, in slot order); the ``table`` evaluator then scores them and every sampling strategy
can search them. Example config::

    space:
      name: categorical
      options:
        slots:
          kernel: [3, 5, 7]
          width: [w16, w32]
          activation: [relu, hswish]
        separator: "-"
    evaluators:
      - table: {path: my_models.csv, key: arch}     # rows keyed like 5-w32-hswish

The space knows nothing about what its choices mean: it has no cheap metrics, builds no
networks and cannot be relaxed by the gradient strategies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hwnas.errors import ConfigError
from hwnas.registry import closest
from hwnas.spaces.base import Arch, CategoricalSpace

# Offered, in this order, when the separator a user chose appears in a choice.
_SEPARATORS = ("-", "_", "|", "/", ":", "+", "~", ";", ".")
_QUOTE = "quote it (YAML reads yes/no/on/off/true/false as booleans)"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _choice(slot: str, value: object) -> str:
    """One choice as the string the canonical form holds, or a ConfigError naming the fix."""
    where = f"categorical: slot {slot!r}: choice {_shown(value)}"
    if isinstance(value, bool) or value is None:
        what = "empty" if value is None else "a boolean"
        raise ConfigError(f"{where} is {what}; write the choice as a string and {_QUOTE}")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        # 1.0 and "1" are different keys in a table; only the user knows which one they wrote.
        raise ConfigError(
            f"{where} is a decimal number; write it in quotes (e.g. '{value}') so the canonical "
            "string is exactly what the table holds, or use whole numbers"
        )
    if isinstance(value, (list, tuple, dict, set)):
        raise ConfigError(
            f"{where} is a {'mapping' if isinstance(value, dict) else 'list'}; each choice is one "
            "string or whole number: flatten it into a single string"
        )
    if not isinstance(value, str):
        raise ConfigError(f"{where} is a {type(value).__name__}; write it as a string")
    if not value.strip():
        raise ConfigError(f"{where} is empty; give every choice a name or remove it")
    if value != value.strip():
        raise ConfigError(f"{where} has leading or trailing spaces; remove them")
    return value


def _slot(name: object, values: object) -> tuple[str, tuple[str, ...]]:
    """A slot's name and its choices as strings, checked."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"categorical: slot name {_shown(name)} is not a non-empty string; name every slot "
            f"with text and {_QUOTE}"
        )
    if not isinstance(values, (list, tuple)):
        example = f"[{values}]" if isinstance(values, (str, int)) else "[a, b]"
        raise ConfigError(
            f"categorical: slot {name!r} must be a list of choices, got {_shown(values)}; "
            f"write it as a list, e.g. {name}: {example}"
        )
    if not values:
        raise ConfigError(f"categorical: slot {name!r} has no choices; give it at least one")
    choices = tuple(_choice(name, v) for v in values)
    seen: dict[str, int] = {}
    for i, c in enumerate(choices):
        if c in seen:
            raise ConfigError(
                f"categorical: slot {name!r} lists choice {c!r} twice (entries {seen[c]} and {i}, "
                "counting from 0, compared as strings); keep one"
            )
        seen[c] = i
    return name, choices


def _clashes(choice: str, separator: str) -> bool:
    """Whether ``choice`` could blur where a joined string splits: it contains the separator,
    or starts or ends with one of its characters (``a-`` next to ``--`` reads as ``a---``)."""
    return separator in choice or choice[0] in separator or choice[-1] in separator


class UserCategoricalSpace(CategoricalSpace):
    """A product of named slots whose choices a user lists in the config.

    Args:
        slots: slot name -> list of choices, in the order the canonical string lists them
            (a YAML mapping keeps its order). Choices are strings or whole numbers (stored as
            strings: ``[3, 5]`` gives ``"3"`` and ``"5"``); at least one slot, at least one
            choice per slot, no choice twice in a slot, and at least two architectures in all.
        separator: what joins the choices in the canonical string (default ``-``). No choice may
            contain it, or start or end with one of its characters, so a string splits one way.

    The architecture dict is ``{"ops": [choice per slot]}``; :attr:`slot_names` names the
    positions.

    Example:
        >>> space = UserCategoricalSpace(slots={"kernel": [3, 5], "act": ["relu", "hswish"]})
        >>> arch = space.from_string("5-hswish")
        >>> arch
        {'ops': ['5', 'hswish']}
        >>> space.to_string(arch), space.size, space.slot_names
        ('5-hswish', 4, ('kernel', 'act'))
    """

    name = "categorical"

    def __init__(self, *, slots: Mapping[Any, Any], separator: str = "-") -> None:
        if not isinstance(slots, Mapping):
            raise ConfigError(
                f"categorical: slots must be a mapping of slot name -> list of choices, got "
                f"{_shown(slots)}; e.g. slots: {{kernel: [3, 5], act: [relu, hswish]}}"
            )
        if not slots:
            raise ConfigError(
                "categorical: slots is empty; give at least one slot, e.g. "
                "slots: {kernel: [3, 5], act: [relu, hswish]}"
            )
        if not isinstance(separator, str) or not separator:
            raise ConfigError(
                f"categorical: separator must be a non-empty string, got {_shown(separator)}; "
                "e.g. separator: '-'"
            )
        checked = [_slot(n, v) for n, v in slots.items()]
        for slot, choices in checked:
            for c in choices:
                if _clashes(c, separator):
                    raise ConfigError(
                        f"categorical: slot {slot!r}: choice {c!r} contains the separator "
                        f"{separator!r} (or starts or ends with one of its characters), so "
                        f"canonical strings would be ambiguous; {self._other_separator(checked)}"
                    )
        self.slot_names: tuple[str, ...] = tuple(n for n, _ in checked)
        self.slots: tuple[tuple[str, ...], ...] = tuple(c for _, c in checked)
        self.separator = separator
        if self.size == 1:
            raise ConfigError(
                "categorical: every slot has a single choice, so the space holds one "
                "architecture; give some slot two or more choices"
            )
        # What identifies the space in a study's store: the same space whether its choices were
        # written 3 or '3', the separator given or left at its default.
        self.options = {
            "slots": {n: list(c) for n, c in checked},
            "separator": separator,
        }

    @staticmethod
    def _other_separator(checked: list[tuple[str, tuple[str, ...]]]) -> str:
        for sep in _SEPARATORS:
            if not any(_clashes(c, sep) for _, choices in checked for c in choices):
                return f"set another separator, e.g. separator: {sep!r}, or rename the choice"
        return "set a separator of characters no choice starts or ends with, or rename the choice"

    # -- strings --------------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        return self.separator.join(self.validate(arch)["ops"])

    def from_string(self, text: str) -> Arch:
        s = str(text).strip()
        parts = s.split(self.separator)
        if len(parts) != len(self.slots):
            example = self.separator.join(c[0] for c in self.slots)
            raise ConfigError(
                f"categorical: {_shown(s)} has {len(parts)} part(s) joined by "
                f"{self.separator!r}, expected {len(self.slots)} "
                f"({self.separator.join(self.slot_names)}); e.g. {example!r}"
            )
        return self.validate({"ops": parts})

    def validate(self, arch: Arch) -> Arch:
        ops = self._ops(arch)
        for i, (op, choices) in enumerate(zip(ops, self.slots)):
            if op not in choices:
                raise ConfigError(
                    f"categorical: unknown choice {_shown(op)} for slot {self.slot_names[i]!r} "
                    f"(position {i}); {closest(str(op), choices)}"
                )
        return {"ops": ops}
