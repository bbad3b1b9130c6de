"""Spark orchestration: many per-series fits per task, streamed, with explicit output schemas.

`forecast_tables` prepares the input (the training window of `silver.demand`, the series profile and
the stored ARIMA orders joined on), repartitions it by series key and sorts each partition by
(sku, location, date), then runs `series.forecast_batches` with `mapInPandas`. Each task fits the
few hundred series of its partition in one Python process, streaming batch by batch, so:

* the per-call overhead of a pandas UDF (Arrow conversion, worker hand-off) is paid per batch of
  thousands of rows, not per series (`groupBy(series).applyInPandas` pays it per series);
* memory per task is one Arrow batch plus one series, whatever the partition size, so executor
  memory stays flat as the number of series grows;
* nothing but two scalars (the last date and an approximate series count) reaches the driver.

The task returns the four output tables in one schema (`series.RECORD_COLUMNS`, told apart by
`record`); `ForecastTables` splits them into the tables' columns.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from replenish.errors import ValidationError
from replenish.forecast.backtest import METRICS, SCORE_KEYS
from replenish.forecast.series import RECORD_COLUMNS, forecast_batches
from replenish.forecast.settings import REGRESSORS, ForecastPlan
from replenish.io.catalog import table
from replenish.shared import MONTHS_PER_PERIOD

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

PREDICTION_COLUMNS: tuple[str, ...] = ("yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95")
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: table(name).column_names
    for name in ("gold.forecast", "gold.backtest_forecast", "gold.forecast_backtest", "gold.model_registry")
}
"""The columns of each output table, in order: the catalog's (docs/tables.md)."""

_RECORD_OF_TABLE = {
    "gold.forecast": "forecast",
    "gold.backtest_forecast": "backtest",
    "gold.forecast_backtest": "metric",
    "gold.model_registry": "registry",
}
_REQUIRED_DEMAND = ("freq", "sku", "location", "date", "demand", "censored")


def record_schema() -> StructType:
    """The Spark schema of `series.RECORD_COLUMNS`: what each task returns."""
    from pyspark.sql import types as T

    types = {
        "string": T.StringType(),
        "date": T.DateType(),
        "int": T.IntegerType(),
        "long": T.LongType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
    }
    return T.StructType([T.StructField(name, types[kind], True) for name, kind in RECORD_COLUMNS])


@dataclass
class ForecastTables:
    """The four outputs of one run, all reading from the cached task output `records`.

    Call `records.persist()` before writing several of them (the job does), or the fits rerun per table.
    """

    records: DataFrame
    forecast: DataFrame
    backtest_forecast: DataFrame
    forecast_backtest: DataFrame
    model_registry: DataFrame

    def by_table(self) -> dict[str, DataFrame]:
        return {
            "gold.forecast": self.forecast,
            "gold.backtest_forecast": self.backtest_forecast,
            "gold.forecast_backtest": self.forecast_backtest,
            "gold.model_registry": self.model_registry,
        }


