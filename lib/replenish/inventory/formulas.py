"""Inventory formulas, written once for numpy arrays and Spark columns (pass `ops=NUMPY` or `ops=SPARK`).

Units: quantities in units; demand rates and forecast errors per period of the planning frequency;
lead times and review periods in the same periods (the callers convert days to periods).

Conventions (stated once, used by the inventory job and the simulation alike):

* inventory position = on hand + on order − backorders;
* (R, S) orders S − position when the position is below S; (s, Q) orders when the position is at or
  below s ("drops to s"), except that a series without a reorder point (s ≤ 0: no forecast demand)
  orders only to cover backorders;
* an order is raised to the MOQ, then rounded up to whole packs.
"""

from __future__ import annotations

from typing import Any

from replenish.inventory.distributions import inverse_normal_loss
from replenish.inventory.ops import Ops

# Slack for floating-point noise when rounding to packs: 10.000000001 units in packs of 5 are 2 packs.
ROUNDING_SLACK = 1e-9


def inventory_position(on_hand: Any, on_order: Any, backorders: Any, ops: Ops) -> Any:
    """On hand + on order − backorders; missing on-order or backorder quantities count as 0."""
    return on_hand + ops.fill_null(on_order, 0.0) - ops.fill_null(backorders, 0.0)


def conformal_rank(samples: Any, level: Any, ops: Ops, independent: Any = None) -> Any:
    """Rank (1-based) of the sorted sample that covers a next draw with probability `level`.

    A next draw from the samples' distribution falls at or below the k-th smallest of n independent
    ones with probability k / (n + 1), so the rank is ⌈(n + 1)·level⌉, the largest sample when that
    passes n (the distribution-free, conformal bound). The plain empirical quantile, rank ⌈n·level⌉,
    covers a next draw with ⌈n·level⌉ / (n + 1): from 30 windows at a 93 % target, 90.3 %. Never
    below 1.

    Overlapping windows are fewer independent draws than there are windows: with `independent` = m
    of them, the same bound asks for the share level·(m + 1)/m of the n samples, rank
    ⌈n·level·(m + 1)/m⌉ (m = n by default).
    """
    if independent is None:
        return ops.maximum(ops.minimum(ops.ceil(level * (samples + 1)), samples), 1)
    return ops.maximum(ops.minimum(ops.ceil(samples * level * (independent + 1) / independent), samples), 1)


def gamma_safety_stock(mean: Any, std: Any, z: Any, ops: Ops) -> Any:
    """Safety stock that covers the α-quantile of a gamma demand with this mean and std (z = Φ⁻¹(α)).

    Skewed, non-negative demand (erratic, lumpy) has a longer upper tail than the normal with the same
    σ: at high α the normal z·σ falls short. The quantile is Wilson–Hilferty's cube-root approximation,
    μ·(1 − c²/9 + z·c/3)³ with c = σ/μ, which tends to μ + z·σ as c → 0 (closed form, so plain SQL).
    A series without forecast demand gets z·σ.
    """
    variation = std / ops.maximum(mean, 1e-12)
    base = ops.maximum(1.0 - variation**2 / 9.0 + z * variation / 3.0, 0.0)
    return ops.where(mean > 0.0, mean * base**3 - mean, z * std)


def demand_std(
    periods: Any, error_std: Any, demand_rate: Any, lead_time_std: Any, ops: Ops, level_error_std: Any = 0.0
) -> Any:
    """Standard deviation of demand over a protection interval: √(P·σ_d² + P²·σ_b² + d²·σ_L²).

    With σ_b = 0 this is the textbook √(P·σ_d² + d²·σ_L²): forecast errors independent from period to
    period, combined with the lead-time spread. σ_b is the persistent (level) part of the forecast error
    measured in the backtests (`selection.backtest_errors`): it does not average out over the interval,
    so its variance grows with P², not P.

    Args:
        periods: P, the protection interval (L for (s, Q), R + L for (R, S)), in periods.
        error_std: σ_d, the per-period forecast error standard deviation.
        demand_rate: d, the forecast demand per period.
        lead_time_std: σ_L, the lead time standard deviation, in periods.
        ops: `NUMPY` or `SPARK`.
        level_error_std: σ_b, the standard deviation of the forecast's persistent level error.
    """
    return ops.sqrt(periods * error_std**2 + (periods * level_error_std) ** 2 + demand_rate**2 * lead_time_std**2)


def cycle_safety_stock(safety_factor: Any, std: Any, ops: Ops) -> Any:
    """SS = z·σ_P for a cycle service level; a negative factor (α < 50 %) gives no safety stock."""
    return ops.maximum(safety_factor, 0.0) * std


