"""The per-series replay of `replenish simulate`: a held-out period lived through with an inventory policy.

The Spark side, which plans at each cutoff and runs this replay per series, is `inventory.holdout`.

The maths is `simulate_policy`, a pure numpy function over one series (and several policy variants at
once, e.g. the optimized policy and a grid of naive ones); `simulate_series` wraps it for
`groupBy(...).applyInPandas`, and `summarize_simulation` / `compare_with_naive` turn the per-series
results into the per-class report.

Event order within a period (the one the (R, S) and (s, Q) formulas assume):

1. orders due this period arrive (on hand rises; backorders are served first);
2. the policy reviews the inventory position (on hand + on order − backorders) and orders; an order
   placed in period t arrives at the start of period t + lead time (lead time ≥ 1), so the order of
   a review covers the demand of R + L periods;
3. the period's demand is served from stock; what stock cannot serve is backordered.

Measures, per series and variant:

* cycle service level: the share of replenishment cycles without a stockout. For (R, S) a cycle is
  the R periods that the order of one review protects, from that review plus the lead time to the
  next review plus the lead time (`cycle_offset`, the mean lead time): the α of the (R, S) formula.
  Counting review cycles rather than arrivals matters for intermittent series, whose reviews often
  order nothing: a stretch between two arrivals then spans several review cycles, each a chance of
  a stockout. For (s, Q) a cycle runs from one arrival to the next (the first from the start of the
  replay), the α of the (s, Q) formula. Only whole cycles inside the replay count;
* fill rate: demand served from stock on the period it occurs / demand;
* stockout periods: periods with demand that stock could not fully serve;
* average on hand: mean over periods of (on hand after receipts + on hand at the end) / 2.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from replenish.errors import ValidationError
from replenish.inventory import formulas
from replenish.inventory.ops import NUMPY

# Demand below this is no demand; shortfalls below it are rounding noise, not stockouts.
EPSILON = 1e-9


@dataclass(frozen=True)
class PolicyRun:
    """Per-variant results of `simulate_policy` (arrays of length V, one entry per variant)."""

    cycles: np.ndarray
    stockout_cycles: np.ndarray
    demand: np.ndarray
    filled: np.ndarray
    stockout_periods: np.ndarray
    average_on_hand: np.ndarray
    orders: np.ndarray

    @property
    def cycle_service_level(self) -> np.ndarray:
        """Share of completed cycles without a stockout (NaN without a completed cycle)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.cycles > 0, 1.0 - self.stockout_cycles / np.maximum(self.cycles, 1), np.nan)

    @property
    def fill_rate(self) -> np.ndarray:
        """Share of demand served from stock (NaN without demand)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.demand > EPSILON, self.filled / np.maximum(self.demand, EPSILON), np.nan)


def sample_lead_times(rng: np.random.Generator, mean_periods: float, std_periods: float, size: int) -> np.ndarray:
    """Whole-period lead times ~ Normal(mean, std), rounded, at least 1 period."""
    draws = rng.normal(mean_periods, std_periods, size) if std_periods > 0 else np.full(size, float(mean_periods))
    return np.maximum(np.rint(draws), 1).astype(np.int64)


def simulate_policy(
    demand: np.ndarray,
    lead_times: np.ndarray,
    *,
    policy: Literal["periodic", "continuous"],
    review_period: int = 1,
    order_up_to: Any = np.nan,
    reorder_point: Any = np.nan,
    lot_size: Any = np.nan,
    moq: float = 0.0,
    pack_size: float = 1.0,
    initial_on_hand: Any = None,
    cycle_offset: int | None = None,
) -> PolicyRun:
    """Replay `demand` period by period under an (R, S) or (s, Q) policy, for V variants at once.

    Args:
        demand: demand per period, shape (T,); NaN counts as 0.
        lead_times: lead time in whole periods (>= 1) of an order placed in each period, shape (T,);
            every variant sees the same lead times (common random numbers make variants comparable).
        policy: `periodic` (review every `review_period` periods, order up to S) or `continuous`
            (review every period, order n·Q when the position is below s).
        review_period: R in periods (periodic only), reviews at periods 0, R, 2R, ….
        order_up_to: S, shape (V,) or (V, T) (a level per period, for policies recomputed mid-way).
        reorder_point: s, shape (V,) or (V, T).
        lot_size: Q, shape (V,) or (V, T).
        moq: minimum order quantity.
        pack_size: orders are rounded up to whole packs.
        initial_on_hand: on hand at the start, shape (V,); default S (periodic) or s + Q (continuous),
            i.e. the replay starts just after a replenishment, with nothing on order.
        cycle_offset: periodic only: where review cycles start relative to the reviews, in periods
            (the mean lead time; default: the median of `lead_times`).

    Returns:
        Per-variant totals (`PolicyRun`).
    """
    demand = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0)
    lead_times = np.asarray(lead_times, dtype=np.int64)
    periods = demand.shape[0]
    if lead_times.shape != (periods,):
        raise ValidationError(f"lead_times must have shape ({periods},), got {lead_times.shape}")
    if periods and lead_times.min() < 1:
        raise ValidationError("lead times must be at least 1 period")
    if policy not in ("periodic", "continuous"):
        raise ValidationError(f"policy must be periodic or continuous, got {policy!r}")
    if review_period < 1:
        raise ValidationError(f"review_period must be >= 1, got {review_period}")
    level = order_up_to if policy == "periodic" else reorder_point
    variants = np.atleast_1d(np.asarray(level, dtype=float)).shape[0]

    def per_period(value: Any) -> np.ndarray:
        array = np.asarray(value, dtype=float)
        if array.ndim <= 1:
            array = np.broadcast_to(np.atleast_1d(array)[:, None], (variants, max(periods, 1)))
        return np.broadcast_to(array, (variants, max(periods, 1)))

    order_up_to_t = per_period(order_up_to)
    reorder_point_t = per_period(reorder_point)
    lot_size_t = per_period(lot_size)
    if policy == "periodic" and np.isnan(order_up_to_t).any():
        raise ValidationError("a periodic policy needs order_up_to for every variant and period")
    if policy == "continuous" and (np.isnan(reorder_point_t).any() or (lot_size_t <= 0).any()):
        raise ValidationError("a continuous policy needs reorder_point and a positive lot_size")

    if initial_on_hand is None:
        start = order_up_to_t[:, 0] if policy == "periodic" else reorder_point_t[:, 0] + lot_size_t[:, 0]
        initial_on_hand = np.maximum(start, 0.0)
    net = np.array(np.broadcast_to(np.asarray(initial_on_hand, dtype=float), (variants,)))
    arrivals = np.zeros((variants, periods + int(lead_times.max(initial=1)) + 1))
    pipeline = np.zeros(variants)
    cycles = np.zeros(variants, dtype=np.int64)
    stockout_cycles = np.zeros(variants, dtype=np.int64)
    in_stockout = np.zeros(variants, dtype=bool)
    filled = np.zeros(variants)
    short_periods = np.zeros((variants, periods), dtype=bool)
    stockout_periods = np.zeros(variants, dtype=np.int64)
    on_hand_sum = np.zeros(variants)
    orders = np.zeros(variants, dtype=np.int64)

    for t in range(periods):
        arriving = arrivals[:, t]
        received = arriving > 0
        # An arrival closes the cycle the previous order covered.
        cycles += received
        stockout_cycles += received & in_stockout
        in_stockout &= ~received
        net += arriving
        pipeline -= arriving

        position = net + pipeline
        if policy == "periodic":
            raw = formulas.periodic_order(order_up_to_t[:, t], position, NUMPY) if t % review_period == 0 else 0.0
        else:
            raw = formulas.continuous_order(reorder_point_t[:, t], lot_size_t[:, t], position, NUMPY)
        quantity = formulas.round_order(np.broadcast_to(raw, (variants,)), moq, pack_size, NUMPY)
        placed = quantity > 0
        arrivals[:, t + lead_times[t]] += quantity
        pipeline += quantity
        orders += placed

        start_on_hand = np.maximum(net, 0.0)
        need = demand[t]
        served = np.minimum(need, start_on_hand)
        short = need - served > EPSILON
        filled += served
        stockout_periods += short
        short_periods[:, t] = short
        in_stockout |= short
        net -= need
        on_hand_sum += (start_on_hand + np.maximum(net, 0.0)) / 2.0

    if policy == "periodic":
        offset = int(np.median(lead_times)) if cycle_offset is None and periods else int(cycle_offset or 0)
        starts = range(offset, periods - review_period + 1, review_period)
        cycles = np.full(variants, len(starts), dtype=np.int64)
        stockout_cycles = np.zeros(variants, dtype=np.int64)
        for start in starts:
            stockout_cycles += short_periods[:, start : start + review_period].any(axis=1)
    return PolicyRun(
        cycles=cycles,
        stockout_cycles=stockout_cycles,
        demand=np.full(variants, demand.sum()),
        filled=filled,
        stockout_periods=stockout_periods,
        average_on_hand=on_hand_sum / max(periods, 1),
        orders=orders,
    )


def series_seed(seed: int, sku: str, location: str) -> np.random.Generator:
    """A generator seeded by the series itself, so results do not depend on how Spark partitions."""
    return np.random.default_rng([seed, zlib.crc32(f"{sku}\x1f{location}".encode())])


SERIES_OUTPUT_COLUMNS: dict[str, str] = {
    "sku": "string",
    "location": "string",
    "policy": "string",
    "cover_weeks": "double",
    "periods": "int",
    "cycles": "int",
    "stockout_cycles": "int",
    "cycle_service_level": "double",
    "demand": "double",
    "filled": "double",
    "fill_rate": "double",
    "stockout_periods": "int",
    "average_on_hand": "double",
    "orders": "int",
}
SERIES_INPUT_COLUMNS: tuple[str, ...] = (
    "sku",
    "location",
    "date",
    "demand",
    "order_up_to_level",
    "reorder_point",
    "lot_size",
    "moq",
    "pack_size",
    "lead_time_days",
    "lead_time_std_days",
    "naive_demand_rate",
)


def simulate_series(
    frame: pd.DataFrame,
    *,
    policy: Literal["periodic", "continuous"],
    review_period_days: float,
    period_days: float,
    cover_weeks: tuple[float, ...],
    seed: int,
) -> pd.DataFrame:
    """One series' hold-out replay: the optimized policy and the naive planner policy for every cover.

    Meant for `groupBy("sku", "location").applyInPandas(functools.partial(simulate_series, ...))`.

    Args:
        frame: one row per hold-out period of one series: `SERIES_INPUT_COLUMNS`, where
            order_up_to_level, reorder_point and lot_size are the optimized policy in force that period
            and naive_demand_rate is the mean demand per period before the hold-out.
        policy: the optimized policy's kind.
        review_period_days: R, also the naive policy's review period.
        period_days: days per period.
        cover_weeks: the naive policy's grid: order up to `weeks × 7 / period_days × naive_demand_rate`.
        seed: the base seed of the lead-time draws.

    Returns:
        One row per variant: `optimized`, then `naive` for each cover (columns `SERIES_OUTPUT_COLUMNS`).
    """
    frame = frame.sort_values("date")
    sku, location = str(frame["sku"].iloc[0]), str(frame["location"].iloc[0])
    demand = frame["demand"].to_numpy(dtype=float)
    periods = demand.shape[0]
    first = frame.iloc[0]
    rng = series_seed(seed, sku, location)
    lead_times = sample_lead_times(
        rng, float(first["lead_time_days"]) / period_days, float(first["lead_time_std_days"]) / period_days, periods
    )
    review = max(round(review_period_days / period_days), 1)
    moq, pack_size = float(first["moq"]), float(first["pack_size"])
    offset = max(round(float(first["lead_time_days"]) / period_days), 1)

    optimized = simulate_policy(
        demand,
        lead_times,
        policy=policy,
        review_period=review,
        order_up_to=frame["order_up_to_level"].to_numpy(dtype=float)[None, :],
        reorder_point=frame["reorder_point"].to_numpy(dtype=float)[None, :],
        lot_size=frame["lot_size"].to_numpy(dtype=float)[None, :],
        moq=moq,
        pack_size=pack_size,
        cycle_offset=offset,
    )
    weeks = np.asarray(cover_weeks, dtype=float)
    naive_levels = weeks * (7.0 / period_days) * max(float(first["naive_demand_rate"]), 0.0)
    naive = simulate_policy(
        demand,
        lead_times,
        policy="periodic",
        review_period=review,
        order_up_to=naive_levels,
        moq=moq,
        pack_size=pack_size,
        cycle_offset=offset,
    )
    rows = [_row(sku, location, "optimized", np.nan, periods, optimized, 0)]
    rows += [_row(sku, location, "naive", float(w), periods, naive, i) for i, w in enumerate(weeks)]
    return pd.DataFrame(rows, columns=list(SERIES_OUTPUT_COLUMNS))


def _row(sku: str, location: str, policy: str, weeks: float, periods: int, run: PolicyRun, i: int) -> tuple:
    return (
        sku,
        location,
        policy,
        weeks,
        periods,
        int(run.cycles[i]),
        int(run.stockout_cycles[i]),
        float(run.cycle_service_level[i]),
        float(run.demand[i]),
        float(run.filled[i]),
        float(run.fill_rate[i]),
        int(run.stockout_periods[i]),
        float(run.average_on_hand[i]),
        int(run.orders[i]),
    )


def series_output_schema() -> str:
    """The DDL schema of `simulate_series`' output, for applyInPandas."""
    return ", ".join(f"{name} {dtype}" for name, dtype in SERIES_OUTPUT_COLUMNS.items())
