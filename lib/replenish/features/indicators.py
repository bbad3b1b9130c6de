"""Leading indicators of demand from `bronze.interactions`: views and add-to-carts before a period.

Interest comes before purchases: a SKU viewed more this week tends to sell more next week. For each
SKU-location period of `silver.demand` this adds what was known *before the period began* (an
event counts for the location of the user who made it; events without a location are left out):

- `views_lag_1`, `add_to_carts_lag_1`: events in the previous period (null in a series' first);
- `views_ratio`, `add_to_carts_ratio`: the previous period's count against the mean of the
  `baseline_periods` periods before it, `(lag_1 + 1) / (baseline mean + 1)`: 1.0 is ordinary
  interest, so a forecast can assume 1.0 for periods it cannot see yet (as it assumes the regular
  price), and the scale does not depend on how popular the SKU is. These two are ARIMA regressors
  (`forecast.arima.regressors`).

Nothing of the period itself or later enters its row (tests/spark/test_indicators.py checks it by
dropping every event after a date and comparing the rows up to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from replenish.features.calendar import period_start_column

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

INDICATOR_COLUMNS: tuple[str, ...] = ("views_lag_1", "add_to_carts_lag_1", "views_ratio", "add_to_carts_ratio")
_EVENTS = {"views": "view", "add_to_carts": "add_to_cart"}


def period_interactions(interactions: DataFrame, *, freq: str) -> DataFrame:
    """sku, location, date (period start), views, add_to_carts: events per SKU-location and period."""
    rows = interactions.where(F.col("location").isNotNull() & F.col("event").isin(*_EVENTS.values()))
    period = period_start_column(F.to_date("timestamp"), freq)
    return rows.groupBy("sku", "location", period.alias("date")).agg(
        *[F.sum((F.col("event") == event).cast("long")).alias(name) for name, event in _EVENTS.items()]
    )


def add_leading_indicators(
    demand: DataFrame, interactions: DataFrame | None, *, freq: str, baseline_periods: int
) -> DataFrame:
    """Add `INDICATOR_COLUMNS` to one frequency of `silver.demand` (null columns without interactions).

    Args:
        demand: gap-filled periods (consecutive rows per series), columns sku, location, date.
        interactions: `bronze.interactions` (sku, location, event, timestamp), or None.
        freq: the frequency of `demand`.
        baseline_periods: periods in the mean the ratios compare against (the freq's longest
            rolling window).
    """
    if interactions is None:
        return demand.select("*", *[F.lit(None).cast("double").alias(name) for name in INDICATOR_COLUMNS])
    counts = period_interactions(interactions, freq=freq)
    joined = demand.join(counts, ["sku", "location", "date"], "left")
    window = Window.partitionBy("sku", "location").orderBy("date")
    baseline = window.rowsBetween(-(baseline_periods + 1), -2)
    added = []
    for name in _EVENTS:
        count = F.coalesce(F.col(name), F.lit(0)).cast("double")
        previous = F.lag(count, 1).over(window)
        mean_before = F.avg(count).over(baseline)
        added += [
            previous.alias(f"{name}_lag_1"),
            ((previous + 1.0) / (F.coalesce(mean_before, previous) + 1.0)).alias(f"{name}_ratio"),
        ]
    return joined.select(*demand.columns, *added)
