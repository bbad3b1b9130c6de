"""The hold-out protocol of `replenish simulate`: plan as of each backtest cutoff, replay what happened.

Protocol (no information from the hold-out reaches the policy that is replayed on it):

1. The backtest of one forecast run (`gold.backtest_forecast`) has forecast origins (cutoffs; a cutoff
   is the first date of its fold's test window). The hold-out is the test windows of the last
   `holdout_folds` cutoffs, from the first of them to the end of `silver.demand`.
2. At each of those cutoffs the policy is recomputed by `plan_inventory`, exactly as the inventory job
   does, from what was known then: the candidates' predictions made at that cutoff are the forecast,
   and only the backtest periods *before* the cutoff are the error sample that selects the model and
   sizes the safety stock. Lead times, costs and classes come from the current bronze / silver tables.
3. That policy is in force from its cutoff until the next one. Every series is replayed period by
   period over the hold-out (`replay.simulate_series`): its actual demand from `silver.demand`, lead
   times drawn per order from the supplier's mean and standard deviation, backorders, starting just
   after a replenishment. Series without a complete plan (levels known) at every hold-out cutoff are
   left out.
4. The naive planner policy (order up to a fixed number of weeks of cover on the mean demand of the
   `naive_history_days` before the hold-out, same review period) is replayed on the same demand and
   lead times for each cover of the grid. `compare_with_naive` interpolates the cover, and the
   inventory, at which it reaches the service level the optimized policy achieved.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.inventory.policy import plan_inventory
from replenish.inventory.replay import SERIES_INPUT_COLUMNS, series_output_schema, simulate_series
from replenish.inventory.schemas import INVENTORY_SIMULATION_SCHEMA, conform
from replenish.inventory.selection import backtest_grid
from replenish.inventory.settings import InventoryConfig
from replenish.shared import SERIES_KEYS, RunStamp, require_columns

FORECAST_VALUE_COLUMNS: tuple[str, ...] = ("yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95")
ALL_CLASSES = "ALL"


@dataclass(frozen=True)
class Holdout:
    """The replayed period: the cutoffs at which the policy is recomputed, and the last date."""

    cutoffs: tuple[dt.date, ...]
    end: dt.date

    @property
    def start(self) -> dt.date:
        return self.cutoffs[0]


def holdout_periods(backtest: DataFrame, demand: DataFrame, settings: InventoryConfig) -> Holdout:
    """The hold-out of a forecast run's backtest (two small aggregates reach the driver).

    Raises:
        ValidationError: the backtest has fewer cutoffs than `holdout_folds`, or none.
    """
    require_columns(backtest, ("freq", "cutoff", "date"), "backtest")
    cutoffs = sorted(
        row[0]
        for row in backtest.where(F.col("freq") == settings.freq).select("cutoff").distinct().collect()
        if row[0] is not None
    )
    wanted = settings.simulation.holdout_folds
    if len(cutoffs) < wanted:
        raise ValidationError(
            f"the backtest has {len(cutoffs)} cutoff(s) for freq {settings.freq}; inventory.simulation."
            f"holdout_folds = {wanted} needs at least that many (run the forecast with more backtest folds)"
        )
    end = demand.where(F.col("freq") == settings.freq).agg(F.max("date")).collect()[0][0]
    if end is None:
        raise ValidationError(f"silver.demand has no rows for freq {settings.freq}")
    chosen = tuple(cutoffs[-wanted:])
    if end < chosen[0]:
        raise ValidationError(f"silver.demand ends on {end}, before the hold-out starts on {chosen[0]}")
    return Holdout(cutoffs=chosen, end=end)


def forecast_as_of(backtest: DataFrame, cutoff: dt.date) -> DataFrame:
    """The predictions made at `cutoff`, shaped like `gold.forecast` rows (step counted from the cutoff)."""
    values = [c for c in FORECAST_VALUE_COLUMNS if c in backtest.columns]
    return backtest.where(F.col("cutoff") == F.lit(cutoff)).select(
        "freq", *SERIES_KEYS, "model", "date", "step", *values
    )


def errors_before(backtest: DataFrame, cutoff: dt.date) -> DataFrame:
    """The backtest periods known at `cutoff`: those dated before it."""
    return backtest.where(F.col("date") < F.lit(cutoff))


def policies_by_cutoff(
    *,
    backtest: DataFrame,
    profile: DataFrame,
    suppliers: DataFrame,
    products: DataFrame,
    settings: InventoryConfig,
    holdout: Holdout,
    stamp: RunStamp,
) -> DataFrame:
    """The policy planned at each hold-out cutoff, with the dates it is in force: valid_from, valid_to.

    The replay needs no inventory snapshot (it starts from its own initial state), so none is passed.
    """
    empty_inventory = backtest.sparkSession.createDataFrame(
        [], "sku string, location string, snapshot_date date, on_hand double, on_order double, backorders double"
    )
    ends = [*holdout.cutoffs[1:], holdout.end + dt.timedelta(days=1)]
    # One grid for every cutoff: each cutoff's forecast is backtest rows, and its error sample is a subset
    # of the backtest's folds (folds without rows count for nothing).
    grid = backtest_grid(backtest, backtest, settings.freq)
    plans = []
    for cutoff, valid_to in zip(holdout.cutoffs, ends, strict=True):
        plan = plan_inventory(
            forecast=forecast_as_of(backtest, cutoff),
            backtest=errors_before(backtest, cutoff),
            profile=profile,
            suppliers=suppliers,
            inventory=empty_inventory,
            products=products,
            settings=settings,
            stamp=stamp,
            grid=grid,
        )
        plans.append(
            plan.series.select(
                *SERIES_KEYS,
                "category",
                "demand_class",
                "abc_xyz",
                "service_measure",
                "service_target",
                "order_up_to_level",
                "reorder_point",
                "lot_size",
                "moq",
                "pack_size",
                "lead_time_days",
                "lead_time_std_days",
                "unit_cost",
                F.lit(cutoff).alias("valid_from"),
                F.lit(valid_to).alias("valid_to"),
            )
        )
    return functools.reduce(DataFrame.unionByName, plans)


def replay_holdout(
    *,
    plans: DataFrame,
    demand: DataFrame,
    settings: InventoryConfig,
    stamp: RunStamp,
    holdout: Holdout,
) -> DataFrame:
    """Replay the hold-out with the optimized and the naive policies; `gold.inventory_simulation` rows.

    Args:
        plans: `policies_by_cutoff` of the same hold-out. They feed three joins, and a filter on a
            level would have the optimizer inline every policy expression into the predicate as well
            as the projection: materialize them first (the simulate job persists them and releases
            them after the write).
        demand: `silver.demand` (freq, sku, location, date, demand).
        settings: the `inventory:` settings (`simulation:` among them).
        stamp: run metadata (forecast_run_id: the backtest's run).
        holdout: the replayed period (`holdout_periods`).

    Returns:
        One row per series and policy variant (the optimized policy, the naive one per cover).
    """
    require_columns(demand, ("freq", "sku", "location", "date", "demand"), "demand")
    simulation = settings.simulation
    levels_known = F.col("order_up_to_level").isNotNull() & F.col("reorder_point").isNotNull()
    complete = (
        plans.where(levels_known)
        .groupBy(*SERIES_KEYS)
        .agg(F.count("*").alias("plans"))
        .where(F.col("plans") == len(holdout.cutoffs))
        .select(*SERIES_KEYS)
    )
    series_demand = demand.where(F.col("freq") == settings.freq).select(*SERIES_KEYS, "date", "demand")
    history_start = holdout.start - dt.timedelta(days=simulation.naive_history_days)
    naive_rate = (
        series_demand.where((F.col("date") >= F.lit(history_start)) & (F.col("date") < F.lit(holdout.start)))
        .groupBy(*SERIES_KEYS)
        .agg(F.avg("demand").alias("naive_demand_rate"))
    )
    replayed = (
        series_demand.where((F.col("date") >= F.lit(holdout.start)) & (F.col("date") <= F.lit(holdout.end)))
        .join(complete, list(SERIES_KEYS))
        .join(plans, list(SERIES_KEYS))
        .where((F.col("date") >= F.col("valid_from")) & (F.col("date") < F.col("valid_to")))
        .join(naive_rate, list(SERIES_KEYS), "left")
        .withColumn("naive_demand_rate", F.coalesce("naive_demand_rate", F.lit(0.0)))
    )
    simulate = functools.partial(
        simulate_series,
        policy=settings.policy,
        review_period_days=settings.review_period_days,
        period_days=settings.period_days,
        cover_weeks=simulation.naive_cover_weeks,
        seed=simulation.seed,
    )
    results = (
        replayed.select(*SERIES_INPUT_COLUMNS)
        .groupBy(*SERIES_KEYS)
        .applyInPandas(simulate, schema=series_output_schema())
    )
    attributes = plans.where(F.col("valid_from") == F.lit(holdout.cutoffs[-1])).select(
        *SERIES_KEYS, "category", "demand_class", "abc_xyz", "service_measure", "service_target", "unit_cost"
    )
    return conform(
        results.join(attributes, list(SERIES_KEYS), "left").select(
            "*",
            F.lit(stamp.run_id).alias("run_id"),
            F.lit(stamp.run_date).alias("run_date"),
            F.lit(settings.freq).alias("freq"),
            F.lit(stamp.forecast_run_id).alias("forecast_run_id"),
            F.lit(holdout.start).alias("holdout_start"),
            F.lit(holdout.end).alias("holdout_end"),
            (F.col("average_on_hand") * F.col("unit_cost")).alias("average_inventory_value"),
            F.lit(stamp.config_hash).alias("config_hash"),
        ),
        INVENTORY_SIMULATION_SCHEMA,
    )


def summarize_simulation(simulation: DataFrame) -> DataFrame:
    """Per ABC-XYZ class (and `ALL`) and policy variant: pooled service, inventory, stockouts.

    Cycle service is pooled over cycles and fill rate over units, so large series weigh as they do
    in the business. Inventory is the sum over series of their average on hand (units and value).
    """
    service_class = F.coalesce(F.col("abc_xyz"), F.lit("unclassified"))
    grouped = simulation.withColumn("service_class", service_class).withColumn(
        "cover_key", F.coalesce(F.col("cover_weeks"), F.lit(-1.0))
    )
    aggregates = [
        F.count("*").alias("series"),
        F.avg("service_target").alias("service_target"),
        F.sum("cycles").alias("cycles"),
        F.sum("stockout_cycles").alias("stockout_cycles"),
        F.sum("demand").alias("demand"),
        F.sum("filled").alias("filled"),
        F.sum("stockout_periods").alias("stockout_periods"),
        F.sum("average_on_hand").alias("average_on_hand"),
        F.sum("average_inventory_value").alias("average_inventory_value"),
    ]
    by_class = grouped.groupBy("service_class", "policy", "cover_key").agg(*aggregates)
    overall = grouped.groupBy("policy", "cover_key").agg(*aggregates).withColumn("service_class", F.lit(ALL_CLASSES))
    return (
        by_class.unionByName(overall)
        .withColumn("cover_weeks", F.when(F.col("cover_key") >= 0, F.col("cover_key")))
        .drop("cover_key")
        .withColumn("cycle_service_level", 1.0 - F.col("stockout_cycles") / F.nullif(F.col("cycles"), F.lit(0)))
        .withColumn("fill_rate", F.col("filled") / F.nullif(F.col("demand"), F.lit(0.0)))
    )


def compare_with_naive(summary: pd.DataFrame, settings: InventoryConfig) -> pd.DataFrame:
    """Per class: achieved vs target service, and the inventory the naive policy needs for the same service.

    For each class the naive policy's service rises with its cover; the cover at which it first reaches
    the service the optimized policy achieved (in the configured measure) is interpolated linearly
    between grid points, and so is the inventory it holds there.

    Args:
        summary: `summarize_simulation` collected to pandas (a few rows per class).
        settings: the service measure, tolerance and minimum class size.

    Returns:
        One row per class: series, service_target, cycle_service_level, fill_rate, achieved (in the
        configured measure), gap_pp, held_to_target, within_target, average_on_hand,
        average_inventory_value, naive_cover_weeks, naive_average_on_hand, naive_average_inventory_value,
        inventory_saving (share of the naive units saved at equal service; NaN when the naive grid never
        reaches it).
    """
    measure = "cycle_service_level" if settings.service_measure == "cycle" else "fill_rate"
    simulation = settings.simulation
    rows = []
    for service_class, group in summary.groupby("service_class", sort=True):
        optimized = group[group["policy"] == "optimized"]
        if optimized.empty:
            continue
        best = optimized.iloc[0]
        naive = group[group["policy"] == "naive"].sort_values("cover_weeks")
        achieved = float(best[measure]) if pd.notna(best[measure]) else math.nan
        cover, units, value = _naive_at(naive, measure, achieved)
        target = float(best["service_target"])
        held = int(best["series"]) >= simulation.min_class_series
        rows.append(
            {
                "service_class": service_class,
                "series": int(best["series"]),
                "service_target": target,
                "cycle_service_level": float(best["cycle_service_level"]),
                "fill_rate": float(best["fill_rate"]),
                "achieved": achieved,
                "gap_pp": 100.0 * (achieved - target),
                "held_to_target": held,
                "within_target": bool(abs(achieved - target) <= simulation.tolerance + 1e-12),
                "stockout_periods": int(best["stockout_periods"]),
                "average_on_hand": float(best["average_on_hand"]),
                "average_inventory_value": float(best["average_inventory_value"]),
                "naive_cover_weeks": cover,
                "naive_average_on_hand": units,
                "naive_average_inventory_value": value,
                "inventory_saving": 1.0 - float(best["average_on_hand"]) / units if units and units > 0 else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        # ALL last, after the classes.
        table = table.sort_values("service_class", key=lambda s: s.eq(ALL_CLASSES)).reset_index(drop=True)
    return table


def _naive_at(naive: pd.DataFrame, measure: str, achieved: float) -> tuple[float, float, float]:
    """Cover, units and value at which the naive service curve first reaches `achieved` (NaN if never)."""
    if naive.empty or math.isnan(achieved):
        return math.nan, math.nan, math.nan
    service = naive[measure].to_numpy(dtype=float)
    covers = naive["cover_weeks"].to_numpy(dtype=float)
    units = naive["average_on_hand"].to_numpy(dtype=float)
    values = naive["average_inventory_value"].to_numpy(dtype=float)
    reached = np.flatnonzero(service >= achieved)
    if reached.size == 0:
        return math.nan, math.nan, math.nan
    i = int(reached[0])
    if i == 0:
        return float(covers[0]), float(units[0]), float(values[0])
    share = (achieved - service[i - 1]) / (service[i] - service[i - 1])

    def between(array: np.ndarray) -> float:
        return float(array[i - 1] + share * (array[i] - array[i - 1]))

    return between(covers), between(units), between(values)
