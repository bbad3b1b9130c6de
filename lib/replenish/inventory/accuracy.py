"""Forecast accuracy rolled up for the people who read it: by category, location and class.

Input is the per series × model × fold backtest scoring of the forecast run (`gold.forecast_backtest`,
metrics as defined in `replenish.forecast.backtest`). Each series is first averaged over its folds,
then series are averaged with equal weight within each group, per model and for `selected` (each
series' chosen model, from the plan). Groups: `total`, `category`, `location`,
`abc_xyz` and `demand_class`, all in one pass (the dimensions are exploded, then aggregated once,
over per-cell sums rather than per series).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from replenish.inventory.schemas import FORECAST_ACCURACY_SCHEMA, conform
from replenish.inventory.settings import InventoryConfig
from replenish.shared import SERIES_KEYS, RunStamp, require_columns

METRICS: tuple[str, ...] = ("mase", "wape", "bias", "rmse", "coverage_80", "coverage_95")
SELECTED = "selected"
DIMENSIONS: tuple[str, ...] = ("total", "category", "location", "abc_xyz", "demand_class")


def _finite(column: str) -> F.Column:
    # Metrics are NaN where undefined (MASE of a constant history, WAPE without demand): leave them out.
    return F.when(~F.isnan(column), F.col(column))


def forecast_accuracy(
    metrics: DataFrame,
    series: DataFrame,
    settings: InventoryConfig,
    stamp: RunStamp,
) -> DataFrame:
    """`gold.forecast_accuracy` rows: mean backtest metrics per dimension value and model.

    Args:
        metrics: `gold.forecast_backtest` rows of one forecast run.
        series: the plan's rows per series (e.g. `gold.safety_stock` of this run): sku, location,
            model (the one chosen), category, abc_xyz, demand_class. Its classes are the ones the plan
            used (the category falls back to the product's), and no input is read twice.
        settings: the frequency.
        stamp: run metadata.
    """
    require_columns(metrics, ("sku", "location", "model", *METRICS), "forecast_backtest")
    require_columns(series, (*SERIES_KEYS, "model", "category", "abc_xyz", "demand_class"), "series")
    per_series = (
        metrics.where(F.col("freq") == settings.freq)
        .groupBy(*SERIES_KEYS, "model")
        .agg(F.count("*").alias("folds"), *[F.avg(_finite(m)).alias(m) for m in METRICS])
    )
    chosen = series.select(*SERIES_KEYS, F.col("model").alias("selected_model"), "category", "abc_xyz", "demand_class")
    # Each series × model row counts for its model and, for the chosen model, once more as `selected`.
    models = F.filter(
        F.array(F.col("model"), F.when(F.col("model") == F.col("selected_model"), F.lit(SELECTED))),
        lambda model: model.isNotNull(),
    )
    # Series are first summed into cells of every dimension at once (a few thousand rows), so the
    # dimensions are exploded over the cells, not over every series: the group means are ratios of sums.
    cell_keys = ("category", "abc_xyz", "demand_class", "location")
    cells = (
        per_series.join(chosen, list(SERIES_KEYS), "left")
        .select(
            F.explode(models).alias("model"),
            "folds",
            *METRICS,
            *[F.coalesce(F.col(k), F.lit("unknown")).alias(k) for k in cell_keys],
        )
        .groupBy("model", *cell_keys)
        .agg(
            F.count("*").alias("series"),
            F.sum("folds").alias("folds"),
            *[F.sum(m).alias(f"sum_{m}") for m in METRICS],
            *[F.count(m).alias(f"count_{m}") for m in METRICS],
        )
    )
    dimension_values = F.array(
        *[
            F.struct(
                F.lit(dimension).alias("dimension"),
                (F.lit("all") if dimension == "total" else F.col(dimension)).alias("dimension_value"),
            )
            for dimension in DIMENSIONS
        ]
    )
    rolled = (
        cells.select("*", F.explode(dimension_values).alias("group"))
        .groupBy("group.dimension", "group.dimension_value", "model")
        .agg(
            F.sum("series").alias("series"),
            F.sum("folds").alias("folds"),
            *[(F.sum(f"sum_{m}") / F.nullif(F.sum(f"count_{m}"), F.lit(0))).alias(m) for m in METRICS],
        )
    )
    return conform(
        rolled.select(
            "*",
            F.lit(stamp.run_id).alias("run_id"),
            F.lit(stamp.run_date).alias("run_date"),
            F.lit(settings.freq).alias("freq"),
            F.lit(stamp.forecast_run_id).alias("forecast_run_id"),
            F.lit(stamp.config_hash).alias("config_hash"),
        ),
        FORECAST_ACCURACY_SCHEMA,
    )