def fill_rate_loss_target(fill_rate: Any, cycle_quantity: Any, std: Any, ops: Ops) -> Any:
    """t = (1 − β)·Q / σ_P: the standard normal loss a fill rate β allows (missing when σ_P = 0).

    A cycle short by σ_P·G(k) units on average meets β when σ_P·G(k) = (1 − β)·Q.

    Args:
        fill_rate: β, the share of demand to meet from stock.
        cycle_quantity: Q, units ordered per cycle: the lot size for (s, Q), d·R for (R, S).
        std: σ_P, the demand standard deviation over the protection interval.
        ops: `NUMPY` or `SPARK`.
    """
    has_spread = std > 0
    return ops.where(has_spread, (1.0 - fill_rate) * cycle_quantity / ops.where(has_spread, std, 1.0), ops.missing())


def fill_rate_safety_factor(loss_target: Any, std: Any, ops: Ops) -> Any:
    """k ≥ 0 with G(k) = `loss_target` (see `fill_rate_loss_target`); 0 when σ_P = 0 (nothing to buffer)."""
    return ops.where(std > 0, inverse_normal_loss(loss_target, ops), 0.0)


def reorder_point(demand_rate: Any, lead_time: Any, safety_stock: Any) -> Any:
    """s = d·L + SS_L: order when the position falls below the expected lead-time demand plus safety stock."""
    return demand_rate * lead_time + safety_stock


def order_up_to_level(
    demand_rate: Any, lead_time: Any, review_period: Any, safety_stock: Any, rounding_allowance: Any = 0.0
) -> Any:
    """S = d·(R + L) + SS_(R+L) − A: what the position is raised to at each review.

    A (0 by default; `distributions.rounding_allowance`) nets out the stock that MOQ and pack rounding
    add above S, so that the service the policy achieves over its cycles is the one SS was sized for.
    The caller keeps A at most d·(R + L) + SS, so S is never negative.
    """
    return demand_rate * (review_period + lead_time) + safety_stock - rounding_allowance


def rounding_excess_width(moq: Any, pack_size: Any, review_demand: Any, ops: Ops) -> Any:
    """w: how far above S MOQ and pack rounding spread the position after an (R, S) review.

    A review that orders lifts the position to S plus what the rounding adds: up to one pack or,
    where the MOQ is more than is missing, the MOQ less the shortfall; the reviews that follow, until
    the position is below S again, see it fall back towards S. Over many cycles the position after a
    review is then spread about evenly over [S, S + w), w = max(pack, smallest order − d·R/2) (the
    shortfall an order makes up averages about half a review's demand d·R): stock above what the
    service target asks for, which `distributions.rounding_allowance` nets out of S.

    Args:
        moq: the minimum order quantity (0: none).
        pack_size: orders are whole packs of this size.
        review_demand: d·R, the forecast demand of one review period.
        ops: `NUMPY` or `SPARK`.
    """
    smallest_order = ops.maximum(ops.ceil(moq / pack_size - ROUNDING_SLACK) * pack_size, pack_size)
    return ops.maximum(pack_size, smallest_order - review_demand / 2.0)


def economic_order_quantity(annual_demand: Any, ordering_cost: Any, holding_cost: Any, ops: Ops) -> Any:
    """EOQ = √(2·D·K / h); missing (NaN in numpy, NULL in Spark) when the holding cost h per unit-year is not positive.

    Args:
        annual_demand: D, units per year.
        ordering_cost: K, cost of placing one order.
        holding_cost: h, cost of holding one unit for a year (holding rate × unit cost).
        ops: `NUMPY` or `SPARK`.
    """
    valid = holding_cost > 0
    return ops.where(
        valid,
        ops.sqrt(2.0 * ops.maximum(annual_demand, 0.0) * ordering_cost / ops.where(valid, holding_cost, 1.0)),
        ops.missing(),
    )


def round_order(quantity: Any, moq: Any, pack_size: Any, ops: Ops) -> Any:
    """An order quantity raised to the MOQ and rounded up to whole packs; 0 stays 0 (no order).

    Rounding up rather than to the nearest pack keeps the service the policy was sized for.
    """
    raised = ops.maximum(quantity, moq)
    packs = ops.ceil(raised / pack_size - ROUNDING_SLACK)
    return ops.where(quantity > 0, packs * pack_size, 0.0)


def lot_size(order_quantity: Any, moq: Any, pack_size: Any, ops: Ops) -> Any:
    """The fixed order quantity Q of an (s, Q) policy: rounded like an order, and at least one pack."""
    return ops.maximum(round_order(order_quantity, moq, pack_size, ops), pack_size)


def periodic_order(order_up_to: Any, position: Any, ops: Ops) -> Any:
    """(R, S) at a review: order S − position when the position is below S, else nothing."""
    return ops.maximum(order_up_to - position, 0.0)


def continuous_order(reorder_point: Any, lot: Any, position: Any, ops: Ops) -> Any:
    """(s, Q): when the position is at or below s, order the fewest lots of Q that lift it above s.

    With a large backorder one lot may not be enough, hence n·Q with n = ⌊(s − position) / Q⌋ + 1.
    A reorder point of 0 or less (no forecast demand) triggers only on a negative position.
    """
    lots = ops.floor((reorder_point - position) / lot) + 1.0
    triggered = (position <= reorder_point) & ((reorder_point > 0) | (position < 0))
    return ops.where(triggered, lots * lot, 0.0)
