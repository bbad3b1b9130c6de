"""Model selection, the closed loop: per series, the candidate forecast with the lowest backtest error.

Every model in the forecast run is a candidate. Its backtest predictions against actuals
(`gold.backtest_forecast`) are scored per series; the lowest error wins, and the choice, the scores
of all candidates and a readable reason are recorded. With `method: blend` an inverse-MSE weighted
blend of the best `blend_top` models is scored on the same backtest periods as one more candidate.

The winner's backtest errors then size the safety stock (see `policy`): the root mean squared error
is the per-period σ_d, and for intermittent series the errors summed over lead-time windows give the
empirical distribution. Selecting on RMSE therefore picks the model that needs the least stock.

All of it is DataFrame expressions: an aggregation per series × model and a window per series; no
Python UDF. Above the window no expression lacks generated code (no lambda, no `to_json`), so the
choice and the policy after it run as one code-generated stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from replenish.inventory.settings import InventoryConfig, SelectionConfig
from replenish.shared import SERIES_KEYS, require_columns

log = logging.getLogger(__name__)

BLEND_MODEL = "blend"
FORECAST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "date", "step", "yhat")
BACKTEST_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "model", "fold", "date", "step", "y", "yhat")
# A pool's mean error corrects the demand rate only when this many series share it: the mean of a
# handful is their own bias again, which does not persist (see `backtest_errors`).
BIAS_POOL_MIN_SERIES = 30
# z of a central 80 % interval: the half-width of an 80 % interval is 1.2816 σ.
Z_80 = 1.2815515655446004


def partition_by_sku(df: DataFrame) -> DataFrame:
    """`df` hash-partitioned by SKU: the one shuffle by SKU each input of the plan goes through.

    The forecast and backtest rows are first aggregated per series × model (Spark sums them before
    their shuffle, so a row per series and model crosses it instead of one per period); those
    aggregates and the other inputs are then partitioned by SKU. Every later window (per series) and
    join (on sku, location, model or sku alone) is clustered by SKU, so Spark runs them without another
    exchange, provided the session lets a join reuse a partitioning on a subset of its keys
    (`spark.sql.requireAllClusterKeysForCoPartition=false`, see `replenish.inventory.policy.PLANNING_CONF`).
    With the Spark default each join shuffles again: slower, same result.
    """
    return df.repartition("sku")


@dataclass(frozen=True)
class BacktestGrid:
    """The steps of a forecast run and the folds and steps of its backtest.

    Knowing them up front lets every per-series array (forecast path, backtest errors) be built by
    plain conditional aggregates, which Spark runs in its hash aggregation with fixed-width buffers,
    instead of `collect_list` of structs, which needs object buffers and a sort per series.

    Attributes:
        forecast_steps: the greatest forecast step (steps run 1..forecast_steps).
        folds: the backtest's fold ids, ascending.
        backtest_steps: the greatest backtest step.
    """

    forecast_steps: int
    folds: tuple[int, ...]
    backtest_steps: int


def backtest_grid(forecast: DataFrame, backtest: DataFrame, freq: str) -> BacktestGrid:
    """The grid of one forecast run's rows (two small aggregates over integer columns reach the driver)."""
    require_columns(forecast, ("freq", "step"), "forecast")
    require_columns(backtest, ("freq", "fold", "step"), "backtest")
    forecast_steps = forecast.where(F.col("freq") == freq).agg(F.max("step")).collect()[0][0]
    # A hash aggregate on the fold (a row per fold reaches the driver): `collect_set` would need an
    # object aggregation buffer per task.
    folds = (
        backtest.where(F.col("freq") == freq)
        .groupBy(F.col("fold").cast("int").alias("fold"))
        .agg(F.max("step").alias("steps"))
        .collect()
    )
    return BacktestGrid(
        forecast_steps=int(forecast_steps or 0),
        folds=tuple(sorted(int(row["fold"]) for row in folds if row["fold"] is not None)),
        backtest_steps=int(max((row["steps"] for row in folds if row["steps"] is not None), default=0)),
    )


