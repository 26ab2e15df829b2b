"""A derived cell moved into a target's band, and moved again once its cost was measured: the
rescaled band, the directions, and the cases that leave it alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.oneshot.relax.band import band, fitted_cost, repair
from hwnas.oneshot.relax.cost_model import SlotCost
from hwnas.oneshot.relax.methods import method_settings
from hwnas.spaces import NB201Space

SPACE = NB201Space()
OPS = list(SPACE.slots[0])
# none, skip, conv1x1, conv3x3, pool: 0 / 0.5 / 2 / 5 / 1 ms per edge on top of 1 ms
COST = SlotCost("latency_ms@dev", "ms", 1.0, [[0.0, 0.5, 2.0, 5.0, 1.0]] * 6, [OPS] * 6)
SETTINGS = method_settings("darts", {"cost": {"source": "flops"}, "target": 20.0})
# An architecture distribution that prefers convolutions, 3x3 most.
PROBS = [np.array([0.05, 0.1, 0.25, 0.5, 0.1])] * 6
START = (3, 3, 3, 2, 0, 0)  # 1 + 5 + 5 + 5 + 2 = 18 ms fitted: in the band [18, 20]


def test_the_band_is_the_tolerance_under_the_target():
    assert band(SETTINGS) == (18.0, 20.0)
    assert fitted_cost(SPACE, SETTINGS, COST, START) == 18.0


@pytest.mark.parametrize("measured", [18.0, 19.5, 20.0])
def test_a_measurement_in_the_band_moves_nothing(measured):
    assert repair(SPACE, SETTINGS, COST, PROBS, START, measured) is None


@pytest.mark.parametrize("measured", [math.nan, math.inf, 0.0, -3.0])
def test_a_measurement_that_is_no_cost_moves_nothing(measured):
    assert repair(SPACE, SETTINGS, COST, PROBS, START, measured) is None


def test_over_the_band_moves_down_by_the_models_error():
    measured = 27.0  # the model is 1.5x off here
    moved = repair(SPACE, SETTINGS, COST, PROBS, START, measured)
    assert moved is not None
    fitted = fitted_cost(SPACE, SETTINGS, COST, moved)
    # Rescaled band: [18, 20] / 1.5 = [12, 13.33]; at the same error the cell lands in [18, 20].
    assert 12.0 <= fitted <= 20.0 / 1.5
    assert 18.0 <= 1.5 * fitted <= 20.0


def test_under_the_band_moves_up_without_passing_the_rescaled_top():
    moved = repair(SPACE, SETTINGS, COST, PROBS, START, 12.0)  # the model is 1.5x high here
    assert moved is not None
    fitted = fitted_cost(SPACE, SETTINGS, COST, moved)
    assert 27.0 <= fitted <= 30.0  # [18, 20] / (12 / 18)


def test_no_move_that_changes_the_cell_gives_none():
    lowest = (0,) * 6  # 1 ms: nothing is cheaper
    assert repair(SPACE, SETTINGS, COST, PROBS, lowest, 40.0) is None


def test_settings_without_a_target_have_no_band():
    with pytest.raises(ValueError, match="needs settings with a target"):
        band(method_settings("darts", {}))


def test_target_repairs_is_a_whole_number():
    from hwnas.errors import ConfigError

    with pytest.raises(ConfigError, match="target_repairs must be a whole number >= 0, got -1"):
        method_settings("darts", {"target_repairs": -1})


def _device(fitted: float) -> float:
    """A device the additive model misses by an offset and a slope: 2 * fitted - 15 ms."""
    return 2.0 * fitted - 15.0


def test_a_second_repair_follows_the_line_through_both_measurements():
    previous = (12.0, _device(12.0))  # the cell this one was repaired from: 9 ms
    measured = _device(18.0)  # 21 ms, over the band
    moved = repair(SPACE, SETTINGS, COST, PROBS, START, measured, previous)
    assert moved is not None
    fitted = fitted_cost(SPACE, SETTINGS, COST, moved)
    assert 16.5 <= fitted <= 17.5  # [18, 20] mapped through the secant of slope 2
    assert 18.0 <= _device(fitted) <= 20.0


def test_a_secant_that_does_not_rise_falls_back_to_the_models_error():
    measured = 27.0
    alone = repair(SPACE, SETTINGS, COST, PROBS, START, measured)
    for previous in [(20.0, 30.0), (18.0, 10.0)]:  # falling; the same fitted cost
        assert repair(SPACE, SETTINGS, COST, PROBS, START, measured, previous) == alone


def test_choose_keeps_the_band_then_the_costliest_under_then_the_cheapest_over():
    from hwnas.oneshot.relax.band import choose

    assert choose([("a", 21.0), ("b", 18.5), ("c", 12.0), ("d", 19.0)], 18.0, 20.0) == "d"
    assert choose([("a", 21.0), ("b", 12.0), ("c", 16.0), ("d", 30.0)], 18.0, 20.0) == "c"
    assert choose([("a", 25.0), ("b", 21.0), ("c", 30.0)], 18.0, 20.0) == "b"
    with pytest.raises(ValueError, match="at least one"):
        choose([], 18.0, 20.0)