def _window_start(last: dt.date, plan: ForecastPlan) -> dt.date:
    periods = plan.windows.train_periods
    if plan.freq in MONTHS_PER_PERIOD:
        months = last.year * 12 + last.month - 1 - (periods - 1) * MONTHS_PER_PERIOD[plan.freq]
        return dt.date(months // 12, months % 12 + 1, 1)
    return last - dt.timedelta(days=(periods - 1) * (7 if plan.freq == "W" else 1))


def _partition_forecast(
    batches: Iterator[pd.DataFrame],
    plan: ForecastPlan,
    holidays: Mapping[np.datetime64, int],
    progress: Any = None,
) -> Iterator[pd.DataFrame]:
    if progress is not None:
        from replenish.progress import count_series

        batches = count_series(batches, progress)
    yield from forecast_batches(batches, plan, holidays)


def prepare_input(
    demand: DataFrame, profile: DataFrame | None, stored_orders: DataFrame | None, plan: ForecastPlan, *, start: dt.date
) -> DataFrame:
    """The rows the tasks read: the training window of `plan.freq`, with profile and stored orders.

    Args:
        demand: `silver.demand`.
        profile: `silver.series_profile` (demand_class, is_new, revenue), or None: series are
            classified from their training window.
        stored_orders: (sku, location, warm_params) from `registry.latest_arima_orders`, or None.
        plan: the run's plan.
        start: first period of the training window.
    """
    from pyspark.sql import functions as F

    missing = [name for name in _REQUIRED_DEMAND if name not in demand.columns]
    if missing:
        raise ValidationError(f"silver.demand lacks column(s) {missing}; it has {demand.columns}")
    regressors = [name for name in REGRESSORS if name in demand.columns and name in plan.arima.regressors]
    rows = demand.where((F.col("freq") == F.lit(plan.freq)) & (F.col("date") >= F.lit(start))).select(
        "sku",
        "location",
        "date",
        F.col("demand").cast("double").alias("demand"),
        F.col("censored").cast("boolean").alias("censored"),
        *[F.col(name).cast("double").alias(name) for name in regressors],
    )
    if profile is not None:
        attributes = with_revenue_rank(profile.where(F.col("freq") == F.lit(plan.freq)), plan).select(
            "sku", "location", "demand_class", F.col("is_new").cast("boolean").alias("is_new"), "top_revenue"
        )
        rows = rows.join(attributes, on=["sku", "location"], how="left")
    if stored_orders is not None and plan.warm_start and "routed" in plan.candidates:
        rows = rows.join(stored_orders.select("sku", "location", "warm_params"), on=["sku", "location"], how="left")
    return rows


def with_revenue_rank(profile: DataFrame, plan: ForecastPlan) -> DataFrame:
    """Add `top_revenue`: the series is among the largest that make up `arima_revenue_share` of revenue.

    Like an ABC class with its own threshold: series sorted by revenue, descending (ties by sku and
    location); a series is in while the revenue share of the series before it is below the share.
    One window over the profile (one row per series); all True without a `revenue` column.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    share = plan.routing.arima_revenue_share
    if "revenue" not in profile.columns or share >= 1.0:
        return profile.withColumn("top_revenue", F.lit(True))
    revenue = F.coalesce(F.col("revenue"), F.lit(0.0))
    ranked = Window.orderBy(revenue.desc(), "sku", "location")
    before = F.coalesce(F.sum(revenue).over(ranked.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0.0))
    total = F.sum(revenue).over(Window.partitionBy())
    return profile.withColumn("top_revenue", (total > 0) & (before < F.lit(share) * total))


def forecast_tables(
    demand: DataFrame,
    profile: DataFrame | None,
    stored_orders: DataFrame | None,
    plan: ForecastPlan,
    *,
    run_id: str,
    run_date: dt.date,
    country: str | None = "US",
    input_versions: Mapping[str, int | None] | None = None,
    config_hash: str = "",
    partitions: int | None = None,
    series_per_partition: int = 250,
    progress: Any = None,
    mlflow_run_id: str | None = None,
    series: DataFrame | None = None,
) -> ForecastTables:
    """Forecast every series of `demand` at `plan.freq`: the four gold tables of one run.

    Args:
        demand: `silver.demand` (freq, sku, location, date, demand, censored; price_ratio, promo and
            is_holiday are used as ARIMA regressors when present).
        profile: `silver.series_profile`, or None.
        stored_orders: the previous run's ARIMA orders (`registry.latest_arima_orders`), or None.
        plan: the resolved settings (`ForecastConfig.plan`).
        run_id, run_date: stamped on every row.
        country: the holiday calendar of the future periods (features.country); None: no holidays.
        input_versions: table -> Delta version, recorded in the registry for reproducibility.
        config_hash: hash of the settings, recorded in the registry.
        partitions: number of tasks; default: one per `series_per_partition` series, at least the
            default parallelism.
        series_per_partition: see `partitions`.
        progress: a Spark accumulator the tasks add their number of series to
            (`replenish.progress.SeriesProgress.counter`), or None.
        mlflow_run_id: the MLflow run of the job, recorded in the registry; None when not tracked.
        series: (sku, location) of the series to fit, or None for all (an incremental run fits the
            changed ones; the window and the revenue ranks are still those of every series).

    Raises:
        ValidationError: `demand` lacks a required column or has no row of `plan.freq`.
    """
    from pyspark.sql import functions as F

    missing = [name for name in _REQUIRED_DEMAND if name not in demand.columns]
    if missing:
        raise ValidationError(f"silver.demand lacks column(s) {missing}; it has {demand.columns}")
    of_freq = demand.where(F.col("freq") == F.lit(plan.freq))
    last = of_freq.agg(F.max("date")).collect()[0][0]
    if last is None:
        raise ValidationError(f"silver.demand has no rows of frequency {plan.freq}")
    start = _window_start(last, plan)
    rows = prepare_input(demand, profile, stored_orders, plan, start=start)
    if series is not None:
        rows = rows.join(F.broadcast(series.select("sku", "location")), ["sku", "location"], "left_semi")
    if partitions is None:
        n_series = rows.select(F.approx_count_distinct(F.concat_ws("\u0001", "sku", "location"))).collect()[0][0] or 1
        parallelism = rows.sparkSession.sparkContext.defaultParallelism
        partitions = max(parallelism, math.ceil(n_series / series_per_partition))
    holidays = _future_holidays(start, last, plan, country)
    task = functools.partial(_partition_forecast, plan=plan, holidays=holidays, progress=progress)
    records = (
        rows.repartition(partitions, "sku", "location")
        .sortWithinPartitions("sku", "location", "date")
        .mapInPandas(task, schema=record_schema())
    )
    stamped = records.select(
        F.lit(run_id).alias("run_id"),
        F.lit(run_date).cast("date").alias("run_date"),
        F.lit(plan.freq).alias("freq"),
        F.lit(json.dumps(dict(input_versions or {}), sort_keys=True)).alias("input_versions"),
        F.lit(config_hash).alias("config_hash"),
        F.lit(mlflow_run_id).cast("string").alias("mlflow_run_id"),
        *[column for column, _ in RECORD_COLUMNS],
    )

    def table(name: str) -> DataFrame:
        return stamped.where(F.col("record") == F.lit(_RECORD_OF_TABLE[name])).select(*TABLE_COLUMNS[name])

    return ForecastTables(
        records=stamped,
        forecast=table("gold.forecast"),
        backtest_forecast=table("gold.backtest_forecast"),
        forecast_backtest=table("gold.forecast_backtest"),
        model_registry=table("gold.model_registry"),
    )


def _future_holidays(
    start: dt.date, last: dt.date, plan: ForecastPlan, country: str | None
) -> dict[np.datetime64, int]:
    """Holiday flags (D) or holiday-day counts (W, M, Q) per period start, history through the horizon."""
    if not country or "is_holiday" not in plan.arima.regressors:
        return {}
    from replenish.features.calendar import calendar_frame

    horizon_days = plan.horizon * {"D": 1, "W": 7, "M": 31, "Q": 92}[plan.freq] + 31
    frame = calendar_frame(start, last + dt.timedelta(days=horizon_days), plan.freq, country)
    dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    return {day: int(flag) for day, flag in zip(dates, frame["is_holiday"].to_numpy(), strict=True) if flag}


def backtest_metrics(backtest_forecast: DataFrame, keys: tuple[str, ...] = ("run_id", *SCORE_KEYS)) -> DataFrame:
    """Score any model's `gold.backtest_forecast`-shaped rows with the shared measures, per fold.

    A model trained elsewhere (an LSTM on its own cluster) writes its fold forecasts in this shape
    and gets the same MASE, WAPE, bias, RMSE and coverage as the statistical models: the measures of
    `backtest.score`, written as Spark aggregates; a measure `score` leaves undefined (NaN) is null,
    as Arrow writes the per-series path's NaN, so averages skip it. A pandas function per fold cost
    2.5 ms a fold in Arrow round trips (79 s for the demo LSTM's 30,000 folds).
    """
    from pyspark.sql import functions as F

    needed = [*keys, "cutoff", "y", "censored", *PREDICTION_COLUMNS, "mase_scale"]
    missing = [name for name in needed if name not in backtest_forecast.columns]
    if missing:
        raise ValidationError(f"backtest rows lack column(s) {missing}")
    nan, null = F.lit(float("nan")), F.lit(None).cast("double")
    y = F.col("y").cast("double")
    scored = ~F.coalesce(F.col("censored").cast("boolean"), F.lit(False)) & y.isNotNull() & ~F.isnan(y)
    error = F.when(scored, F.coalesce(F.col("yhat").cast("double"), nan) - y)

    def inside(level: int) -> Column:
        low, high = (F.coalesce(F.col(f"yhat_{side}_{level}").cast("double"), nan) for side in ("lo", "hi"))
        covered = (y >= low) & (y <= high) & ~F.isnan(low) & ~F.isnan(high)  # Spark orders NaN above all
        return F.when(scored, covered.cast("double"))

    sums = backtest_forecast.groupBy(*keys).agg(
        F.first("cutoff").alias("cutoff"),
        F.count(F.lit(1)).cast("int").alias("horizon"),
        F.sum(scored.cast("int")).cast("int").alias("n_scored"),
        F.sum(F.abs(error)).alias("_absolute"),
        F.sum(error).alias("_error"),
        F.sum(error * error).alias("_squared"),
        F.sum(F.when(scored, y)).alias("_total"),
        F.first(F.col("mase_scale").cast("double")).alias("_scale"),
        F.avg(inside(80)).alias("_covered_80"),
        F.avg(inside(95)).alias("_covered_95"),
    )
    n, scale, total = F.col("n_scored"), F.col("_scale"), F.col("_total")
    usable_scale = scale.isNotNull() & ~F.isnan(scale) & (scale > 0) & (scale < float("inf"))
    measures = {
        "mase": F.when(usable_scale, F.col("_absolute") / n / scale),
        "wape": F.when(total > 0, F.col("_absolute") / total),
        "bias": F.when(total > 0, F.col("_error") / total),
        "rmse": F.sqrt(F.col("_squared") / n),
        "coverage_80": F.col("_covered_80"),
        "coverage_95": F.col("_covered_95"),
    }
    return sums.select(
        *keys,
        "cutoff",
        "horizon",
        *[F.nanvl(F.when(n > 0, measures[name]), null).alias(name) for name in METRICS],
        "n_scored",
    )
