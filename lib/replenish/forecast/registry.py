"""Reading `gold.model_registry` back: the stored ARIMA orders a warm start reuses.

Each run writes one registry row per series and model, with the fitted orders, coefficients and the
backtest MASE recorded when the orders were selected (`params` JSON). A nightly run reads, per
series, the newest ARIMA row of the same frequency and re-estimates only the parameters of those
orders, starting from the stored coefficients, or, where the newest row says the ARIMA search
failed, skips ARIMA (see `series.run_candidate` for when it searches again instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from replenish.errors import ValidationError
from replenish.forecast.series import ARIMA_FAILED_ON

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

REGISTRY_COLUMNS_READ: tuple[str, ...] = ("run_id", "run_date", "freq", "sku", "location", "model", "params")


def latest_arima_orders(registry: DataFrame, freq: str) -> DataFrame:
    """(sku, location, warm_params, warm_run_id) of each series' newest ARIMA registry row of `freq`.

    The rows considered are the ARIMA rows and the rows of the models series fell back to after
    their ARIMA failed (`params.arima_failed_on`): the newest says whether the series has orders to
    reuse or a recent failure not to repeat. "Newest" is the latest `run_date`, ties broken by the
    larger `run_id` (run ids sort by time). One small window; nothing is collected.

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
            (F.col("freq") == F.lit(freq))
            & F.col("params").isNotNull()
            & ((F.col("model") == F.lit("arima")) | F.get_json_object("params", f"$.{ARIMA_FAILED_ON}").isNotNull())
        )
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select("sku", "location", F.col("params").alias("warm_params"), F.col("run_id").alias("warm_run_id"))
    )
