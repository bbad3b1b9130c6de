"""What the report shows, as small pandas frames aggregated in Spark (never whole tables on the driver)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from replenish.inventory.holdout import compare_with_naive, summarize_simulation
from replenish.inventory.settings import InventoryConfig
from replenish.shared import latest_run_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSeries:
    """One series' forecast-vs-actual picture."""

    title: str
    history: pd.DataFrame
    backtest: pd.DataFrame
    forecast: pd.DataFrame


@dataclass(frozen=True)
class ReportData:
    """Everything the HTML report renders; a None frame means the table was not there."""

    run: dict[str, Any]
    settings: InventoryConfig
    comparison: pd.DataFrame | None = None
    simulation_summary: pd.DataFrame | None = None
    accuracy: pd.DataFrame | None = None
    selection_counts: pd.DataFrame | None = None
    safety_by_class: pd.DataFrame | None = None
    top_orders: pd.DataFrame | None = None
    samples: list[SampleSeries] = field(default_factory=list)


def _latest(df: DataFrame | None) -> tuple[DataFrame | None, str | None]:
    if df is None:
        return None, None
    run_id = latest_run_id(df)
    return (df.where(F.col("run_id") == run_id), run_id) if run_id is not None else (None, None)


def collect_report_data(
    *,
    settings: InventoryConfig,
    plan: DataFrame | None,
    safety_stock: DataFrame | None,
    selection: DataFrame | None,
    accuracy: DataFrame | None,
    simulation: DataFrame | None,
    forecast: DataFrame | None,
    backtest: DataFrame | None,
    demand: DataFrame | None,
    samples: int = 4,
    history_periods: int = 120,
) -> ReportData:
    """Aggregate the gold tables of the latest inventory and simulation runs into `ReportData`.

    Args:
        settings: the `inventory:` settings (frequency, measure, tolerances).
        plan, safety_stock, selection, accuracy: gold tables of the inventory stage (any may be None).
        simulation: `gold.inventory_simulation` (None: no simulation section).
        forecast, backtest: `gold.forecast` and `gold.backtest_forecast` (for the sample pictures).
        demand: `silver.demand` (actuals of the sample series).
        samples: how many series to picture.
        history_periods: periods of actuals before the forecast shown per sample.
    """
    plan, run_id = _latest(plan)
    run: dict[str, Any] = {"inventory_run_id": run_id, "freq": settings.freq}
    if plan is not None:
        head = plan.select("forecast_run_id", "run_date", "policy", "service_measure").limit(1).collect()
        if head:
            run.update(head[0].asDict())
    forecast_run_id = run.get("forecast_run_id")

    data: dict[str, Any] = {}
    if plan is not None:
        data["top_orders"] = (
            plan.where(F.col("order_quantity") > 0)
            .orderBy(F.col("order_value").desc_nulls_last(), F.col("order_quantity").desc())
            .select(
                "sku",
                "location",
                "abc_xyz",
                "model",
                "inventory_position",
                "reorder_point",
                "order_up_to_level",
                "order_quantity",
                "order_value",
                "order_reason",
            )
            .limit(20)
            .toPandas()
        )
        run["orders"] = plan.where(F.col("order_quantity") > 0).count()
    if safety_stock is not None and run_id is not None:
        data["safety_by_class"] = (
            safety_stock.where(F.col("run_id") == run_id)
            .groupBy(F.coalesce("abc_xyz", F.lit("unclassified")).alias("abc_xyz"))
            .agg(
                F.count("*").alias("series"),
                F.first("service_target").alias("service_target"),
                F.sum(F.when(F.col("distribution") == "empirical", 1).otherwise(0)).alias("empirical"),
                F.avg("forecast_error_std").alias("mean_error_std"),
                F.sum("safety_stock").alias("safety_stock_units"),
                F.sum(F.when(F.col("notes").isNotNull(), 1).otherwise(0)).alias("with_notes"),
            )
            .orderBy("abc_xyz")
            .toPandas()
        )
    if selection is not None and run_id is not None:
        data["selection_counts"] = (
            selection.where(F.col("run_id") == run_id)
            .groupBy("selected_model", "selection_method")
            .agg(F.count("*").alias("series"), F.avg("metric_value").alias("mean_metric"))
            .orderBy(F.col("series").desc())
            .toPandas()
        )
    if accuracy is not None and run_id is not None:
        data["accuracy"] = accuracy.where(F.col("run_id") == run_id).toPandas()
    simulation, simulation_run = _latest(simulation)
    if simulation is not None:
        summary = summarize_simulation(simulation).toPandas()
        data["simulation_summary"] = summary
        data["comparison"] = compare_with_naive(summary, settings)
        holdout = simulation.select("holdout_start", "holdout_end", "forecast_run_id").limit(1).collect()[0]
        run.update(
            simulation_run_id=simulation_run,
            holdout_start=holdout["holdout_start"],
            holdout_end=holdout["holdout_end"],
            simulation_forecast_run_id=holdout["forecast_run_id"],
        )
    if plan is not None and forecast is not None and forecast_run_id is not None:
        data["samples"] = _samples(
            plan, forecast, backtest, demand, settings.freq, forecast_run_id, samples, history_periods
        )
    return ReportData(run=run, settings=settings, **data)


def _samples(
    plan: DataFrame,
    forecast: DataFrame,
    backtest: DataFrame | None,
    demand: DataFrame | None,
    freq: str,
    forecast_run_id: str,
    count: int,
    history_periods: int,
) -> list[SampleSeries]:
    """Series to picture: the largest (by forecast demand) of each XYZ class, then the runners-up."""
    ranked = plan.select(
        "sku",
        "location",
        "model",
        "abc_xyz",
        F.col("demand_per_period"),
        F.row_number()
        .over(Window.partitionBy(F.col("abc_xyz").substr(2, 1)).orderBy(F.col("demand_per_period").desc(), "sku"))
        .alias("rank"),
    )
    picked = ranked.orderBy("rank", F.col("demand_per_period").desc()).limit(count).collect()
    series = []
    for row in picked:
        keys = (F.col("sku") == row["sku"]) & (F.col("location") == row["location"])
        model = F.col("model") == row["model"]
        predictions = ["date", "yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]
        future = (
            forecast.where((F.col("run_id") == forecast_run_id) & (F.col("freq") == freq) & keys & model)
            .select(*predictions)
            .toPandas()
        )
        past = pd.DataFrame(columns=predictions)
        if backtest is not None:
            past = (
                backtest.where((F.col("run_id") == forecast_run_id) & (F.col("freq") == freq) & keys & model)
                .select(*predictions)
                .toPandas()
            )
        history = pd.DataFrame(columns=["date", "demand"])
        if demand is not None:
            history = (
                demand.where((F.col("freq") == freq) & keys)
                .orderBy(F.col("date").desc())
                .limit(history_periods)
                .select("date", "demand")
                .toPandas()
            )
        title = f"{row['sku']} @ {row['location']}  ·  class {row['abc_xyz']}  ·  model {row['model']}"
        series.append(SampleSeries(title=title, history=history, backtest=past, forecast=future))
    return series
