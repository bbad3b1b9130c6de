"""What a job's tables say that its result dict does not: the aggregates logged per run.

Pure functions over DataFrames and text; `replenish.tracking.jobs` reads the tables and logs the output.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BACKTEST_METRICS: tuple[str, ...] = ("mase", "wape", "bias", "rmse", "coverage_80", "coverage_95")
"""The `gold.forecast_backtest` measures logged per model and class."""

CLASS_COLUMNS: tuple[str, ...] = ("demand_class", "abc_xyz")
"""The classes of `silver.series_profile` backtest metrics are broken down by."""


def backtest_summary(backtest: DataFrame, profile: DataFrame | None = None) -> DataFrame:
    """Mean backtest measures per model, overall and per class: long rows (model, grouping, class, metric, value).

    The mean is over the (series, fold) rows of `gold.forecast_backtest`, nulls ignored, as the
    forecast job's own `backtest_mase` summary computes it. `grouping` is `all` (class `all`) or a
    column of `CLASS_COLUMNS` present in `profile`.

    Args:
        backtest: `gold.forecast_backtest` rows of one run and frequency.
        profile: `silver.series_profile` of that frequency (freq, sku, location, classes), or None.
    """
    from pyspark.sql import functions as F

    measures = [F.avg(name).alias(name) for name in BACKTEST_METRICS]
    frames = [
        backtest.groupBy("model")
        .agg(*measures)
        .select("model", F.lit("all").alias("grouping"), F.lit("all").alias("class"), *BACKTEST_METRICS)
    ]
    if profile is not None:
        columns = [name for name in CLASS_COLUMNS if name in profile.columns]
        joined = backtest.join(profile.select("freq", "sku", "location", *columns), ["freq", "sku", "location"], "left")
        for column in columns:
            frames.append(
                joined.groupBy("model", column)
                .agg(*measures)
                .select(
                    "model",
                    F.lit(column).alias("grouping"),
                    F.coalesce(F.col(column), F.lit("unknown")).alias("class"),
                    *BACKTEST_METRICS,
                )
            )
    wide = frames[0]
    for frame in frames[1:]:
        wide = wide.unionByName(frame)
    stacked = F.expr(
        f"stack({len(BACKTEST_METRICS)}, " + ", ".join(f"'{name}', {name}" for name in BACKTEST_METRICS) + ")"
    ).alias("metric", "value")
    return wide.select("model", "grouping", "class", stacked).where(F.col("value").isNotNull())


def backtest_metric_key(model: str, grouping: str, class_: str, metric: str) -> str:
    """`backtest/arima/mase` overall, `backtest/arima/demand_class/smooth/mase` per class."""
    if grouping == "all":
        return f"backtest/{model}/{metric}"
    return f"backtest/{model}/{grouping}/{class_}/{metric}"


def selection_summary(selection: DataFrame, safety_stock: DataFrame | None = None) -> DataFrame:
    """Series per selected model and method, with the mean winning metric, per ABC-XYZ and demand class.

    Args:
        selection: `gold.model_selection` rows of one inventory run.
        safety_stock: `gold.safety_stock` of the same run (for the series' classes), or None.
    """
    from pyspark.sql import functions as F

    keys = ["selected_model", "selection_method", "selection_metric"]
    rows = selection
    if safety_stock is not None:
        classes = [name for name in ("abc_xyz", "demand_class") if name in safety_stock.columns]
        rows = selection.join(
            safety_stock.select("run_id", "sku", "location", *classes), ["run_id", "sku", "location"], "left"
        )
        keys = [*classes, *keys]
    return (
        rows.groupBy(*keys)
        .agg(F.count("*").alias("series"), F.avg("metric_value").alias("mean_metric_value"))
        .orderBy(*keys)
    )


_IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')


def report_images(text: str) -> dict[str, bytes]:
    """The PNG figures embedded in the HTML report, by a file name made from each one's alt text."""
    images: dict[str, bytes] = {}
    for index, (payload, alt) in enumerate(_IMAGE.findall(text), start=1):
        slug = re.sub(r"[^a-z0-9]+", "_", html.unescape(alt).lower()).strip("_")[:60] or "figure"
        images[f"{index:02d}_{slug}.png"] = base64.b64decode(payload)
    return images
