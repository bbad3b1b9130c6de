"""Inventory formulas on numpy, against hand-computed cases (the Spark twins are checked in tests/spark)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from replenish.inventory import formulas
from replenish.inventory.distributions import (
    LOSS_AT_ZERO,
    cycle_service_factor,
    inverse_normal_loss,
    normal_loss,
    rounding_allowance,
    smoothed_empirical_quantile,
)
from replenish.inventory.ops import NUMPY, SPARK, Sql, col, literal


def test_normal_loss_matches_the_textbook_table() -> None:
    # Silver, Pyke & Thomas, table of G(k): G(0) = 0.3989, G(1) = 0.0833, G(2) = 0.00849.
    assert normal_loss([0.0, 1.0, 2.0]) == pytest.approx([0.3989, 0.0833, 0.00849], abs=5e-5)


def test_cycle_service_factor_is_the_normal_quantile() -> None:
    assert cycle_service_factor(0.95) == pytest.approx(1.6449, abs=1e-4)
    assert cycle_service_factor(0.5) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="service level"):
        cycle_service_factor(1.0)


def test_inverse_normal_loss_hand_cases() -> None:
    # G(k) = 0.05 at k = 1.2556 and 0.01 at k = 1.9384 (solved by hand with the table, refined by brentq).
    assert inverse_normal_loss(np.array([0.05, 0.01]), NUMPY) == pytest.approx([1.2556, 1.9384], abs=1e-4)


def test_inverse_normal_loss_inverts_normal_loss_everywhere() -> None:
    targets = np.logspace(-12, math.log10(LOSS_AT_ZERO) - 1e-9, 400)
    expected = np.array([brentq(lambda k, t=t: float(normal_loss(k)) - t, -1.0, 10.0, xtol=1e-13) for t in targets])
    assert np.max(np.abs(inverse_normal_loss(targets, NUMPY) - expected)) < 1e-5


def test_inverse_normal_loss_edges() -> None:
    result = inverse_normal_loss(np.array([LOSS_AT_ZERO, 0.7, 0.0, -1.0, np.nan]), NUMPY)
    assert result[:2].tolist() == [0.0, 0.0]  # the cycle quantity alone meets the fill rate: no safety stock
    assert np.isnan(result[2:]).all()  # a 100 % fill rate has no finite factor


def test_demand_std_combines_forecast_error_and_lead_time_spread() -> None:
    # √(9·2² + 10²·1.5²) = √(36 + 225) = √261
    assert formulas.demand_std(9.0, 2.0, 10.0, 1.5, NUMPY) == pytest.approx(math.sqrt(261.0))


def test_a_persistent_level_error_grows_with_the_square_of_the_interval() -> None:
    # √(4·1² + 4²·0.5² + 0) = √(4 + 4) = √8
    assert formulas.demand_std(4.0, 1.0, 10.0, 0.0, NUMPY, level_error_std=0.5) == pytest.approx(math.sqrt(8.0))


def test_safety_stock_with_fixed_lead_time_is_z_sigma_sqrt_lead_time() -> None:
    # σ_L = 0: SS = z·σ·√L, the day-one baseline formula.
    std = formulas.demand_std(4.0, 3.0, 25.0, 0.0, NUMPY)
    assert std == pytest.approx(6.0)
    assert formulas.cycle_safety_stock(cycle_service_factor(0.95), std, NUMPY) == pytest.approx(1.644854 * 6.0)


def test_zero_demand_needs_no_stock_and_orders_only_backorders() -> None:
    std = formulas.demand_std(7.0, 0.0, 0.0, 2.0, NUMPY)
    safety_stock = formulas.cycle_safety_stock(2.0, std, NUMPY)
    assert safety_stock == 0.0
    level = formulas.order_up_to_level(0.0, 7.0, 7.0, safety_stock)
    assert formulas.periodic_order(level, 0.0, NUMPY) == 0.0
    assert formulas.periodic_order(level, -3.0, NUMPY) == 3.0  # three units backordered
    reorder_point = formulas.reorder_point(0.0, 7.0, safety_stock)
    assert formulas.continuous_order(reorder_point, 5.0, 0.0, NUMPY) == 0.0
    assert formulas.continuous_order(reorder_point, 5.0, -3.0, NUMPY) == 5.0


def test_a_negative_cycle_factor_gives_no_safety_stock() -> None:
    assert formulas.cycle_safety_stock(-0.5, 10.0, NUMPY) == 0.0


def test_fill_rate_factor_round_trips_to_the_target_fill_rate() -> None:
    # Q = 500 units per cycle, σ = 100, β = 0.99: G(k) = 0.01·500/100 = 0.05, k = 1.2556.
    target = formulas.fill_rate_loss_target(0.99, 500.0, 100.0, NUMPY)
    assert target == pytest.approx(0.05)
    k = formulas.fill_rate_safety_factor(target, 100.0, NUMPY)
    assert k == pytest.approx(1.2556, abs=1e-4)
    assert 1.0 - 100.0 * normal_loss(k) / 500.0 == pytest.approx(0.99, abs=1e-6)


def test_fill_rate_factor_without_spread_is_zero() -> None:
    target = formulas.fill_rate_loss_target(0.99, 500.0, 0.0, NUMPY)
    assert np.isnan(target)
    assert formulas.fill_rate_safety_factor(target, 0.0, NUMPY) == 0.0


def test_levels() -> None:
    assert formulas.reorder_point(12.0, 5.0, 20.0) == 80.0
    assert formulas.order_up_to_level(12.0, 5.0, 7.0, 30.0) == 174.0


def test_economic_order_quantity() -> None:
    # D = 1200 / year, K = 50 per order, h = 25 % of 20 = 5 per unit-year: √(2·1200·50/5) = √24000.
    assert formulas.economic_order_quantity(1200.0, 50.0, 5.0, NUMPY) == pytest.approx(math.sqrt(24000.0))
    assert np.isnan(formulas.economic_order_quantity(1200.0, 50.0, 0.0, NUMPY))
    assert np.isnan(formulas.economic_order_quantity(1200.0, 50.0, np.nan, NUMPY))
    assert formulas.economic_order_quantity(0.0, 50.0, 5.0, NUMPY) == 0.0


@pytest.mark.parametrize(
    ("quantity", "moq", "pack_size", "expected"),
    [
        (23.0, 30.0, 12.0, 36.0),  # raised to the MOQ, then to whole packs
        (37.0, 10.0, 12.0, 48.0),  # rounded up, never down
        (24.000000001, 0.0, 12.0, 24.0),  # floating-point noise is not a fresh pack
        (24.0, 0.0, 12.0, 24.0),
        (0.4, 0.0, 1.0, 1.0),
        (0.0, 30.0, 12.0, 0.0),  # no need, no order, whatever the MOQ
        (-5.0, 30.0, 12.0, 0.0),
    ],
)
def test_round_order(quantity: float, moq: float, pack_size: float, expected: float) -> None:
    assert formulas.round_order(quantity, moq, pack_size, NUMPY) == expected


def test_lot_size_is_at_least_one_pack() -> None:
    assert formulas.lot_size(0.0, 0.0, 6.0, NUMPY) == 6.0
    assert formulas.lot_size(154.9, 100.0, 12.0, NUMPY) == 156.0


def test_inventory_position_with_backorders_can_be_negative() -> None:
    assert formulas.inventory_position(0.0, 10.0, 30.0, NUMPY) == -20.0
    assert formulas.inventory_position(5.0, np.nan, np.nan, NUMPY) == 5.0


def test_periodic_order_from_a_negative_position() -> None:
    assert formulas.periodic_order(200.0, -30.0, NUMPY) == 230.0
    assert formulas.periodic_order(200.0, 250.0, NUMPY) == 0.0


@pytest.mark.parametrize(
    ("position", "expected"),
    [(80.0, 50.0), (99.9, 50.0), (100.0, 50.0), (100.1, 0.0), (150.0, 0.0), (-60.0, 200.0), (-50.0, 200.0)],
)
def test_continuous_order_orders_enough_lots_to_rise_above_the_reorder_point(position: float, expected: float) -> None:
    quantity = formulas.continuous_order(100.0, 50.0, position, NUMPY)
    assert quantity == expected
    if quantity:
        assert position + quantity > 100.0


def test_sql_text_is_built_without_spark() -> None:
    expression = formulas.demand_std(col("lead_time"), col("sigma"), 10.0, 0.5, SPARK)
    assert isinstance(expression, Sql)
    assert str(expression) == "sqrt((((`lead_time` * power(`sigma`, 2)) + power((`lead_time` * 0.0D), 2)) + 25.0D))"
    assert literal(1.5) == "1.5D"  # a bare 1.5 would be a DECIMAL in Spark SQL
    assert literal("it's") == "'it\\'s'"
    assert literal(float("nan")) == "CAST('NaN' AS DOUBLE)"


def test_rounding_excess_width_hand_cases() -> None:
    width = formulas.rounding_excess_width(
        np.array([0.0, 8.0, 8.0, 0.0, 30.0]),
        np.array([1.0, 1.0, 6.0, 6.0, 5.0]),
        np.array([2.0, 2.0, 2.0, 40.0, 14.0]),
        NUMPY,
    )
    # packs only: one pack; MOQ 8 less half a review's demand; MOQ 8 in packs of 6 is 12; a big
    # review demand leaves the pack; MOQ 30 (6 packs of 5) less 7
    np.testing.assert_allclose(width, [1.0, 7.0, 11.0, 6.0, 23.0])


def test_rounding_allowance_limits_and_the_equation_it_solves() -> None:
    level = 0.9
    z = cycle_service_factor(level)
    assert rounding_allowance(np.array(1e-4), np.array(10.0), level, NUMPY) == pytest.approx(0.5e-4, rel=1e-3)
    assert rounding_allowance(np.array(8.0), np.array(0.0), level, NUMPY) == pytest.approx(0.8)  # step: (1 − α)·w
    assert rounding_allowance(np.array(0.0), np.array(3.0), level, NUMPY) == 0.0
    for width, std in ((6.95, 2.05), (23.0, 5.3), (2.0, 8.0)):
        allowance = float(rounding_allowance(np.array(width), np.array(std), level, NUMPY))
        assert 0.0 < allowance < width / 2.0  # less than the mean excess: F flattens above S
        a, omega = z - allowance / std, width / std
        assert normal_loss(a) - normal_loss(a + omega) == pytest.approx((1.0 - level) * omega, abs=2e-3 * omega)


def test_gamma_safety_stock_follows_the_gamma_quantile_and_tends_to_the_normal() -> None:
    from scipy.stats import gamma, norm

    for mean, std, level in [(10.0, 10.0, 0.93), (10.0, 5.0, 0.95), (4.0, 6.0, 0.90), (50.0, 5.0, 0.97)]:
        shape = (mean / std) ** 2
        exact = gamma.ppf(level, shape, scale=mean / shape) - mean
        approximate = formulas.gamma_safety_stock(np.array(mean), np.array(std), norm.ppf(level), NUMPY)
        assert approximate == pytest.approx(exact, rel=0.05)  # Wilson–Hilferty: within 5 % down to shape 0.44
    # Skewed demand needs more than z·σ at a high target; nearly symmetric demand gets z·σ.
    z = norm.ppf(0.93)
    assert formulas.gamma_safety_stock(np.array(10.0), np.array(10.0), z, NUMPY) > 1.1 * z * 10.0
    assert formulas.gamma_safety_stock(np.array(1000.0), np.array(10.0), z, NUMPY) == pytest.approx(z * 10.0, rel=0.01)
    assert formulas.gamma_safety_stock(np.array(0.0), np.array(2.0), z, NUMPY) == pytest.approx(z * 2.0)


def test_conformal_rank_covers_a_next_draw() -> None:
    # 30 samples at 93 %: the 29th (29 / 31 ≥ 0.93; the plain 28th covers 90.3 %); past n: the largest.
    ranks = formulas.conformal_rank(np.array([30, 30, 30, 0]), np.array([0.93, 0.5, 0.99, 0.9]), NUMPY)
    np.testing.assert_array_equal(ranks, [29, 16, 30, 1])
    # 60 overlapping windows worth 20 independent draws: 0.9 · 21/20 = 94.5 % of them, the 57th.
    # As many draws as windows is the plain conformal rank; at 93 % with 12 draws, the largest.
    ranks = formulas.conformal_rank(np.array([60, 60, 60]), np.array([0.9, 0.9, 0.93]), NUMPY, np.array([20, 60, 12]))
    np.testing.assert_array_equal(ranks, [57, 55, 60])


def test_smoothed_empirical_quantile_hand_cases_and_the_average_it_meets() -> None:
    # Without rounding it is the plain quantile: the smallest sample covering the share.
    assert smoothed_empirical_quantile(np.array([4.0, 1.0, 3.0, 2.0]), 0.0, 0.5) == 2.0
    assert smoothed_empirical_quantile(np.array([4.0, 1.0, 3.0, 2.0]), 0.0, 1.0) == 4.0
    # Two samples 0 and 10 and a spread of 10: from x = 0, F is 1/2 over the whole spread.
    assert smoothed_empirical_quantile(np.array([0.0, 10.0]), 10.0, 0.5) == pytest.approx(0.0)
    # The result meets the coverage on average over [x, x + w), and lies below the plain quantile.
    rng = np.random.default_rng(5)
    samples = np.sort(rng.gamma(0.5, 4.0, 40))
    for width, coverage in [(3.0, 0.9), (0.5, 38 / 40), (20.0, 0.95)]:
        x = smoothed_empirical_quantile(samples, width, coverage)
        spread = x + (np.arange(200_000) + 0.5) / 200_000 * width
        covered = np.searchsorted(samples, spread, side="right").mean() / samples.size
        assert covered == pytest.approx(coverage, abs=1e-4)
        assert x <= smoothed_empirical_quantile(samples, 0.0, coverage)
