"""Demand series from daily sales: gap filling, censoring, periods, price, promo, lag and rolling features.

`bronze.sales` has a row only for a day with sales or a day out of stock; an in-stock day without a
row sold nothing. `build_demand` turns those rows into one row per SKU-location and period, from the
series' start to the end of the data, and tells a zero-demand period (in stock, nothing sold) from a
censored one (mostly out of stock: the sales are a floor on demand, not demand).

The whole stage shuffles the sales once: they are repartitioned by (sku, location), and everything
after (the daily aggregate, the gap-filling window, the weekly or monthly aggregate, the feature
windows) keeps that partitioning; products and the calendar are broadcast.

Example:
    ```python
    cfg = FeaturesConfig()
    demand = build_features(spark.table("sales"), spark.table("products"), cfg, freq="W")
    ```
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pyspark.sql import Column, Window, WindowSpec
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.features.calendar import (
    CALENDAR_COLUMNS,
    add_calendar_features,
    build_calendar,
    complete_period_range,
    grain_of_dates,
    period_start_column,
)
from replenish.features.settings import FeaturesConfig, ReturnsPolicy
from replenish.io.catalog import BRONZE_COLUMNS, parse_columns
from replenish.shared import FREQUENCIES, check_freq

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

SERIES_KEYS: tuple[str, ...] = ("sku", "location")
SALES_COLUMNS: tuple[str, ...] = tuple(name for name, _ in parse_columns(BRONZE_COLUMNS["sales"]))
DEMAND_COLUMNS: tuple[str, ...] = (
    "freq",
    "sku",
    "location",
    "date",
    "category",
    "demand",
    "censored",
    "in_stock_share",
    "price",
    "promo",
)
FEATURE_COLUMNS: tuple[str, ...] = (
    "freq",
    "sku",
    "location",
    "date",
    "category",
    "demand",
    "censored",
    "in_stock_share",
    "price",
    "regular_price",
    "price_ratio",
    "promo",
    *CALENDAR_COLUMNS,
)
_PRODUCT_COLUMNS = {"launch_date": "date", "unit_price": "double", "category": "string"}


def series_window() -> WindowSpec:
    """The one window spec of the stage: each SKU-location series in date order."""
    return Window.partitionBy(*SERIES_KEYS).orderBy("date")


def require_columns(df: DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValidationError naming the columns of `columns` that `df` lacks."""
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise ValidationError(f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")


def sales_date_range(sales: DataFrame) -> tuple[dt.date, dt.date]:
    """The first and last sales date: the only values the stage collects to the driver."""
    require_columns(sales, ["date"], "sales")
    first_day, last_day = sales.agg(F.min("date"), F.max("date")).first()  # type: ignore[misc]
    if first_day is None:
        raise ValidationError("sales has no rows (or no dates): nothing to build demand from")
    return first_day, last_day


def sales_grain(sales: DataFrame) -> tuple[dt.date, dt.date, str]:
    """First and last sales date and the grain the dates show, in one aggregate.

    The grain is `calendar.grain_of_dates`'s rule.
    """
    require_columns(sales, ["date"], "sales")
    day = F.col("date")
    first_day, last_day, off_month, off_quarter, off_week = sales.agg(  # type: ignore[misc]
        F.min(day),
        F.max(day),
        F.count(F.when(F.dayofmonth(day) != 1, 1)),
        F.count(F.when((F.dayofmonth(day) != 1) | (F.month(day) % 3 != 1), 1)),
        F.count(F.when(F.dayofweek(day) != 2, 1)),  # dayofweek: Sunday 1, Monday 2
    ).first()
    if first_day is None:
        raise ValidationError("sales has no rows (or no dates): nothing to build demand from")
    grain = grain_of_dates(first_day, last_day, off_quarter=off_quarter, off_month=off_month, off_week=off_week)
    return first_day, last_day, grain


def resolve_grain(declared: str, detected: str) -> tuple[str, str]:
    """The grain to use and why: the declared one, or the detected one under `auto`."""
    if declared == "auto":
        return detected, "detected from the sales dates (features.grain: auto)"
    if declared != detected:
        log.warning("sales grain declared %s, but the dates look like grain %s", declared, detected)
    return declared, "declared"


def _daily_sales(sales: DataFrame, returns: ReturnsPolicy) -> DataFrame:
    """One row per SKU-location and day with sales rows, partitioned by (sku, location).

    Several rows of one day are summed; the day counts as in stock only when every row says so.
    """
    is_return = F.coalesce(F.col("is_return"), F.lit(False))
    quantity = F.coalesce(F.col("quantity"), F.lit(0.0))
    sold = F.when(is_return, F.lit(0.0)) if returns == "exclude" else F.when(is_return, -F.abs(quantity))
    return (
        sales.repartition(*SERIES_KEYS)
        .groupBy(*SERIES_KEYS, "date")
        .agg(
            F.greatest(F.sum(sold.otherwise(quantity)), F.lit(0.0)).alias("quantity"),
            F.bool_and(F.coalesce(F.col("in_stock"), F.lit(True))).alias("in_stock"),
            F.bool_or(F.coalesce(F.col("promo"), F.lit(False))).alias("promo"),
            F.avg(F.when(~is_return, F.col("price"))).alias("price"),
        )
    )


def _product_attributes(products: DataFrame | None) -> DataFrame | None:
    """sku, launch_date, unit_price, category of the products (null where a column is absent)."""
    if products is None:
        return None
    require_columns(products, ["sku"], "products")
    columns = [
        F.col(name).cast(kind) if name in products.columns else F.lit(None).cast(kind).alias(name)
        for name, kind in _PRODUCT_COLUMNS.items()
    ]
    return products.select("sku", *columns).dropDuplicates(["sku"])


def _with_products(daily: DataFrame, products: DataFrame | None) -> DataFrame:
    attributes = _product_attributes(products)
    if attributes is None:
        return daily.select("*", *[F.lit(None).cast(kind).alias(name) for name, kind in _PRODUCT_COLUMNS.items()])
    return daily.join(F.broadcast(attributes), on="sku", how="left")


def _fill_days(daily: DataFrame, range_start: dt.date, range_end: dt.date, grain: str = "D") -> DataFrame:
    """Every day of every series from its start to `range_end`, without a join.

    Each sales row is exploded into itself and the row-less days that follow it up to the next
    sales row (or `range_end`): those are in-stock days with zero demand, priced at the last known
    price, except that a row of a coarser `grain` (a month dated on its 1st) passes its stock flag
    to the other days of its period. The first row of a series also covers the days back to the
    product's launch date when that is earlier. Days outside `[range_start, range_end]` are dropped.
    """
    window = series_window()
    previous_day = F.lag("date").over(window)
    next_day = F.lead("date").over(window)
    known_price = F.last("price", ignorenulls=True).over(window.rowsBetween(Window.unboundedPreceding, 0))
    # least() skips nulls: without a launch date the series starts at its first sales row.
    first_covered = F.when(previous_day.isNull(), F.least("launch_date", "date")).otherwise(F.col("date"))
    last_covered = F.coalesce(F.date_sub(next_day, 1), F.lit(range_end))
    covered = (
        daily.select(
            *SERIES_KEYS,
            "date",
            "quantity",
            "in_stock",
            "promo",
            "category",
            F.coalesce(known_price, F.col("unit_price")).alias("price"),
            F.greatest(first_covered, F.lit(range_start)).alias("first_covered"),
            F.least(last_covered, F.lit(range_end)).alias("last_covered"),
        )
        .where(F.col("first_covered") <= F.col("last_covered"))
        .select("*", F.explode(F.sequence("first_covered", "last_covered")).alias("day"))
    )
    observed = F.col("day") == F.col("date")
    if grain == "D":
        same_period = observed
    else:
        same_period = period_start_column(F.col("day"), grain) == period_start_column(F.col("date"), grain)
    return covered.select(
        *SERIES_KEYS,
        F.col("day").alias("date"),
        "category",
        F.when(observed, F.col("quantity")).otherwise(F.lit(0.0)).alias("quantity"),
        F.when(same_period, F.col("in_stock")).otherwise(F.lit(True)).alias("in_stock"),
        F.when(observed, F.col("promo")).otherwise(F.lit(False)).alias("promo"),
        "price",
    )


def _to_periods(days: DataFrame, freq: str, censored_below: float) -> DataFrame:
    """Aggregate gap-filled days into periods (no shuffle: grouping keys extend the partitioning)."""
    if freq == "D":
        periods = days.select(
            *SERIES_KEYS,
            "date",
            "category",
            F.col("quantity").alias("demand"),
            F.col("in_stock").cast("double").alias("in_stock_share"),
            "price",
            F.col("promo").cast("double").alias("promo"),
        )
    else:
        periods = (
            days.withColumn("date", period_start_column(F.col("date"), freq))
            .groupBy(*SERIES_KEYS, "date", "category")
            .agg(
                F.sum("quantity").alias("demand"),
                F.avg(F.col("in_stock").cast("double")).alias("in_stock_share"),
                F.avg("price").alias("price"),
                F.avg(F.col("promo").cast("double")).alias("promo"),
            )
        )
    return periods.select(
        F.lit(freq).alias("freq"),
        *SERIES_KEYS,
        "date",
        "category",
        "demand",
        (F.col("in_stock_share") < F.lit(censored_below)).alias("censored"),
        "in_stock_share",
        "price",
        "promo",
    )


def build_demand(
    sales: DataFrame,
    products: DataFrame | None,
    cfg: FeaturesConfig,
    *,
    freq: str,
    date_range: tuple[dt.date, dt.date] | None = None,
    grain: str = "D",
) -> DataFrame:
    """Gap-filled demand per SKU-location and period, with censoring, price and promo share.

    A series runs from its first sales row (or the product's `launch_date`, when earlier) to the end
    of the data; only complete periods are kept (a week cut off by the end of the data is dropped;
    the data covers the whole `grain` period of its last date). Days without a sales row are in
    stock with zero demand. Returns follow `cfg.returns`.

    Args:
        sales: `bronze.sales` columns: sku, location, date, quantity, price, promo, in_stock, is_return.
        products: `bronze.products` (sku; optional launch_date, unit_price, category), or None.
        cfg: the features settings (`censored_below`, `returns`).
        freq: D (days), W (weeks starting Monday) or M (months, dated on the 1st).
        date_range: first and last sales date, when already known; otherwise collected from `sales`.
        grain: the period a sales row stands for (D, W, M, Q; see `FeaturesConfig.grain`).

    Returns:
        freq, sku, location, date (period start), category, demand (units; observed sales when
        censored), censored, in_stock_share (share of the period's days in stock), price (average
        daily price; a row-less day has the price of the row before it, or of the series' first row
        when it precedes them all; the product's unit_price when the rows carry none) and
        promo (share of the period's days on promotion), partitioned by (sku, location).
    """
    check_freq(freq)
    require_columns(sales, SALES_COLUMNS, "sales")
    first_day, last_day = date_range or sales_date_range(sales)
    range_start, range_end = complete_period_range(first_day, last_day, freq, grain=grain)
    daily = _with_products(_daily_sales(sales, cfg.returns), products)
    days = _fill_days(daily, range_start, range_end, grain)
    return _to_periods(days, freq, cfg.censored_below)


def add_price_features(demand: DataFrame, regular_price_window: int) -> DataFrame:
    """Add `regular_price` (trailing median price) and `price_ratio` (price / regular_price).

    The regular price is the median of the prices of the last `regular_price_window` periods, the
    current one included, so a promotion shows as a ratio below 1 while a lasting price change
    becomes the new regular price within half a window.
    """
    require_columns(demand, [*SERIES_KEYS, "date", "price"], "demand")
    if regular_price_window < 1:
        raise ValueError(f"regular_price_window must be >= 1, got {regular_price_window}")
    trailing = series_window().rowsBetween(-(regular_price_window - 1), 0)
    # Exact for windows below accuracy / 2 rows; a larger accuracy only costs time.
    regular_price = F.percentile_approx("price", 0.5, max(100, 4 * regular_price_window)).over(trailing)
    return demand.withColumn("regular_price", regular_price).withColumn(
        "price_ratio", F.when(F.col("regular_price") > 0, F.col("price") / F.col("regular_price"))
    )


def lag_columns(lags: Sequence[int], rolling_windows: Sequence[int]) -> list[str]:
    """The names `add_lag_features` adds, in order: lags, rolling means, rolling standard deviations."""
    return [
        *(f"lag_{lag}" for lag in sorted(lags)),
        *(f"rolling_mean_{window}" for window in sorted(rolling_windows)),
        *(f"rolling_std_{window}" for window in sorted(rolling_windows)),
    ]


def table_lag_columns(cfg: FeaturesConfig) -> list[str]:
    """The lag and rolling columns of `silver.demand`: those of every frequency, so the table has one schema.

    A Delta table has one schema for all its `freq` partitions; a column configured for another
    frequency only (e.g. `lag_52` of weekly series) is null in the rows of this one.
    """
    settings = [cfg.for_freq(freq) for freq in FREQUENCIES]
    return lag_columns(
        sorted({lag for each in settings for lag in each.lags}),
        sorted({window for each in settings for window in each.rolling_windows}),
    )


def add_lag_features(demand: DataFrame, lags: Sequence[int], rolling_windows: Sequence[int]) -> DataFrame:
    """Add `lag_<k>`, `rolling_mean_<w>` and `rolling_std_<w>` of demand, without leakage.

    A rolling window covers the `w` periods before the current one, never the current one. Censored
    periods count as missing (null) in lags and rolling statistics: their sales are not demand.
    Rolling statistics use the uncensored periods of the window (null when there are none; the
    standard deviation is the sample one and needs two). Rows are positions in the gap-filled
    series, so lag 7 of a daily series is the same weekday a week before.

    The rolling sums are differences of running sums (`sum over rows ..t-1` minus `sum over rows
    ..t-w-1`), so each row costs O(1) instead of O(w) for a sliding frame; both passes use the same
    window spec, so Spark sorts once and shuffles nothing.
    """
    require_columns(demand, [*SERIES_KEYS, "date", "demand", "censored"], "demand")
    if any(lag < 1 for lag in lags) or any(window < 2 for window in rolling_windows):
        raise ValueError(f"lags must be >= 1 and windows >= 2, got {list(lags)} and {list(rolling_windows)}")
    window = series_window()
    running = window.rowsBetween(Window.unboundedPreceding, 0)
    true_demand = F.when(~F.col("censored"), F.col("demand"))
    known = F.coalesce(true_demand, F.lit(0.0))
    internal = ["_running_sum", "_running_squares", "_running_count"]
    with_running = demand.select(
        "*",
        F.sum(known).over(running).alias(internal[0]),
        F.sum(known * known).over(running).alias(internal[1]),
        F.count(true_demand).over(running).alias(internal[2]),
    )

    def trailing(column: str, size: int) -> Column:
        """Sum of `column`'s increments over the `size` rows before the current one."""
        return F.lag(column, 1, 0).over(window) - F.lag(column, size + 1, 0).over(window)

    features: list[Column] = [F.lag(true_demand, lag).over(window).alias(f"lag_{lag}") for lag in sorted(lags)]
    means, deviations = [], []
    for size in sorted(rolling_windows):
        total, squares, count = (trailing(column, size) for column in internal)
        means.append(F.when(count > 0, total / count).alias(f"rolling_mean_{size}"))
        variance = F.greatest((squares - total * total / count) / (count - 1), F.lit(0.0))
        deviations.append(F.when(count > 1, F.sqrt(variance)).alias(f"rolling_std_{size}"))
    return with_running.select(*demand.columns, *features, *means, *deviations)


def build_features(
    sales: DataFrame,
    products: DataFrame | None,
    cfg: FeaturesConfig,
    *,
    freq: str,
    grain: str | None = None,
    date_range: tuple[dt.date, dt.date] | None = None,
) -> DataFrame:
    """`silver.demand` for one frequency: demand, censoring, price, promo, calendar, lags, rolling stats.

    Args:
        sales: `bronze.sales`.
        products: `bronze.products`, or None when there is no product master.
        cfg: the features settings; `cfg.for_freq(freq)` gives lags and windows.
        freq: D, W, M or Q.
        grain: the period a sales row stands for (D, W, M, Q or auto); None: `cfg.grain`.
        date_range: the first and last day of all the sales, when `sales` holds only some series (an
            incremental build): every series runs to the end of the data, not of its own sales.

    Returns:
        The columns of `silver.demand` (docs/tables.md), partitioned by (sku, location). The lag and
        rolling columns are those of every frequency (`table_lag_columns`), null where they belong
        to another frequency, so that all frequencies share the table's one schema.
    """
    check_freq(freq)
    settings = cfg.for_freq(freq)
    first_day, last_day, detected = sales_grain(sales)
    if date_range is not None:  # an incremental build: every series runs to the end of all the data
        first_day, last_day = date_range
    chosen, why = resolve_grain(grain or cfg.grain, detected)
    log.info("features %s: sales grain %s (%s)", freq, chosen, why)
    range_start, range_end = complete_period_range(first_day, last_day, freq, grain=chosen)
    log.info("features %s: sales %s..%s, complete periods %s..%s", freq, first_day, last_day, range_start, range_end)
    demand = build_demand(sales, products, cfg, freq=freq, date_range=(first_day, last_day), grain=chosen)
    demand = add_price_features(demand, settings.regular_price_window)
    demand = add_lag_features(demand, settings.lags, settings.rolling_windows)
    calendar = build_calendar(sales.sparkSession, range_start, range_end, freq, cfg.country)
    demand = add_calendar_features(demand, calendar)
    computed = set(lag_columns(settings.lags, settings.rolling_windows))
    return demand.select(
        *FEATURE_COLUMNS,
        *[
            F.col(name) if name in computed else F.lit(None).cast("double").alias(name)
            for name in table_lag_columns(cfg)
        ],
    )