def _dense_path(cells: list[str], value: str, element_type: str) -> Column:
    """The aggregate cells (one per grid point, in order) as an array, without the points a series lacks."""
    if not cells:
        return F.expr(f"CAST(array() AS ARRAY<{element_type}>)")
    return F.expr(f"filter(array({', '.join(cells)}), x -> x.{value} IS NOT NULL)")


def forecast_candidates(forecast: DataFrame, freq: str, steps: int) -> DataFrame:
    """One row per series × model of the forecast run: the forecast path and what it implies.

    Args:
        forecast: forecast rows (`FORECAST_COLUMNS`, optionally the 80 % interval).
        freq: the frequency to read.
        steps: the greatest step of the run (`BacktestGrid.forecast_steps`); later steps are ignored.

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
    forecast_path = _dense_path(
        [f"named_struct('step', {k}, 'yhat', max(CASE WHEN step = {k} THEN yhat END))" for k in range(1, steps + 1)],
        "yhat",
        "STRUCT<step: INT, yhat: DOUBLE>",
    )
    candidates = (
        forecast.where(F.col("freq") == freq)
        .where(F.col("yhat").isNotNull() & ~F.isnan("yhat"))
        .select(
            *SERIES_KEYS, "model", F.col("step").cast("int").alias("step"), "yhat", interval.alias("interval"), "date"
        )
        .groupBy(*SERIES_KEYS, "model")
        .agg(
            forecast_path.alias("forecast_path"),
            F.max("step").alias("horizon"),
            F.greatest(F.avg("yhat"), F.lit(0.0)).alias("horizon_demand_rate"),
            F.avg("interval").alias("interval_error_std"),
            F.min("date").alias("forecast_start"),
        )
    )
    return partition_by_sku(candidates)


def backtest_errors(
    backtest: DataFrame,
    freq: str,
    grid: BacktestGrid,
    *,
    keep_path: bool,
    demand_classes: DataFrame | None = None,
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
        grid: the run's folds and steps (`backtest_grid`); rows of other folds or later steps are ignored.
        keep_path: also return error_path, the errors as array of struct(fold, step, error) ordered by
            fold and step, from which lead-time error windows are cut (for intermittent series).
        demand_classes: sku, location, demand_class: the groups the level share is pooled in, besides
            the model (default: pooled per model only).

    Returns columns sku, location, model, backtest_periods, folds, rmse, mae, wape (NULL when the
    actuals sum to 0), error_variance, level_error_variance, bias_share [, error_path].
    """
    require_columns(backtest, BACKTEST_COLUMNS, "backtest")
    sums = fold_error_sums(backtest, freq, grid, keep_path=keep_path)
    stats = series_error_statistics(sums, grid, keep_path=keep_path, demand_classes=demand_classes)
    pooled = pooled_error_shares(stats)
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


def fold_error_sums(backtest: DataFrame, freq: str, grid: BacktestGrid, *, keep_path: bool) -> DataFrame:
    """The scored backtest rows summed per series × model, in one aggregation, partitioned by SKU.

    Returns sku, location, model, backtest_periods, sum_squares, sum_absolute, sum_actual,
    total_error, total_forecast, and per fold i of the grid (its position in `grid.folds`) n_{i},
    sum_error_{i} and sum_squares_{i} [, error_path].
    """
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
    # One aggregation per series × model; the per-fold sums are columns of it (one per fold of the grid).
    fold_sums: list[Column] = []
    for i, fold in enumerate(grid.folds):
        in_fold = F.col("fold") == fold
        fold_sums += [
            F.count(F.when(in_fold, 1)).alias(f"n_{i}"),
            F.sum(F.when(in_fold, F.col("error"))).alias(f"sum_error_{i}"),
            F.sum(F.when(in_fold, F.col("error") * F.col("error"))).alias(f"sum_squares_{i}"),
        ]
    per_model = [
        F.count("*").alias("backtest_periods"),
        F.sum(F.col("error") * F.col("error")).alias("sum_squares"),
        F.sum(F.abs("error")).alias("sum_absolute"),
        F.sum(F.abs("y")).alias("sum_actual"),
        F.sum("error").alias("total_error"),
        F.sum("yhat").alias("total_forecast"),
        *fold_sums,
    ]
    if keep_path:
        cells = [
            f"named_struct('fold', {fold}, 'step', {step}, "
            f"'error', max(CASE WHEN fold = {fold} AND step = {step} THEN error END))"
            for fold in grid.folds
            for step in range(1, grid.backtest_steps + 1)
        ]
        per_model.append(_dense_path(cells, "error", "STRUCT<fold: INT, step: INT, error: DOUBLE>").alias("error_path"))
    in_grid = F.col("fold").isin(list(grid.folds)) & (F.col("step") <= grid.backtest_steps)
    return partition_by_sku(scored.where(in_grid).groupBy(*SERIES_KEYS, "model").agg(*per_model))


