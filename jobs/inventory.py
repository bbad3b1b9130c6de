"""Plan inventory: model selection, safety stock, reorder points and the orders to place.

Reads the latest forecast run of gold.forecast (or --forecast-run-id) with its backtests
(gold.backtest_forecast, gold.forecast_backtest), silver.series_profile, bronze.suppliers,
bronze.inventory and bronze.products. Per SKU-location it chooses the forecast with the lowest backtest
error, sizes the safety stock from that forecast's errors and the lead-time spread, computes the (R, S)
and (s, Q) levels and the recommended order from the inventory position, all in Spark SQL
expressions. Appends gold.model_selection, gold.safety_stock, gold.replenishment_plan and
gold.forecast_accuracy, every row stamped with run_id and forecast_run_id.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.inventory.accuracy import forecast_accuracy
from replenish.inventory.policy import PLANNING_CONF, output_columns, outputs_from_series, plan_inventory
from replenish.inventory.settings import inventory_settings
from replenish.io.once import append_once
from replenish.quality import FORECAST_CHECK, INVENTORY_CHECK, enforce_gate, quality_settings
from replenish.shared import FREQUENCIES, RunStamp, latest_run_id, session_conf
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

INPUTS = (
    "gold.forecast",
    "gold.backtest_forecast",
    "gold.forecast_backtest",
    "silver.series_profile",
    "bronze.suppliers",
    "bronze.inventory",
    "bronze.products",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--forecast-run-id", help="the gold.forecast run to plan from (default: the latest run of that table)"
    )
    parser.add_argument("--freq", choices=FREQUENCIES, help="series frequency; default: features.freq")


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    with session_conf(ctx.spark, PLANNING_CONF):
        return _run(ctx, args)


def _run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    settings = inventory_settings(ctx.settings, args.freq)
    versions = ctx.lake.versions(INPUTS)
    missing = [name for name in ("gold.forecast", "silver.series_profile") if versions[name] is None]
    if missing:
        raise ValidationError(f"{', '.join(missing)} missing: run `replenish features` and `replenish forecast` first")

    def read(name: str) -> Any:
        return ctx.lake.read(name, version=versions[name])

    forecast = read("gold.forecast").where(F.col("freq") == settings.freq)
    forecast_run_id = args.forecast_run_id or latest_run_id(forecast)
    if forecast_run_id is None:
        raise ValidationError(f"gold.forecast has no rows for freq {settings.freq}")
    forecast = forecast.where(F.col("run_id") == forecast_run_id)
    checked = [(FORECAST_CHECK, forecast)]
    if versions["bronze.inventory"] is not None:
        checked.append((INVENTORY_CHECK, read("bronze.inventory")))
    # the data-quality gate before planning: the forecast run planned from and the stock positions
    enforce_gate(
        ctx.lake, checked, quality_settings(ctx.settings), stage="inventory", run_id=ctx.run_id, run_date=ctx.run_date
    )
    backtest = _run_rows(ctx, "gold.backtest_forecast", versions, forecast_run_id, settings.freq)
    metrics = _run_rows(ctx, "gold.forecast_backtest", versions, forecast_run_id, settings.freq)
    stamp = RunStamp(ctx.run_id, ctx.run_date, ctx.config_hash, forecast_run_id)
    plan = plan_inventory(
        forecast=forecast,
        backtest=backtest,
        profile=read("silver.series_profile"),
        suppliers=_or_empty(ctx, "bronze.suppliers", versions),
        inventory=_or_empty(ctx, "bronze.inventory", versions),
        products=_or_empty(ctx, "bronze.products", versions),
        settings=settings,
        stamp=stamp,
    )
    # Three tables are projections of one per-series frame: compute it once.
    series = output_columns(plan.series).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        outputs = outputs_from_series(series)
        accuracy = forecast_accuracy(metrics, outputs.safety_stock, settings, stamp)
        # once per run id: a re-submitted run writes only the tables its first attempt did not commit
        outputs_by_table = {
            "gold.model_selection": outputs.model_selection,
            "gold.safety_stock": outputs.safety_stock,
            "gold.replenishment_plan": outputs.replenishment_plan,
            "gold.forecast_accuracy": accuracy,
        }
        written = {
            name: append_once(ctx.lake, df, name, match={"run_id": ctx.run_id}) for name, df in outputs_by_table.items()
        }
        totals = series.agg(
            F.count("*").alias("series"),
            F.sum(F.when(F.col("order_quantity") > 0, 1).otherwise(0)).alias("orders"),
            F.sum("order_value").alias("order_value"),
            F.sum(F.when(F.col("notes").isNotNull(), 1).otherwise(0)).alias("series_with_notes"),
            F.sum(F.when(F.col("distribution") == "empirical", 1).otherwise(0)).alias("empirical"),
        ).collect()[0]
        models = series.groupBy("model", "selection_method").count().collect()
    finally:
        series.unpersist()
    return {
        "freq": settings.freq,
        "forecast_run_id": forecast_run_id,
        "policy": settings.policy,
        "service_measure": settings.service_measure,
        "series": totals["series"],
        "orders": totals["orders"],
        "order_value": None if totals["order_value"] is None else round(totals["order_value"], 2),
        "series_with_notes": totals["series_with_notes"],
        "empirical_safety_stock": totals["empirical"],
        "selected": {f"{row['model']}/{row['selection_method']}": row["count"] for row in models},
        "rows": {name: result.rows_written for name, result in written.items()},
        "versions": {name: result.version for name, result in written.items()},
        "input_versions": versions,
    }


def _run_rows(ctx: JobContext, name: str, versions: dict[str, int | None], run_id: str, freq: str) -> Any:
    """The rows of one forecast run from a backtest table; an empty frame when the table does not exist."""
    if versions[name] is None:
        log.warning("%s does not exist: safety stocks fall back to the forecast intervals", name)
        return ctx.lake.empty(name)
    rows = ctx.lake.read(name, version=versions[name])
    return rows.where((F.col("run_id") == run_id) & (F.col("freq") == freq))


def _or_empty(ctx: JobContext, name: str, versions: dict[str, int | None]) -> Any:
    """Table `name` at the version read, or its empty form (every series then gets the defaults and a note)."""
    if versions[name] is None:
        log.warning("%s does not exist: defaults apply to every series", name)
        return ctx.lake.empty(name)
    return ctx.lake.read(name, version=versions[name])


main = job_main("inventory", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
