"""The inventory policy per SKU-location, in Spark SQL expressions only (no Python UDF).

`plan_inventory` turns a forecast run into safety stocks, reorder points, order-up-to levels and
recommended orders. Per series:

1. **Forecast.** The candidate with the lowest backtest error over the protection interval is chosen
   (`selection`). Its mean forecast over that interval is the demand rate d (per period).
2. **Forecast error.** σ_d comes from the chosen model's backtest errors, not from the spread of raw
   demand: what the plan must absorb is the error of the forecast it follows. The errors are split
   into a per-period part σ_d and a persistent level part σ_b (`selection.backtest_errors`), because
   a forecast that starts too low stays too low over the whole lead time. The mean error of the
   model's pool (same model and demand class, all series) corrects d: d = forecast × (1 + bias_share),
   for a systematic lag (e.g. a model without trend on growing demand) is no spread to buffer
   (`bias_correction`). A series without enough
   backtest periods falls back to the σ implied by the forecast's 80 % interval, then to the Poisson
   σ = √d (σ_b = 0 for both); `error_std_source` says which.
3. **Lead time.** Mean L and standard deviation σ_L from `bronze.suppliers` (days, converted to
   periods), config defaults where missing, with a note on the row.
4. **Safety stock.** Over a protection interval P (L for (s, Q), R + L for (R, S)) demand has
   σ_P = √(P·σ_d² + P²·σ_b² + d²·σ_L²), the textbook √(P·σ_d² + d²·σ_L²) when the errors have no
   persistent part. Cycle service α: SS = z·σ_P with z = Φ⁻¹(α). Fill rate β:
   SS = k·σ_P with G(k) = (1 − β)·Q / σ_P (G the standard normal loss function, Q the lot size for
   (s, Q) or d·R for (R, S)). Intermittent and lumpy series instead use the empirical distribution of
   the chosen forecast's errors summed over P-period windows of the backtests (for α the
   ⌈n·α·(m + 1)/m⌉-th smallest of n windows, m ≈ Σ_f 1.5·H_f / P the independent draws among them,
   for the windows of a fold of H_f periods overlap (`formulas.conformal_rank`,
   `policy_sql.independent_windows`); for β the smallest value whose expected shortfall meets the target),
   combined with the lead-time term
   as √(SS_demand² + (z·d·σ_L)²). The other series of skewed demand classes (`skewed_classes`:
   erratic, intermittent and lumpy by default), for a cycle target, take the α-quantile of a gamma
   lead-time demand with mean d·P and σ_P (`formulas.gamma_safety_stock`): its upper tail is longer
   than the normal's, which at a 93 % target fell several points short in the demo replay.
5. **Levels.** s = d·L + SS_L; S = d·(R + L) + SS_(R+L); EOQ = √(2·D·K / h) with D the yearly
   demand, K the ordering cost and h = holding rate × unit cost; the lot size Q is the EOQ rounded
   to MOQ and packs (d·R when the unit cost is unknown). With a cycle target, S is lowered by a
   rounding allowance: MOQ and packs spread the position after a review over [S, S + w), so the
   service is F averaged over that range (`distributions.rounding_allowance` for the normal and gamma
   series; for the empirical ones the x where their own error windows' F, so averaged, meets the
   coverage, `distributions.smoothed_empirical_quantile`).
6. **Order.** From the inventory position (on hand + on order − backorders) of the latest snapshot:
   (R, S) orders S − position, (s, Q) orders n·Q when the position is below s, rounded up to the
   MOQ and whole packs.

Missing lead times, costs, pack sizes or classes never fail the job: a documented default is used and
the row's `notes` says which; a series without an inventory snapshot gets levels but no order, with a
reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from replenish.inventory import formulas
from replenish.inventory.distributions import rounding_allowance_variable
from replenish.inventory.ops import SPARK, Sql, col, literal, sql
from replenish.inventory.policy_sql import (
    conformal_rank,
    empirical_fill_rate_quantity,
    empirical_quantile,
    error_windows,
    in_demand_classes,
    independent_windows,
    joined_notes,
    rounding_share,
    service_class_maps,
    smoothed_quantile,
    valid_number,
    windowed_demand_rate,
)
from replenish.inventory.schemas import (
    MODEL_SELECTION_SCHEMA,
    REPLENISHMENT_PLAN_SCHEMA,
    SAFETY_STOCK_SCHEMA,
    conform,
)
from replenish.inventory.selection import BacktestGrid, backtest_grid, choose_forecasts, partition_by_sku
from replenish.inventory.settings import DAYS_PER_YEAR, InventoryConfig
from replenish.shared import SERIES_KEYS, RunStamp, require_columns

# Runtime settings of the inventory plan (`replenish.inventory.policy`):
# * each input is shuffled once (`selection.partition_by_sku`): a join on (sku, location) may reuse the
#   inputs' partitioning by sku alone;
# * its aggregations are per series, and a task holds hundreds of thousands of them: the first level
#   of Spark's two-level hash map (2^16 slots) is soon full and then only adds a lookup to every row
#   (measured in docs/benchmarks.md).
PLANNING_CONF: dict[str, str] = {
    "spark.sql.requireAllClusterKeysForCoPartition": "false",
    "spark.sql.codegen.aggregate.map.twolevel.enabled": "false",
}

PROFILE_COLUMNS: tuple[str, ...] = ("freq", "sku", "location", "demand_class", "abc_xyz")
SUPPLIER_COLUMNS: tuple[str, ...] = ("sku", "location")
INVENTORY_COLUMNS: tuple[str, ...] = ("sku", "location", "on_hand")
PRODUCT_COLUMNS: tuple[str, ...] = ("sku",)


@dataclass(frozen=True)
class InventoryPlan:
    """The outputs of `plan_inventory`, all lazily defined over one per-series frame.

    Persist `series` before writing more than one output, or each write recomputes the plan.

    Attributes:
        series: every per-series column the outputs are projected from.
        model_selection: `gold.model_selection` rows.
        safety_stock: `gold.safety_stock` rows.
        replenishment_plan: `gold.replenishment_plan` rows.
    """

    series: DataFrame
    model_selection: DataFrame
    safety_stock: DataFrame
    replenishment_plan: DataFrame

    def project(self, series: DataFrame) -> InventoryPlan:
        """The same outputs projected from `series` (e.g. after persisting it)."""
        return outputs_from_series(series)


def _inventory_snapshots(inventory: DataFrame) -> DataFrame:
    """sku, location and the snapshot as struct `inventory` (on_hand, on_order, backorders, snapshot_date)."""
    require_columns(inventory, INVENTORY_COLUMNS, "inventory")
    columns = {c: F.col(c) if c in inventory.columns else F.lit(None) for c in ("on_order", "backorders")}
    snapshot_date = F.col("snapshot_date") if "snapshot_date" in inventory.columns else F.lit(None).cast("date")
    return inventory.select(
        *SERIES_KEYS,
        F.struct(
            F.col("on_hand").cast("double").alias("on_hand"),
            columns["on_order"].cast("double").alias("on_order"),
            columns["backorders"].cast("double").alias("backorders"),
            snapshot_date.alias("snapshot_date"),
        ).alias("inventory"),
    )


def series_terms(
    profile: DataFrame, suppliers: DataFrame, inventory: DataFrame, products: DataFrame, freq: str
) -> DataFrame:
    """One row per series of the profile, the suppliers or the inventory, with what each says of it.

    The profile (category, demand_class, abc_xyz), the first supplier row, the latest inventory
    snapshot and the SKU's product (unit cost and category fallbacks), each NULL where the series
    has none; `has_profile` and `has_supplier` say which were found. The three per-series inputs are
    one union grouped by series, in the partitions of their one shuffle by SKU: full outer joins of
    them would shuffle twice more, for Spark 3.5 does not know how their output is partitioned.
    """
    profile_rows = _profile_terms(profile, freq)
    supplier_rows = _supplier_terms(suppliers)

    def as_struct(frame: DataFrame, name: str) -> DataFrame:
        return frame.select(*SERIES_KEYS, F.struct(*[c for c in frame.columns if c not in SERIES_KEYS]).alias(name))

    # Each input fills its own struct column; the union gives the others NULL.
    union = (
        as_struct(profile_rows, "profile")
        .unionByName(as_struct(supplier_rows, "supplier"), allowMissingColumns=True)
        .unionByName(_inventory_snapshots(inventory), allowMissingColumns=True)
    )
    merged = (
        partition_by_sku(union)
        .groupBy(*SERIES_KEYS)
        .agg(
            F.first("profile", ignorenulls=True).alias("profile"),
            F.first("supplier", ignorenulls=True).alias("supplier"),
            F.max_by("inventory", F.col("inventory.snapshot_date")).alias("inventory"),
        )
    )
    return merged.select(*SERIES_KEYS, "profile.*", "supplier.*", "inventory.*").join(
        _product_terms(partition_by_sku(products)), "sku", "left"
    )


def _optional(df: DataFrame, column: str, dtype: str = "double") -> Column:
    return F.col(column).cast(dtype) if column in df.columns else F.lit(None).cast(dtype)


def _supplier_terms(suppliers: DataFrame) -> DataFrame:
    require_columns(suppliers, SUPPLIER_COLUMNS, "suppliers")
    fields = ("lead_time_mean_days", "lead_time_std_days", "moq", "pack_size", "ordering_cost", "unit_cost")
    return suppliers.select(
        *SERIES_KEYS,
        *[_optional(suppliers, c).alias(f"supplier_{c}") for c in fields],
        F.lit(True).alias("has_supplier"),
    )


def _product_terms(products: DataFrame) -> DataFrame:
    require_columns(products, PRODUCT_COLUMNS, "products")
    return products.select(
        "sku",
        _optional(products, "unit_cost").alias("product_unit_cost"),
        _optional(products, "category", "string").alias("product_category"),
    ).dropDuplicates(["sku"])


def _profile_terms(profile: DataFrame, freq: str) -> DataFrame:
    require_columns(profile, PROFILE_COLUMNS, "series_profile")
    return profile.where(F.col("freq") == freq).select(
        *SERIES_KEYS,
        _optional(profile, "category", "string").alias("profile_category"),
        "demand_class",
        "abc_xyz",
        F.lit(True).alias("has_profile"),
    )


def plan_inventory(
    *,
    forecast: DataFrame,
    backtest: DataFrame,
    profile: DataFrame,
    suppliers: DataFrame,
    inventory: DataFrame,
    products: DataFrame,
    settings: InventoryConfig,
    stamp: RunStamp,
    grid: BacktestGrid | None = None,
) -> InventoryPlan:
    """Model selection, safety stock and the replenishment plan for every series of a forecast run.

    Args:
        forecast: `gold.forecast` rows of ONE run (any number of models; one is chosen per series).
        backtest: `gold.backtest_forecast` rows of the same run (may be empty: σ then comes from the
            forecast intervals).
        profile: `silver.series_profile` (demand_class, abc_xyz; category).
        suppliers: `bronze.suppliers` (lead time mean / std in days, moq, pack_size, ordering_cost,
            unit_cost; any may be missing).
        inventory: `bronze.inventory` snapshots (the latest per series is used).
        products: `bronze.products` (unit_cost and category fallbacks).
        settings: the `inventory:` settings.
        stamp: run metadata for the output rows.
        grid: the run's steps and folds, when the caller knows them (default: read from the inputs).

    Returns:
        The per-series frame and the three gold outputs projected from it.
    """
    grid = grid or backtest_grid(forecast, backtest, settings.freq)
    # A series has at most folds × steps errors, so at most that many windows: when the run's grid
    # cannot give `min_empirical_samples`, no series is sized empirically and no error path is kept.
    empirical = (
        settings.intermittent_method == "empirical"
        and len(grid.folds) * grid.backtest_steps >= settings.min_empirical_samples
    )
    profile_terms = _profile_terms(partition_by_sku(profile), settings.freq)
    # The narrow per-series inputs are combined first, so the wide candidate rows take one join (in
    # `choose_forecasts`) instead of one per input.
    terms = series_terms(profile, suppliers, inventory, products, settings.freq)
    lead_time_days = sql(
        f"coalesce({valid_number('supplier_lead_time_mean_days')}, {literal(settings.default_lead_time_days)})"
    )
    terms = terms.selectExpr(
        "*", ((lead_time_days + settings.review_period_days) / settings.period_days).alias("protection_periods")
    )
    series = choose_forecasts(
        forecast,
        backtest,
        settings,
        keep_error_path=empirical,
        demand_classes=profile_terms.select(*SERIES_KEYS, "demand_class"),
        series_terms=terms,
        grid=grid,
    )
    return outputs_from_series(policy_columns(series, settings, stamp, grid.forecast_steps))


def policy_columns(series: DataFrame, settings: InventoryConfig, stamp: RunStamp, forecast_steps: int) -> DataFrame:
    """Add every policy quantity to the joined per-series frame (see the module docstring).

    A chain of the stages below, each one or a few `selectExpr`s of SQL text (`policy_sql`), so planning
    needs few JVM calls whatever the size of the formulas. `forecast_steps` bounds the length of each
    forecast path (`BacktestGrid.forecast_steps`).
    """
    return (
        chosen_series_inputs(series, settings=settings, stamp=stamp)
        .transform(periods_and_forecast_rate, settings=settings, forecast_steps=forecast_steps)
        .transform(demand_rate_and_spread, settings=settings)
        .transform(service_factors, settings=settings)
        .transform(parametric_safety_stock, settings=settings)
        .transform(empirical_safety_stock, settings=settings)
        .transform(with_rounding_allowance, settings=settings)
        .transform(levels_and_order, settings=settings)
        .transform(order_value_and_notes, settings=settings)
    )


# Columns the stages below read, as SQL text.
_DEMAND = col("demand_per_period")
_LEAD_TIME = col("lead_time_periods")
_LEAD_TIME_STD = col("lead_time_std_periods")
_REVIEW = col("review_periods")


def _with_lead_time_term(demand_part: Sql) -> Sql:
    """An empirical demand term joined by lead-time variability as an independent normal one."""
    lead_time_term = SPARK.maximum(col("cycle_factor"), 0.0) * _DEMAND * _LEAD_TIME_STD
    return SPARK.sqrt(SPARK.maximum(demand_part, 0.0) ** 2 + lead_time_term**2)


def _sized_empirically(settings: InventoryConfig) -> bool:
    return settings.intermittent_method == "empirical"


def chosen_series_inputs(series: DataFrame, *, settings: InventoryConfig, stamp: RunStamp) -> DataFrame:
    """The chosen forecast's columns and the series' inputs, defaults filled, stamped with the run.

    Replaces the joined frame of `choose_forecasts` by: run_id, run_date, freq, sku, location,
    forecast_run_id, config_hash; model, candidates, scored_candidates, candidate_scores,
    selection_method, reason, blend_weights, backtest_periods, selection_metric, metric_value,
    backtest_rmse, backtest_error_variance, backtest_level_error_variance, backtest_bias_share,
    forecast_start, horizon, forecast_path, horizon_demand_rate, interval_error_std, error_path (NULL
    unless kept); category, demand_class, abc_xyz, service_measure, service_target, cycle_factor;
    lead_time_days, lead_time_std_days, review_period_days, moq, pack_size, ordering_cost, unit_cost
    (invalid or missing values replaced by the defaults); on_hand, on_order, backorders,
    snapshot_date; input_notes (which defaults were used).
    """
    classes = service_class_maps(settings)
    supplier = "`has_supplier` IS NOT NULL"
    lead_time_days = valid_number("supplier_lead_time_mean_days")
    lead_time_std_days = valid_number("supplier_lead_time_std_days")
    moq = valid_number("supplier_moq")
    pack_size = valid_number("supplier_pack_size", positive=True)
    ordering_cost = valid_number("supplier_ordering_cost")
    unit_cost = sql(
        f"coalesce({valid_number('supplier_unit_cost', positive=True)}, "
        f"{valid_number('product_unit_cost', positive=True)})"
    )
    kept_path = "error_path" in series.schema["chosen"].dataType.fieldNames()  # type: ignore[attr-defined]
    error_path = (
        "chosen.error_path" if kept_path else "CAST(NULL AS ARRAY<STRUCT<fold: INT, step: INT, error: DOUBLE>>)"
    )
    return series.selectExpr(
        f"{literal(stamp.run_id)} AS run_id",
        f"CAST({literal(stamp.run_date.isoformat())} AS DATE) AS run_date",
        f"{literal(settings.freq)} AS freq",
        *SERIES_KEYS,
        f"{literal(stamp.forecast_run_id)} AS forecast_run_id",
        f"{literal(stamp.config_hash)} AS config_hash",
        "chosen.model AS model",
        "candidates",
        "scored_candidates",
        "candidate_scores",
        "selection_method",
        "reason",
        "horizon_model",
        "horizon_mae",
        "chosen.blend_weights AS blend_weights",
        "CAST(chosen.backtest_periods AS BIGINT) AS backtest_periods",
        f"{literal(settings.selection.metric)} AS selection_metric",
        f"chosen.{settings.selection.metric} AS metric_value",
        "chosen.rmse AS backtest_rmse",
        "chosen.error_variance AS backtest_error_variance",
        "chosen.level_error_variance AS backtest_level_error_variance",
        "chosen.bias_share AS backtest_bias_share",
        "chosen.forecast_start AS forecast_start",
        "chosen.horizon AS horizon",
        "chosen.forecast_path AS forecast_path",
        "chosen.horizon_demand_rate AS horizon_demand_rate",
        "chosen.interval_error_std AS interval_error_std",
        f"{error_path} AS error_path",
        "coalesce(profile_category, product_category) AS category",
        "demand_class",
        "abc_xyz",
        f"{literal(settings.service_measure)} AS service_measure",
        classes["service_target"].alias("service_target"),
        classes["cycle_factor"].alias("cycle_factor"),
        sql(f"coalesce({lead_time_days}, {literal(settings.default_lead_time_days)})").alias("lead_time_days"),
        sql(f"coalesce({lead_time_std_days}, {literal(settings.default_lead_time_std_days)})").alias(
            "lead_time_std_days"
        ),
        f"{literal(settings.review_period_days)} AS review_period_days",
        sql(f"coalesce({moq}, {literal(settings.default_moq)})").alias("moq"),
        sql(f"coalesce({pack_size}, {literal(settings.default_pack_size)})").alias("pack_size"),
        sql(f"coalesce({ordering_cost}, {literal(settings.ordering_cost)})").alias("ordering_cost"),
        unit_cost.alias("unit_cost"),
        "on_hand",
        "on_order",
        "backorders",
        "snapshot_date",
        joined_notes(
            ("`has_profile` IS NULL", "no series profile: default service target"),
            (
                f"`has_profile` IS NOT NULL AND NOT {classes['has_class_target']}",
                "class without a configured service target: default used",
            ),
            (f"NOT {supplier}", "no supplier row: default lead time, lead time std, MOQ, pack size, ordering cost"),
            (f"{supplier} AND {lead_time_days} IS NULL", "lead time missing or invalid: default used"),
            (f"{supplier} AND {lead_time_std_days} IS NULL", "lead time std missing or invalid: default used"),
            (f"{supplier} AND {moq} IS NULL", "MOQ missing or invalid: default used"),
            (f"{supplier} AND {pack_size} IS NULL", "pack size missing or invalid: default used"),
            (f"{supplier} AND {ordering_cost} IS NULL", "ordering cost missing or invalid: default used"),
            (f"{unit_cost} IS NULL", "no unit cost: EOQ not computed, lot size = review-period demand"),
        ).alias("input_notes"),
    )


def periods_and_forecast_rate(df: DataFrame, *, settings: InventoryConfig, forecast_steps: int) -> DataFrame:
    """Lead time and review in periods of the plan's frequency, the forecast's rate and which σ to use.

    Adds lead_time_periods, lead_time_std_periods, review_periods, protection_periods_planned (R + L),
    forecast_demand_per_period (the chosen forecast's mean over R + L) and error_std_source
    (`backtest` with enough scored periods, else `forecast_interval` with an interval, else `poisson`).
    """
    period_days = settings.period_days
    enough = f"`backtest_periods` >= {settings.selection.min_backtest_periods} AND `backtest_rmse` IS NOT NULL"
    return (
        df.selectExpr(
            "*",
            (col("lead_time_days") / period_days).alias("lead_time_periods"),
            (col("lead_time_std_days") / period_days).alias("lead_time_std_periods"),
            (col("review_period_days") / period_days).alias("review_periods"),
        )
        .selectExpr(
            "*",
            (_LEAD_TIME + _REVIEW).alias("protection_periods_planned"),
        )
        .selectExpr(
            "*",
            windowed_demand_rate("forecast_path", "`protection_periods_planned`", forecast_steps).alias(
                "forecast_demand_per_period"
            ),
            sql(
                f"CASE WHEN {enough} THEN 'backtest' WHEN `interval_error_std` > 0 THEN 'forecast_interval' "
                "ELSE 'poisson' END"
            ).alias("error_std_source"),
        )
    )


def demand_rate_and_spread(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """The demand rate d the plan follows, its forecast error and the lot size.

    Adds demand_per_period (the forecast rate, corrected by the pool's mean error when σ comes from
    the backtest and `bias_correction` is on), forecast_error_std σ_d, level_error_std σ_b,
    economic_order_quantity, lot_size (EOQ, else d·R, rounded to MOQ and packs), and
    lead_time_demand_std and protection_demand_std (σ of demand over L and over R + L).
    """
    period_days = settings.period_days
    eoq = formulas.economic_order_quantity(
        col("horizon_demand_rate") * (DAYS_PER_YEAR / period_days),
        col("ordering_cost"),
        col("unit_cost") * settings.holding_cost_rate,
        SPARK,
    )
    bias = "greatest(1D + coalesce(`backtest_bias_share`, 0D), 0D)" if settings.bias_correction else "1D"
    return df.selectExpr(
        "*",
        sql(
            f"CASE WHEN `error_std_source` = 'backtest' THEN `forecast_demand_per_period` * {bias} "
            "ELSE `forecast_demand_per_period` END"
        ).alias("demand_per_period"),
        sql(
            "CASE `error_std_source` WHEN 'backtest' THEN sqrt(`backtest_error_variance`) "
            "WHEN 'forecast_interval' THEN `interval_error_std` ELSE sqrt(`forecast_demand_per_period`) END"
        ).alias("forecast_error_std"),
        sql("CASE WHEN `error_std_source` = 'backtest' THEN sqrt(`backtest_level_error_variance`) ELSE 0D END").alias(
            "level_error_std"
        ),
        eoq.alias("economic_order_quantity"),
    ).selectExpr(
        "*",
        formulas.lot_size(
            SPARK.fill_null(col("economic_order_quantity"), _DEMAND * _REVIEW), col("moq"), col("pack_size"), SPARK
        ).alias("lot_size"),
        formulas.demand_std(
            _LEAD_TIME, col("forecast_error_std"), _DEMAND, _LEAD_TIME_STD, SPARK, col("level_error_std")
        ).alias("lead_time_demand_std"),
        formulas.demand_std(
            _LEAD_TIME + _REVIEW, col("forecast_error_std"), _DEMAND, _LEAD_TIME_STD, SPARK, col("level_error_std")
        ).alias("protection_demand_std"),
    )


def service_factors(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """Safety factors of the normal model for the two protection intervals: L for (s, Q), R + L for (R, S).

    Adds factor_lead and factor_protection: z = Φ⁻¹(target) for a cycle target; for a fill rate the
    k with G(k) = (1 − β)·Q / σ, after loss_target_lead and loss_target_protection (that right-hand
    side, Q the lot size over L and d·R over R + L).
    """
    if settings.service_measure == "cycle":
        factor_lead = factor_protection = SPARK.maximum(col("cycle_factor"), 0.0)
    else:
        df = df.selectExpr(
            "*",
            formulas.fill_rate_loss_target(
                col("service_target"), col("lot_size"), col("lead_time_demand_std"), SPARK
            ).alias("loss_target_lead"),
            formulas.fill_rate_loss_target(
                col("service_target"), _DEMAND * _REVIEW, col("protection_demand_std"), SPARK
            ).alias("loss_target_protection"),
        )
        factor_lead = formulas.fill_rate_safety_factor(col("loss_target_lead"), col("lead_time_demand_std"), SPARK)
        factor_protection = formulas.fill_rate_safety_factor(
            col("loss_target_protection"), col("protection_demand_std"), SPARK
        )
    return df.selectExpr("*", factor_lead.alias("factor_lead"), factor_protection.alias("factor_protection"))


def parametric_safety_stock(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """Safety stock from a distribution of lead-time demand with the plan's mean and σ.

    Adds use_gamma (a skewed demand class with a cycle target: the gamma quantile, else the normal's
    factor × σ), parametric_lead (over L) and parametric_protection (over R + L).
    """
    normal_lead = col("factor_lead") * col("lead_time_demand_std")
    normal_protection = col("factor_protection") * col("protection_demand_std")
    skewed = in_demand_classes(settings.skewed_classes) if settings.service_measure == "cycle" else sql("FALSE")
    # Materialized before the branches below reference it, so no expression is repeated inside another.
    return df.selectExpr("*", skewed.alias("use_gamma")).selectExpr(
        "*",
        SPARK.where(
            col("use_gamma"),
            formulas.gamma_safety_stock(_DEMAND * _LEAD_TIME, col("lead_time_demand_std"), col("factor_lead"), SPARK),
            normal_lead,
        ).alias("parametric_lead"),
        SPARK.where(
            col("use_gamma"),
            formulas.gamma_safety_stock(
                _DEMAND * (_LEAD_TIME + _REVIEW), col("protection_demand_std"), col("factor_protection"), SPARK
            ),
            normal_protection,
        ).alias("parametric_protection"),
    )


def empirical_safety_stock(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """The safety stock of each policy: empirical for intermittent series with enough error windows.

    Intermittent series (`intermittent_classes`) take the empirical distribution of the chosen
    forecast's errors summed over windows of L and R + L periods, joined by the lead-time term; the
    others keep the parametric stock. Adds window_lead, window_protection, windows_lead,
    windows_protection (sorted window sums), independent_lead, independent_protection (independent
    draws among them) when `intermittent_method` is empirical; and always use_empirical,
    safety_stock_continuous (over L), safety_stock_periodic (over R + L), empirical_samples and
    empirical_note (why an intermittent series was not sized empirically).
    """
    parametric_lead, parametric_protection = col("parametric_lead"), col("parametric_protection")
    if not _sized_empirically(settings):
        return df.selectExpr(
            "*",
            "FALSE AS use_empirical",
            parametric_lead.alias("safety_stock_continuous"),
            parametric_protection.alias("safety_stock_periodic"),
            "CAST(NULL AS INT) AS empirical_samples",
            "CAST(NULL AS STRING) AS empirical_note",
        )
    intermittent = in_demand_classes(settings.intermittent_classes)
    minimum = settings.min_empirical_samples
    # A path of fewer than `minimum` errors cannot hold `minimum` windows: skip cutting them.
    windowed = sql(f"{intermittent} AND coalesce(size(`error_path`) >= {minimum}, FALSE)")
    df = df.selectExpr(
        "*",
        sql(f"CAST(greatest(round({_LEAD_TIME}), 1) AS INT)").alias("window_lead"),
        sql(f"CAST(greatest(round({_LEAD_TIME + _REVIEW}), 1) AS INT)").alias("window_protection"),
    ).selectExpr(
        "*",
        sql(f"CASE WHEN {windowed} THEN {error_windows('error_path', '`window_lead`')} END").alias("windows_lead"),
        sql(f"CASE WHEN {windowed} THEN {error_windows('error_path', '`window_protection`')} END").alias(
            "windows_protection"
        ),
        sql(f"CASE WHEN {windowed} THEN {independent_windows('error_path', '`window_lead`')} END").alias(
            "independent_lead"
        ),
        sql(f"CASE WHEN {windowed} THEN {independent_windows('error_path', '`window_protection`')} END").alias(
            "independent_protection"
        ),
    )
    df = df.selectExpr(
        "*",
        sql(
            f"{intermittent} AND coalesce(size(`windows_lead`) >= {minimum} "
            f"AND size(`windows_protection`) >= {minimum}, FALSE)"
        ).alias("use_empirical"),
    )
    if settings.service_measure == "cycle":
        demand_lead = empirical_quantile("windows_lead", "`service_target`", "`independent_lead`")
        demand_protection = empirical_quantile("windows_protection", "`service_target`", "`independent_protection`")
    else:
        allowed = 1.0 - col("service_target")
        demand_lead = empirical_fill_rate_quantity("windows_lead", str(allowed * col("lot_size")))
        demand_protection = empirical_fill_rate_quantity("windows_protection", str(allowed * _DEMAND * _REVIEW))
    return df.selectExpr(
        "*",
        SPARK.where(col("use_empirical"), _with_lead_time_term(demand_lead), parametric_lead).alias(
            "safety_stock_continuous"
        ),
        SPARK.where(col("use_empirical"), _with_lead_time_term(demand_protection), parametric_protection).alias(
            "safety_stock_periodic"
        ),
        sql("CASE WHEN `use_empirical` THEN size(`windows_protection`) END").alias("empirical_samples"),
        sql(
            f"CASE WHEN {intermittent} AND NOT `use_empirical` THEN concat('intermittent, fewer than {minimum} "
            "lead-time error windows: ', CASE WHEN `use_gamma` THEN 'gamma' ELSE 'normal' END, "
            "' distribution used') END"
        ).alias("empirical_note"),
    )


def with_rounding_allowance(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """How far S is lowered so that the service averaged over the rounding spread [S, S + w) is the target.

    Only with a cycle target and `rounding_allowance` on; otherwise rounding_allowance is 0. Adds
    rounding_width w (MOQ and packs over the review demand), rounding_variable (w / σ over R + L),
    empirical_coverage and smoothed_demand_protection (for the series sized empirically: the rank's
    coverage and the x where their own windows' F, averaged over w, meets it), and
    rounding_allowance.
    """
    if not (settings.rounding_allowance and settings.service_measure == "cycle"):
        return df.selectExpr("*", sql("0D").alias("rounding_allowance"))
    df = df.selectExpr(
        "*",
        formulas.rounding_excess_width(col("moq"), col("pack_size"), _DEMAND * _REVIEW, SPARK).alias("rounding_width"),
    ).selectExpr(
        "*",
        rounding_allowance_variable(col("rounding_width"), col("protection_demand_std"), SPARK).alias(
            "rounding_variable"
        ),
    )
    share = rounding_share(sorted({*settings.service_targets.values(), settings.service_level}))
    unrounded_level = formulas.order_up_to_level(_DEMAND, _LEAD_TIME, _REVIEW, col("safety_stock_periodic"))
    allowance = col("rounding_width") * share
    if _sized_empirically(settings):
        # Series sized from the error windows take the same average over [S, S + w) of their own
        # empirical distribution: lumpy lead-time demand is far from the normal spread that `share`
        # assumes (docs/inventory.md, "Rounding").
        samples = "windows_protection"
        rank = conformal_rank(samples, "`service_target`", "`independent_protection`")
        df = df.selectExpr(
            "*", sql(f"CASE WHEN `use_empirical` THEN {rank} / size(`{samples}`) END").alias("empirical_coverage")
        ).selectExpr(
            "*",
            sql(
                f"CASE WHEN `use_empirical` THEN "
                f"{smoothed_quantile(samples, 'rounding_width', '`empirical_coverage`')} END"
            ).alias("smoothed_demand_protection"),
        )
        allowance = SPARK.where(
            col("use_empirical"),
            SPARK.maximum(col("safety_stock_periodic") - _with_lead_time_term(col("smoothed_demand_protection")), 0.0),
            allowance,
        )
    allowance = SPARK.maximum(SPARK.minimum(SPARK.fill_null(allowance, 0.0), unrounded_level), 0.0)
    return df.selectExpr("*", allowance.alias("rounding_allowance"))


# Per policy: the safety stock and factor it uses, and the order reasons (ordering, not ordering).
_POLICY_TERMS: dict[str, tuple[str, str, str, str]] = {
    "periodic": (
        "safety_stock_periodic",
        "factor_protection",
        "position below order-up-to level",
        "position at or above order-up-to level",
    ),
    "continuous": (
        "safety_stock_continuous",
        "factor_lead",
        "position at or below reorder point",
        "position above reorder point",
    ),
}


def levels_and_order(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """Levels, the inventory position and the order of the configured policy.

    Adds reorder_point s, order_up_to_level S (less the rounding allowance), inventory_position;
    policy, safety_stock and protection_days (of the configured policy), distribution (empirical,
    gamma or normal), safety_factor (NULL when sized empirically), lead_time_demand and
    order_quantity (rounded up to MOQ and packs; NULL without an inventory snapshot).
    """
    df = df.selectExpr(
        "*",
        formulas.reorder_point(_DEMAND, _LEAD_TIME, col("safety_stock_continuous")).alias("reorder_point"),
        formulas.order_up_to_level(
            _DEMAND, _LEAD_TIME, _REVIEW, col("safety_stock_periodic"), col("rounding_allowance")
        ).alias("order_up_to_level"),
        formulas.inventory_position(col("on_hand"), col("on_order"), col("backorders"), SPARK).alias(
            "inventory_position"
        ),
    )
    safety_stock, factor, _, _ = _POLICY_TERMS[settings.policy]
    if settings.policy == "periodic":
        raw_order = formulas.periodic_order(col("order_up_to_level"), col("inventory_position"), SPARK)
        protection_days = col("lead_time_days") + col("review_period_days")
    else:
        raw_order = formulas.continuous_order(col("reorder_point"), col("lot_size"), col("inventory_position"), SPARK)
        protection_days = col("lead_time_days")
    order_quantity = formulas.round_order(raw_order, col("moq"), col("pack_size"), SPARK)
    return df.selectExpr(
        "*",
        f"{literal(settings.policy)} AS policy",
        f"`{safety_stock}` AS safety_stock",
        protection_days.alias("protection_days"),
        "CASE WHEN `use_empirical` THEN 'empirical' WHEN `use_gamma` THEN 'gamma' ELSE 'normal' END AS distribution",
        f"CASE WHEN NOT `use_empirical` THEN `{factor}` END AS safety_factor",
        (_DEMAND * _LEAD_TIME).alias("lead_time_demand"),
        sql(f"CASE WHEN `inventory_position` IS NOT NULL THEN {order_quantity} END").alias("order_quantity"),
    )


def order_value_and_notes(df: DataFrame, *, settings: InventoryConfig) -> DataFrame:
    """Adds order_value, order_reason and notes (the input notes, the empirical note, the σ's source)."""
    _, _, ordering, not_ordering = _POLICY_TERMS[settings.policy]
    return df.selectExpr(
        "*",
        (col("order_quantity") * col("unit_cost")).alias("order_value"),
        sql(
            "CASE WHEN `inventory_position` IS NULL THEN 'no inventory snapshot: no order computed' "
            f"WHEN `order_quantity` > 0 THEN '{ordering}' ELSE '{not_ordering}' END"
        ).alias("order_reason"),
        sql(
            "nullif(concat_ws('; ', `input_notes`, `empirical_note`, "
            "CASE WHEN `error_std_source` <> 'backtest' "
            "THEN concat('forecast error std from ', `error_std_source`) END), '')"
        ).alias("notes"),
    )


def output_columns(series: DataFrame) -> DataFrame:
    """Only the columns the outputs need: what is worth persisting (no forecast or error arrays)."""
    wanted = {
        f.name
        for schema in (MODEL_SELECTION_SCHEMA, SAFETY_STOCK_SCHEMA, REPLENISHMENT_PLAN_SCHEMA)
        for f in schema.fields
    }
    wanted.discard("selected_model")  # projected from `model`
    return series.select(*[c for c in series.columns if c in wanted])


def outputs_from_series(series: DataFrame) -> InventoryPlan:
    """Project the three gold outputs, with their documented schemas, from the per-series frame."""
    return InventoryPlan(
        series=series,
        model_selection=conform(series.withColumn("selected_model", F.col("model")), MODEL_SELECTION_SCHEMA),
        safety_stock=conform(series, SAFETY_STOCK_SCHEMA),
        replenishment_plan=conform(series, REPLENISHMENT_PLAN_SCHEMA),
    )