def series_error_statistics(
    sums: DataFrame, grid: BacktestGrid, *, keep_path: bool, demand_classes: DataFrame | None = None
) -> DataFrame:
    """Per series × model error measures from `fold_error_sums`, and the pool each series counts in.

    Returns sku, location, model, backtest_periods, folds, rmse, mae, wape, within_variance,
    fold_mean_square, mean_fold_periods, total_error, total_forecast [, error_path], error_variance
    σ_u², level_excess (mean_f(m_f²) − σ_u²/n̄) and pool (the demand class, `unknown` without one; `all`
    without `demand_classes`).
    """

    def over_folds(term: str) -> Column:
        """Σ over the folds that have scored periods of `term` (with {i} the fold's column suffix)."""
        parts = [f"CASE WHEN n_{i} > 0 THEN {term.format(i=i)} ELSE 0D END" for i in range(len(grid.folds))]
        return F.expr(" + ".join(parts) if parts else "0D")

    periods = F.col("backtest_periods")
    folds = over_folds("1D").cast("long")
    stats = sums.select(
        *SERIES_KEYS,
        "model",
        periods.alias("backtest_periods"),
        folds.alias("folds"),
        F.sqrt(F.col("sum_squares") / periods).alias("rmse"),
        (F.col("sum_absolute") / periods).alias("mae"),
        (F.col("sum_absolute") / F.nullif(F.col("sum_actual"), F.lit(0.0))).alias("wape"),
        (
            over_folds("(sum_squares_{i} - sum_error_{i} * sum_error_{i} / n_{i})")
            / F.nullif(periods - folds, F.lit(0))
        ).alias("within_variance"),
        (over_folds("power(sum_error_{i} / n_{i}, 2)") / folds).alias("fold_mean_square"),
        (periods / folds).alias("mean_fold_periods"),
        "total_error",
        "total_forecast",
        *(["error_path"] if keep_path else []),
    )
    # A fold of one period has no within-fold spread: the per-period variance is then the mean square.
    # Σe² − (Σe)²/n can come out a hair below 0 when every error of a fold is the same.
    error_variance = F.greatest(F.coalesce(F.col("within_variance"), F.col("rmse") * F.col("rmse")), F.lit(0.0))
    stats = stats.withColumn("error_variance", error_variance).withColumn(
        "level_excess", F.col("fold_mean_square") - F.col("error_variance") / F.col("mean_fold_periods")
    )
    if demand_classes is None:
        return stats.withColumn("pool", F.lit("all"))
    classes = demand_classes.select(*SERIES_KEYS, F.coalesce("demand_class", F.lit("unknown")).alias("pool"))
    return stats.join(classes, list(SERIES_KEYS), "left").withColumn("pool", F.coalesce("pool", F.lit("unknown")))


