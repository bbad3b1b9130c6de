"""Reading `gold.model_registry` back: the stored ARIMA orders a warm start reuses.

Each run writes one registry row per series and model, with the fitted orders, coefficients and the
backtest MASE recorded when the orders were selected (`params` JSON). A nightly run reads, per
series, the newest ARIMA row of the same frequency and re-estimates only the parameters of those
orders (see `series.run_candidate` for when it searches again instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from replenish.errors import ValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

REGISTRY_COLUMNS_READ: tuple[str, ...] = ("run_id", "run_date", "freq", "sku", "location", "model", "params")


def latest_arima_orders(registry: DataFrame, freq: str) -> DataFrame:
    """(sku, location, warm_params, warm_run_id) of each series' newest ARIMA registry row of `freq`.

    "Newest" is the latest `run_date`, ties broken by the larger `run_id` (run ids sort by time).
    One small window over the registry's ARIMA rows; nothing is collected.

    Raises:
        ValidationError: the registry lacks a column this needs.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    missing = [name for name in REGISTRY_COLUMNS_READ if name not in registry.columns]
    if missing:
        raise ValidationError(f"gold.model_registry lacks column(s) {missing}")
    newest_first = Window.partitionBy("sku", "location").orderBy(F.col("run_date").desc(), F.col("run_id").desc())
    return (
        registry.where(
            (F.col("freq") == F.lit(freq)) & (F.col("model") == F.lit("arima")) & F.col("params").isNotNull()
        )
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select("sku", "location", F.col("params").alias("warm_params"), F.col("run_id").alias("warm_run_id"))
    )
