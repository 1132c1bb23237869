"""Planned sample size (Evan Miller's formula, REFERENCES.md case 1) and days remaining."""

import pytest

from experiments.stats import days_remaining, required_sample_size


def test_reference_case_1_evan_miller():
    assert required_sample_size(0.20, 0.05, alpha=0.05, power=0.8) == 1030


def test_smaller_effects_and_stricter_settings_need_more_customers():
    base = required_sample_size(0.10, 0.02)
    assert required_sample_size(0.10, 0.01) > 3 * base
    assert required_sample_size(0.10, 0.02, alpha=0.01) > base
    assert required_sample_size(0.10, 0.02, power=0.9) > base


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 0.0, "mde": 0.05}, "baseline"),
        ({"baseline": 1.0, "mde": 0.05}, "baseline"),
        ({"baseline": 0.2, "mde": 0.0}, "mde"),
        ({"baseline": 0.2, "mde": -0.05}, "mde"),
        ({"baseline": 0.97, "mde": 0.05}, "below 1"),
        ({"baseline": 0.2, "mde": 0.05, "alpha": 0}, "alpha"),
        ({"baseline": 0.2, "mde": 0.05, "power": 1}, "power"),
        ({"baseline": float("nan"), "mde": 0.05}, "baseline"),
    ],
)
def test_invalid_inputs_raise_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        required_sample_size(**kwargs)


def test_days_remaining():
    assert days_remaining(1030, 430, 100.0) == pytest.approx(6.0)
    assert days_remaining(1030, 1030, 100.0) == 0.0
    assert days_remaining(1030, 2000, 0.0) == 0.0
    assert days_remaining(1030, 430, 0.0) is None
    assert days_remaining(1030, 430, float("nan")) is None