def pooled_error_shares(stats: DataFrame) -> DataFrame:
    """One row per model and pool: the persistent share λ and the mean error share of the pool.

    Returns model, pool, pooled_level_share (Σ level_excess / Σ σ_u², never below 0: a ratio of sums,
    so series whose errors barely vary weigh nothing, not infinitely) and pooled_bias_share (Σe / Σŷ,
    NULL for pools of fewer than `BIAS_POOL_MIN_SERIES` series or without forecast).
    """
    return stats.groupBy("model", "pool").agg(
        F.greatest(F.sum("level_excess") / F.nullif(F.sum("error_variance"), F.lit(0.0)), F.lit(0.0)).alias(
            "pooled_level_share"
        ),
        F.when(
            F.count("*") >= BIAS_POOL_MIN_SERIES,  # one row per series and model
            F.sum("total_error") / F.when(F.sum("total_forecast") > 0, F.sum("total_forecast")),
        ).alias("pooled_bias_share"),
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
        .join(weights, keys)
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


def _series_window() -> WindowSpec:
    return Window.partitionBy(*SERIES_KEYS)


def _json_member(key: Column, value: Column) -> Column:
    """`"key":value` as `to_json` writes a map entry of a string and a double (NaN, ±Infinity quoted).

    `to_json` itself would take the whole stage out of code generation, so the object is joined from
    these members instead.
    """
    escaped = F.regexp_replace(F.regexp_replace(key, r"\\", r"\\\\"), '"', r'\\"')
    number = value.cast("string")
    written = F.when(F.isnan(value) | (F.abs(value) == float("inf")), F.concat(F.lit('"'), number, F.lit('"')))
    return F.concat(F.lit('"'), escaped, F.lit('":'), F.coalesce(written.otherwise(number), F.lit("null")))


def select_models(candidates: DataFrame, settings: SelectionConfig, series_columns: tuple[str, ...] = ()) -> DataFrame:
    """Choose one candidate per series and say why.

    Args:
        candidates: `forecast_candidates` left-joined with `backtest_errors` on sku, location, model
            (every forecast model of a series is a candidate, scored or not).
        settings: metric, minimum scored periods, fallback preference.
        series_columns: columns with one value per series (its supplier, profile, ...): passed
            through beside `chosen` rather than into it.

    Returns one row per series: sku, location, chosen (the winning candidate's struct, with every
    candidate column), candidates (int), scored_candidates (int), candidate_scores (JSON map model →
    metric over the scored candidates), selection_method (best, blend or fallback), reason,
    horizon_model and horizon_mae: what a planner reads as "the forecast" of the series, and its
    backtest mean absolute error over the whole horizon: `settings.horizon_preferred_model` where the
    series has it (scored or not), else the scored candidate with the lowest backtest MAE (NULL when
    none is scored). It can differ from `chosen`, which minimises the error that sizes stock.
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
    candidate_fields = [c for c in candidates.columns if c not in SERIES_KEYS and c not in series_columns]
    ranked = (
        candidates.withColumn("scored", F.coalesce(scored, F.lit(False)))
        .withColumn("sort_key", F.when(F.col("scored"), F.col(metric)).otherwise(fallback_rank))
        .withColumn("unscored", ~F.col("scored"))
    )
    # One window per series, without an ordering: its rows arrive sorted by series from the joins
    # before, so the window needs no sort, and the wide rows are read once. (Ranking with row_number
    # needs an ordered window, which sorts the wide rows; ranking a narrow projection and joining the
    # winner back makes Spark compute every candidate twice.)
    order = ("unscored", "sort_key", "model")
    rank_key = F.struct(*order)
    whole = _series_window()
    # Each scored candidate's (score, model, text) entry; sorted, they list best first, as the ranking
    # orders them. Array functions with lambdas (transform, array_sort with a comparator) would take the
    # whole stage out of code generation, so the texts are made per row and read back as fields.
    score_text = F.concat(F.col("model"), F.lit(" "), F.format_number(F.col(metric), 3))
    scored_entry = F.when(
        F.col("scored"),
        F.struct(
            F.col(metric).alias("score"),
            "model",
            score_text.alias("text"),
            _json_member(F.col("model"), F.col(metric)).alias("json"),
        ),
    )
    preferred = settings.horizon_preferred_model
    is_preferred = F.col("model") == preferred if preferred else F.lit(False)
    horizon_entry = F.when(
        (F.col("scored") & F.col("mae").isNotNull()) | is_preferred,
        F.struct((~is_preferred).alias("not_preferred"), F.col("mae").alias("mae"), "model"),
    )
    per_series = (
        ranked.select(
            "*",
            F.min(rank_key).over(whole).alias("best_key"),
            F.min(horizon_entry).over(whole).alias("horizon_best"),
            F.count("*").over(whole).alias("candidate_count"),
            F.collect_list(scored_entry).over(whole).alias("scored_entries"),
        )
        .where(rank_key.eqNullSafe(F.col("best_key")))
        .select(
            *SERIES_KEYS,
            F.struct(*order, *[F.col(c) for c in candidate_fields if c != "model"], "scored").alias("candidate"),
            "candidate_count",
            *series_columns,
            F.sort_array("scored_entries").alias("scored_list"),
            "horizon_best",
        )
    )
    scored_list = F.col("scored_list")
    chosen = F.col("candidate")
    fallback_reason = f"no model has {settings.min_backtest_periods}+ scored backtest periods; " + (
        "first available of fallback_models" if settings.fallback_models else "alphabetically first model"
    )
    return per_series.select(
        *SERIES_KEYS,
        *series_columns,
        chosen.alias("chosen"),
        F.col("candidate_count").cast("int").alias("candidates"),
        F.size(scored_list).alias("scored_candidates"),
        F.when(
            F.size(scored_list) > 0,
            F.concat(F.lit("{"), F.array_join(scored_list["json"], ","), F.lit("}")),
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
                F.array_join(scored_list["text"], ", "),
            )
        )
        .alias("reason"),
        F.col("horizon_best.model").alias("horizon_model"),
        F.col("horizon_best.mae").alias("horizon_mae"),
    )


def choose_forecasts(
    forecast: DataFrame,
    backtest: DataFrame,
    settings: InventoryConfig,
    *,
    keep_error_path: bool,
    demand_classes: DataFrame | None = None,
    series_terms: DataFrame | None = None,
    grid: BacktestGrid | None = None,
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
        series_terms: one row per series: sku, location, protection_periods (P in periods; NULL:
            the default lead time plus the review period) and any other per-series columns, which
            are joined to the candidates once and returned beside `chosen`. The wide candidate rows
            then take one join, not one per narrow input.
        grid: the run's steps and folds (default: `backtest_grid` of the inputs).

    Returns one row per series with `chosen` (struct: model, forecast_path, horizon,
    horizon_demand_rate, interval_error_std, forecast_start, backtest_periods, rmse, mae, wape, bias
    [, error_path], blend_weights), the selection columns and the columns of `series_terms`.
    """
    selection = settings.selection
    freq = settings.freq
    grid = grid or backtest_grid(forecast, backtest, freq)
    candidates = forecast_candidates(forecast, freq, grid.forecast_steps)
    errors = backtest_errors(backtest, freq, grid, keep_path=keep_error_path, demand_classes=demand_classes)
    if selection.method == "blend":
        blended_forecast, blended_backtest = blend_candidates(forecast, backtest, errors, selection, freq)
        weights = blended_forecast.select(*SERIES_KEYS, "blend_weights").dropDuplicates(list(SERIES_KEYS))
        candidates = candidates.unionByName(
            forecast_candidates(blended_forecast.drop("blend_weights"), freq, grid.forecast_steps)
        )
        errors = errors.unionByName(
            backtest_errors(blended_backtest, freq, grid, keep_path=keep_error_path, demand_classes=demand_classes)
        )
        candidates = candidates.join(weights.withColumn("model", F.lit(BLEND_MODEL)), [*SERIES_KEYS, "model"], "left")
    else:
        candidates = candidates.withColumn("blend_weights", F.lit(None).cast("string"))
    joined = candidates.join(errors, [*SERIES_KEYS, "model"], "left")
    if series_terms is not None:
        joined = joined.join(series_terms, list(SERIES_KEYS), "left")
    else:
        joined = joined.withColumn("protection_periods", F.lit(None).cast("double"))
    series_columns = tuple(c for c in joined.columns if c not in candidates.columns and c not in errors.columns)
    if selection.metric == "lead_time_rmse":
        default = (settings.default_lead_time_days + settings.review_period_days) / settings.period_days
        periods = F.coalesce(F.col("protection_periods"), F.lit(default))
        joined = joined.withColumn(
            "lead_time_rmse",
            F.sqrt(periods * F.col("error_variance") + periods * periods * F.col("level_error_variance")),
        )
    return select_models(joined, selection, series_columns)
