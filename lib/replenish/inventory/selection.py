"""Model selection, the closed loop: per series, the candidate forecast with the lowest backtest error.

Every model in the forecast run is a candidate. Its backtest predictions against actuals
(`gold.backtest_forecast`) are scored per series; the lowest error wins, and the choice, the scores
of all candidates and a readable reason are recorded. With `method: blend` an inverse-MSE weighted
blend of the best `blend_top` models is scored on the same backtest periods as one more candidate.

The winner's backtest errors then size the safety stock (see `policy`): the root mean squared error
is the per-period σ_d, and for intermittent series the errors summed over lead-time windows give the
empirical distribution. Selecting on RMSE therefore picks the model that needs the least stock.

All of it is DataFrame expressions: two aggregations (per series × model, then per series) whose
arrays are read with higher-order functions; no Python UDF.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.inventory.settings import InventoryConfig, SelectionConfig

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

SERIES_KEYS: tuple[str, ...] = ("sku", "location")
BLEND_MODEL = "blend"
FORECAST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "date", "step", "yhat")
BACKTEST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "fold", "date", "step", "y", "yhat")
# z of a central 80 % interval: the half-width of an 80 % interval is 1.2816 σ.
Z_80 = 1.2815515655446004


def require_columns(df: DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    """Raise ValidationError naming the input and the columns it lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValidationError(f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")


def forecast_candidates(forecast: DataFrame, freq: str) -> DataFrame:
    """One row per series × model of the forecast run: the forecast path and what it implies.

    Returns columns sku, location, model, forecast_path (array of struct(step, yhat), by step),
    horizon, horizon_demand_rate (mean yhat over the horizon, floored at 0), interval_error_std
    (σ implied by the 80 % interval, NULL without one), forecast_start (first forecast date).
    """
    require_columns(forecast, FORECAST_COLUMNS, "forecast")
    interval = (
        (F.col("yhat_hi_80") - F.col("yhat_lo_80")) / (2.0 * Z_80)
        if {"yhat_hi_80", "yhat_lo_80"} <= set(forecast.columns)
        else F.lit(None).cast("double")
    )
    return (
        forecast.where(F.col("freq") == freq)
        .where(F.col("yhat").isNotNull() & ~F.isnan("yhat"))
        .groupBy(*SERIES_KEYS, "model")
        .agg(
            F.sort_array(F.collect_list(F.struct(F.col("step").cast("int").alias("step"), "yhat"))).alias(
                "forecast_path"
            ),
            F.max("step").cast("int").alias("horizon"),
            F.greatest(F.avg("yhat"), F.lit(0.0)).alias("horizon_demand_rate"),
            F.avg(interval).alias("interval_error_std"),
            F.min("date").alias("forecast_start"),
        )
    )


def backtest_errors(backtest: DataFrame, freq: str, *, keep_path: bool) -> DataFrame:
    """Per series × model backtest error statistics over every scored period of every fold.

    Args:
        backtest: `gold.backtest_forecast` rows of one forecast run.
        freq: the frequency to score.
        keep_path: also return error_path, the errors as array of struct(fold, step, error) ordered by
            fold and step, from which lead-time error windows are cut (for intermittent series).

    Returns columns sku, location, model, backtest_periods, rmse, mae, wape (NULL when actual demand
    sums to 0), bias (mean error, actual − forecast) [, error_path].
    """
    require_columns(backtest, BACKTEST_COLUMNS, "backtest")
    scored = (
        backtest.where(F.col("freq") == freq)
        .where(F.col("y").isNotNull() & F.col("yhat").isNotNull() & ~F.isnan("y") & ~F.isnan("yhat"))
        .withColumn("error", F.col("y") - F.col("yhat"))
    )
    aggregates = [
        F.count("error").alias("backtest_periods"),
        F.sqrt(F.avg(F.col("error") * F.col("error"))).alias("rmse"),
        F.avg(F.abs("error")).alias("mae"),
        (F.sum(F.abs("error")) / F.nullif(F.sum(F.abs("y")), F.lit(0.0))).alias("wape"),
        F.avg("error").alias("bias"),
    ]
    if keep_path:
        aggregates.append(
            F.sort_array(
                F.collect_list(
                    F.struct(F.col("fold").cast("int").alias("fold"), F.col("step").cast("int").alias("step"), "error")
                )
            ).alias("error_path")
        )
    return scored.groupBy(*SERIES_KEYS, "model").agg(*aggregates)


def blend_candidates(
    forecast: DataFrame, backtest: DataFrame, errors: DataFrame, settings: SelectionConfig, freq: str
) -> tuple[DataFrame, DataFrame]:
    """The inverse-MSE blend of each series' `blend_top` best models, as a forecast and a backtest.

    Weights are w_m ∝ 1 / MSE_m over the models ranked best by the selection metric; the blend's
    backtest predictions are the same weighted sums on each backtest period, so it is scored (and
    sized) on its own errors, not on an assumption about how its components' errors correlate.

    Returns (forecast rows, backtest rows) with model = `blend`, plus a per-series weights frame is
    attached as column blend_weights (JSON) on every forecast row.
    """
    eligible = errors.where(F.col("backtest_periods") >= settings.min_backtest_periods).where(F.col("rmse") > 0)
    ranked = eligible.withColumn(
        "rank",
        F.row_number().over(_series_window().orderBy(F.col(settings.metric).asc_nulls_last(), F.col("model"))),
    ).where(F.col("rank") <= settings.blend_top)
    weights = (
        ranked.withColumn("inverse_mse", 1.0 / (F.col("rmse") * F.col("rmse")))
        .withColumn("models", F.count("*").over(_series_window()))
        .where(F.col("models") >= 2)
        .withColumn("weight", F.col("inverse_mse") / F.sum("inverse_mse").over(_series_window()))
        .select(*SERIES_KEYS, "model", "weight")
    )
    weights_json = weights.groupBy(*SERIES_KEYS).agg(
        F.to_json(F.map_from_entries(F.sort_array(F.collect_list(F.struct("model", F.round("weight", 4)))))).alias(
            "blend_weights"
        ),
        F.count("*").alias("blend_models"),
    )
    keys = [*SERIES_KEYS, "model"]
    blended_forecast = (
        forecast.where(F.col("freq") == freq)
        .join(F.broadcast(weights) if False else weights, keys)
        .groupBy(*SERIES_KEYS, "date", "step")
        .agg(*_weighted_sums(forecast.columns), F.count("*").alias("parts"))
        .join(weights_json, list(SERIES_KEYS))
        .where(F.col("parts") == F.col("blend_models"))
        .drop("parts", "blend_models")
        .withColumn("freq", F.lit(freq))
        .withColumn("model", F.lit(BLEND_MODEL))
    )
    blended_backtest = (
        backtest.where(F.col("freq") == freq)
        .join(weights, keys)
        .groupBy(*SERIES_KEYS, "fold", "date", "step")
        .agg(*_weighted_sums(backtest.columns), F.first("y").alias("y"), F.count("*").alias("parts"))
        .join(weights_json.drop("blend_weights"), list(SERIES_KEYS))
        .where(F.col("parts") == F.col("blend_models"))
        .drop("parts", "blend_models")
        .withColumn("freq", F.lit(freq))
        .withColumn("model", F.lit(BLEND_MODEL))
    )
    return blended_forecast, blended_backtest


def _weighted_sums(columns: list[str]) -> list[Column]:
    value_columns = [c for c in ("yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95") if c in columns]
    return [F.sum(F.col(c) * F.col("weight")).alias(c) for c in value_columns]


def _series_window():  # type: ignore[no-untyped-def]
    from pyspark.sql import Window

    return Window.partitionBy(*SERIES_KEYS)


def select_models(candidates: DataFrame, settings: SelectionConfig) -> DataFrame:
    """Choose one candidate per series and say why.

    Args:
        candidates: `forecast_candidates` left-joined with `backtest_errors` on sku, location, model
            (every forecast model of a series is a candidate, scored or not).
        settings: metric, minimum scored periods, fallback preference.

    Returns one row per series: sku, location, chosen (the winning candidate's struct, with every
    candidate column), candidates (int), scored_candidates (int), candidate_scores (JSON map model →
    metric over the scored candidates), selection_method (best, blend or fallback), reason.
    """
    metric = settings.metric
    preference = (
        F.create_map(
            *[item for rank, model in enumerate(settings.fallback_models) for item in (F.lit(model), F.lit(rank))]
        )
        if settings.fallback_models
        else None
    )
    fallback_rank = (
        F.coalesce(F.element_at(preference, F.col("model")), F.lit(len(settings.fallback_models))).cast("double")
        if preference is not None
        else F.lit(0.0)
    )
    scored = (F.col("backtest_periods") >= settings.min_backtest_periods) & F.col(metric).isNotNull()
    candidate_fields = [c for c in candidates.columns if c not in SERIES_KEYS]
    ranked = candidates.withColumn("scored", F.coalesce(scored, F.lit(False))).withColumn(
        "sort_key",
        F.when(F.col("scored"), F.col(metric)).otherwise(fallback_rank),
    )
    per_series = ranked.groupBy(*SERIES_KEYS).agg(
        F.sort_array(
            F.collect_list(
                F.struct(
                    (~F.col("scored")).alias("unscored"),
                    "sort_key",
                    *[F.col(c) for c in candidate_fields],
                    "scored",
                )
            )
        ).alias("ranked")
    )
    scored_list = F.filter("ranked", lambda c: c["scored"])
    score_text = F.transform(scored_list, lambda c: F.concat(c["model"], F.lit(" "), F.format_number(c[metric], 3)))
    chosen = F.col("ranked")[0]
    fallback_reason = f"no model has {settings.min_backtest_periods}+ scored backtest periods; " + (
        "first available of fallback_models" if settings.fallback_models else "alphabetically first model"
    )
    return per_series.select(
        *SERIES_KEYS,
        chosen.alias("chosen"),
        F.size("ranked").alias("candidates"),
        F.size(scored_list).alias("scored_candidates"),
        F.when(
            F.size(scored_list) > 0,
            F.to_json(F.map_from_entries(F.transform(scored_list, lambda c: F.struct(c["model"], c[metric])))),
        ).alias("candidate_scores"),
        F.when(~chosen["scored"], F.lit("fallback"))
        .when(chosen["model"] == BLEND_MODEL, F.lit("blend"))
        .otherwise(F.lit("best"))
        .alias("selection_method"),
        F.when(~chosen["scored"], F.lit(fallback_reason))
        .otherwise(
            F.concat(
                F.lit(f"lowest backtest {metric} of "),
                F.size(scored_list).cast("string"),
                F.lit(" scored candidate(s): "),
                F.array_join(score_text, ", "),
            )
        )
        .alias("reason"),
    )


def choose_forecasts(
    forecast: DataFrame, backtest: DataFrame, settings: InventoryConfig, *, keep_error_path: bool
) -> DataFrame:
    """Score every candidate forecast per series and keep the winner (see `select_models`).

    Returns one row per series with `chosen` (struct: model, forecast_path, horizon,
    horizon_demand_rate, interval_error_std, forecast_start, backtest_periods, rmse, mae, wape, bias
    [, error_path], blend_weights) and the selection columns.
    """
    selection = settings.selection
    freq = settings.freq
    candidates = forecast_candidates(forecast, freq)
    errors = backtest_errors(backtest, freq, keep_path=keep_error_path)
    if selection.method == "blend":
        blended_forecast, blended_backtest = blend_candidates(forecast, backtest, errors, selection, freq)
        weights = blended_forecast.select(*SERIES_KEYS, "blend_weights").dropDuplicates(list(SERIES_KEYS))
        candidates = candidates.unionByName(forecast_candidates(blended_forecast.drop("blend_weights"), freq))
        errors = errors.unionByName(backtest_errors(blended_backtest, freq, keep_path=keep_error_path))
        candidates = candidates.join(weights.withColumn("model", F.lit(BLEND_MODEL)), [*SERIES_KEYS, "model"], "left")
    else:
        candidates = candidates.withColumn("blend_weights", F.lit(None).cast("string"))
    joined = candidates.join(errors, [*SERIES_KEYS, "model"], "left")
    return select_models(joined, selection)


def describe_selection(settings: SelectionConfig) -> str:
    """The selection settings as a JSON string, for logs and run summaries."""
    return json.dumps(
        {
            "metric": settings.metric,
            "method": settings.method,
            "blend_top": settings.blend_top,
            "min_backtest_periods": settings.min_backtest_periods,
        }
    )
