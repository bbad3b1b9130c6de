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

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.inventory.settings import InventoryConfig, SelectionConfig

log = logging.getLogger(__name__)

SERIES_KEYS: tuple[str, ...] = ("sku", "location")
BLEND_MODEL = "blend"
FORECAST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "date", "step", "yhat")
BACKTEST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "fold", "date", "step", "y", "yhat")
# A pool's mean error corrects the demand rate only when this many series share it: the mean of a
# handful is their own bias again, which does not persist (see `backtest_errors`).
BIAS_POOL_MIN_SERIES = 30
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


def backtest_errors(
    backtest: DataFrame, freq: str, *, keep_path: bool, demand_classes: DataFrame | None = None
) -> DataFrame:
    """Per series × model backtest error statistics over the scored periods of every fold.

    Periods without an actual or a prediction, and censored periods (mostly out of stock, so the
    actual understates demand), are not scored.

    Besides the usual measures the errors e = actual − forecast are split into a per-period part and a
    persistent part (a one-way random-effects decomposition by fold): a forecast that starts too low
    tends to stay too low for the whole window, so errors summed over a lead time grow faster than
    √L·σ. With m_f the mean error of fold f and n̄ the mean number of periods per fold:

    * error_variance σ_u²: the pooled within-fold variance of the errors;
    * level_error_variance σ_b²: the variance of the persistent level error (a systematic bias counts
      in it too). Per series, mean_f(m_f²) − σ_u² / n̄ estimates it without bias, but from two or
      three folds that estimate is all noise (a χ² with as many degrees of freedom). So the share
      λ = σ_b² / σ_u² is pooled over all series of the same model and demand class (it is a trait of
      the method: a seasonal-naive forecast repeats last week's noise into every future week) as
      Σ(mean_f(m_f²) − σ_u²/n̄) / Σσ_u², and each series gets σ_b² = λ · σ_u².

    The error of a sum over P periods then has variance P·σ_u² + P²·σ_b² (`formulas.demand_std`).

    * bias_share: the pool's mean error as a share of its forecast, Σe / Σŷ over the same model and
      demand class. A series' own mean error does not predict its next window (on the demo data
      their correlation across series is about 0), but the pool's does: a model without a trend
      lags a growing demand by a stable few percent, fold after fold. `policy` scales the demand
      rate by (1 + bias_share). 0 for pools of fewer than `BIAS_POOL_MIN_SERIES` series. (σ_b² keeps
      the small part of the bias it counted: conservative.)

    Args:
        backtest: `gold.backtest_forecast` rows of one forecast run.
        freq: the frequency to score.
        keep_path: also return error_path, the errors as array of struct(fold, step, error) ordered by
            fold and step, from which lead-time error windows are cut (for intermittent series).
        demand_classes: sku, location, demand_class: the groups the level share is pooled in, besides
            the model (default: pooled per model only).

    Returns columns sku, location, model, backtest_periods, folds, rmse, mae, wape (NULL when the
    actuals sum to 0), error_variance, level_error_variance, bias_share [, error_path].
    """
    require_columns(backtest, BACKTEST_COLUMNS, "backtest")
    usable = F.col("y").isNotNull() & F.col("yhat").isNotNull() & ~F.isnan("y") & ~F.isnan("yhat")
    if "censored" in backtest.columns:
        usable = usable & ~F.coalesce(F.col("censored"), F.lit(False))
    scored = (
        backtest.where(F.col("freq") == freq)
        .where(usable)
        .select(
            *SERIES_KEYS,
            "model",
            F.col("fold").cast("int").alias("fold"),
            "step",
            "y",
            "yhat",
            (F.col("y") - F.col("yhat")).alias("error"),
        )
    )
    per_fold = [
        F.count("*").alias("n"),
        F.sum("error").alias("sum_error"),
        F.sum(F.col("error") * F.col("error")).alias("sum_squares"),
        F.sum(F.abs("error")).alias("sum_absolute"),
        F.sum(F.abs("y")).alias("sum_actual"),
        F.sum("yhat").alias("sum_forecast"),
    ]
    if keep_path:
        per_fold.append(
            F.sort_array(F.collect_list(F.struct("fold", F.col("step").cast("int").alias("step"), "error"))).alias(
                "path"
            )
        )
    folds = scored.groupBy(*SERIES_KEYS, "model", "fold").agg(*per_fold)
    periods = F.sum("n")
    per_model = [
        periods.alias("backtest_periods"),
        F.count("*").alias("folds"),
        F.sqrt(F.sum("sum_squares") / periods).alias("rmse"),
        (F.sum("sum_absolute") / periods).alias("mae"),
        (F.sum("sum_absolute") / F.nullif(F.sum("sum_actual"), F.lit(0.0))).alias("wape"),
        (
            F.sum(F.col("sum_squares") - F.col("sum_error") * F.col("sum_error") / F.col("n"))
            / F.nullif(periods - F.count("*"), F.lit(0))
        ).alias("within_variance"),
        F.avg((F.col("sum_error") / F.col("n")) ** 2).alias("fold_mean_square"),
        F.avg("n").alias("mean_fold_periods"),
        F.sum("sum_error").alias("total_error"),
        F.sum("sum_forecast").alias("total_forecast"),
    ]
    if keep_path:
        per_model.append(F.flatten(F.sort_array(F.collect_list("path"))).alias("error_path"))
    stats = folds.groupBy(*SERIES_KEYS, "model").agg(*per_model)
    # A fold of one period has no within-fold spread: the per-period variance is then the mean square.
    # Σe² − (Σe)²/n can come out a hair below 0 when every error of a fold is the same.
    error_variance = F.greatest(F.coalesce(F.col("within_variance"), F.col("rmse") * F.col("rmse")), F.lit(0.0))
    stats = stats.withColumn("error_variance", error_variance).withColumn(
        "level_excess", F.col("fold_mean_square") - F.col("error_variance") / F.col("mean_fold_periods")
    )
    # One row per model (and class): the pooled persistent share λ, never below 0.
    if demand_classes is not None:
        classes = demand_classes.select(*SERIES_KEYS, F.coalesce("demand_class", F.lit("unknown")).alias("pool"))
        stats = stats.join(classes, list(SERIES_KEYS), "left").withColumn("pool", F.coalesce("pool", F.lit("unknown")))
    else:
        stats = stats.withColumn("pool", F.lit("all"))
    # A ratio of sums: series whose errors barely vary (a share 0/0) weigh nothing, not infinitely.
    pooled = stats.groupBy("model", "pool").agg(
        F.greatest(F.sum("level_excess") / F.nullif(F.sum("error_variance"), F.lit(0.0)), F.lit(0.0)).alias(
            "pooled_level_share"
        ),
        F.when(
            F.countDistinct(*SERIES_KEYS) >= BIAS_POOL_MIN_SERIES,
            F.sum("total_error") / F.when(F.sum("total_forecast") > 0, F.sum("total_forecast")),
        ).alias("pooled_bias_share"),
    )
    return stats.join(F.broadcast(pooled), ["model", "pool"], "left").select(
        *SERIES_KEYS,
        "model",
        "backtest_periods",
        "folds",
        "rmse",
        "mae",
        "wape",
        "error_variance",
        (F.coalesce(F.col("pooled_level_share"), F.lit(0.0)) * F.col("error_variance")).alias("level_error_variance"),
        F.coalesce(F.col("pooled_bias_share"), F.lit(0.0)).alias("bias_share"),
        *(["error_path"] if keep_path else []),
    )


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
    # The lead-time metric needs each series' lead time; ranking the blend's parts by RMSE is close enough.
    rank_by = settings.metric if settings.metric in errors.columns else "rmse"
    ranked = eligible.withColumn(
        "rank",
        F.row_number().over(_series_window().orderBy(F.col(rank_by).asc_nulls_last(), F.col("model"))),
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
    forecast: DataFrame,
    backtest: DataFrame,
    settings: InventoryConfig,
    *,
    keep_error_path: bool,
    demand_classes: DataFrame | None = None,
    protection_periods: DataFrame | None = None,
) -> DataFrame:
    """Score every candidate forecast per series and keep the winner (see `select_models`).

    With the `lead_time_rmse` metric a candidate is scored by the standard deviation of its error
    summed over the series' protection interval P (review period plus lead time), √(P·σ_u² + P²·σ_b²)
    (`backtest_errors`): the error the safety stock has to absorb, so the winner is the model that needs
    the least stock. A forecast whose level error persists (a seasonal-naive one on intermittent demand)
    loses to a smoother one even where its per-period RMSE is lower.

    Args:
        forecast, backtest: one forecast run's rows.
        settings: the `inventory:` settings.
        keep_error_path: keep the chosen candidate's backtest errors (for empirical safety stocks).
        demand_classes: sku, location, demand_class (pools of the level share).
        protection_periods: sku, location, protection_periods (P in periods); series without a row
            use the default lead time plus the review period.

    Returns one row per series with `chosen` (struct: model, forecast_path, horizon,
    horizon_demand_rate, interval_error_std, forecast_start, backtest_periods, rmse, mae, wape, bias
    [, error_path], blend_weights) and the selection columns.
    """
    selection = settings.selection
    freq = settings.freq
    candidates = forecast_candidates(forecast, freq)
    errors = backtest_errors(backtest, freq, keep_path=keep_error_path, demand_classes=demand_classes)
    if selection.method == "blend":
        blended_forecast, blended_backtest = blend_candidates(forecast, backtest, errors, selection, freq)
        weights = blended_forecast.select(*SERIES_KEYS, "blend_weights").dropDuplicates(list(SERIES_KEYS))
        candidates = candidates.unionByName(forecast_candidates(blended_forecast.drop("blend_weights"), freq))
        errors = errors.unionByName(
            backtest_errors(blended_backtest, freq, keep_path=keep_error_path, demand_classes=demand_classes)
        )
        candidates = candidates.join(weights.withColumn("model", F.lit(BLEND_MODEL)), [*SERIES_KEYS, "model"], "left")
    else:
        candidates = candidates.withColumn("blend_weights", F.lit(None).cast("string"))
    joined = candidates.join(errors, [*SERIES_KEYS, "model"], "left")
    if selection.metric == "lead_time_rmse":
        default = (settings.default_lead_time_days + settings.review_period_days) / settings.period_days
        if protection_periods is not None:
            joined = joined.join(protection_periods, list(SERIES_KEYS), "left")
        else:
            joined = joined.withColumn("protection_periods", F.lit(None).cast("double"))
        periods = F.coalesce(F.col("protection_periods"), F.lit(default))
        joined = joined.withColumn(
            "lead_time_rmse",
            F.sqrt(periods * F.col("error_variance") + periods * periods * F.col("level_error_variance")),
        ).drop("protection_periods")
    return select_models(joined, selection)
