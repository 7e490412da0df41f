"""The inline SVG loss curve on run pages and the dashboard."""

from training.templatetags.training_tags import loss_curve, smoothed


def test_it_draws_the_raw_loss_and_a_smoothed_trend():
    svg = str(loss_curve([[1, 3.0], [2, 2.0], [3, 2.5]], 4))

    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert 'aria-label="Training loss from 3.00 to 2.50"' in svg
    assert "step (of 4)" in svg


def test_the_trend_is_an_exponential_moving_average():
    assert smoothed([3.0, 2.0, 2.5]) == [3.0, 3.0 * 0.8 + 2.0 * 0.2, (3.0 * 0.8 + 2.0 * 0.2) * 0.8 + 2.5 * 0.2]


def test_before_the_first_step_it_says_so():
    assert "appears after the first step" in str(loss_curve([], 40))


def test_a_flat_curve_does_not_divide_by_zero():
    assert "<svg" in str(loss_curve([[1, 2.0], [2, 2.0]]))
