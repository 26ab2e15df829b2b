from __future__ import annotations

import pytest

from hwnas import ConfigError, create_space, create_strategy, list_spaces, list_strategies
from hwnas.registry import Registry


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'nsga'; did you mean 'nsga2'"):
        create_strategy("nsga")
    with pytest.raises(ConfigError, match=r"unknown space 'nb210'; did you mean 'nb201'"):
        create_space("nb210")


def test_unknown_option_suggests_closest() -> None:
    with pytest.raises(
        ConfigError,
        match=r"strategy 'nsga2' has no option 'population'; did you "
        r"mean 'population_size'",
    ):
        create_strategy("nsga2", population=10)


def test_a_missing_required_option_is_one_line() -> None:
    with pytest.raises(
        ConfigError, match=r"^space 'categorical' needs the option 'slots'; add it to its options$"
    ):
        create_space("categorical")


def test_duplicate_registration_raises() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("a")(object)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(object)


def test_lists_are_sorted_and_complete() -> None:
    assert list_spaces() == ["categorical", "fbnet", "mbv3", "nb201", "resnet"]
    assert set(list_strategies()) >= {"random", "evolution", "nsga2", "local_search"}
    assert list_strategies() == sorted(list_strategies())
