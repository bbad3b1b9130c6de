"""Forecast demand per SKU-location with 80/95% intervals, backtest it, and record each model.

`--model auto` (the default) fits, per series, the seasonal-naive baseline and the model routed by
the series' demand class (ARIMA with automatic orders for smooth and erratic series, Croston SBA /
TSB for intermittent and lumpy ones, documented fallbacks for new, short and all-zero series), both
backtested on rolling origins, so the inventory stage can choose per series. `--model baseline` and
`--model arima` fit one of the two. A nightly run reuses each series' stored ARIMA orders and only
re-estimates parameters (`--full-search` searches again). Writes gold.forecast,
gold.backtest_forecast, gold.forecast_backtest and gold.model_registry (appended, partitioned by
run_date); the registry records the run id and the versions of the input tables.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from replenish import config
from replenish.features import FREQUENCIES, FeaturesConfig
from replenish.forecast import FORECAST_MODES, ForecastConfig, forecast_tables, latest_arima_orders
from replenish.progress import SeriesProgress, series_total
from replenish.runtime import JobContext, job_main

log = logging.getLogger(__name__)

INPUTS = ("silver.demand", "silver.series_profile", "gold.model_registry")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        choices=FORECAST_MODES,
        help="auto (baseline + routed model per series), baseline (seasonal naive) or arima (the routed "
        "model: ARIMA / Croston / fallbacks); default: forecast.model",
    )
    parser.add_argument("--horizon", type=int, help="periods to forecast; default: forecast.horizon")
    parser.add_argument("--freq", choices=FREQUENCIES, help="demand frequency; default: features.freq")
    parser.add_argument(
        "--full-search",
        action="store_true",
        help="search ARIMA orders for every series instead of reusing the stored ones (cold start)",
    )


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    cfg = config.section(ctx.settings, "forecast", ForecastConfig)
    features = config.section(ctx.settings, "features", FeaturesConfig)
    freq = args.freq or features.freq
    plan = cfg.plan(
        freq,
        model=args.model,
        horizon=args.horizon,
        full_search=args.full_search,
        run_date=ctx.run_date.isoformat(),
    )
    versions = ctx.lake.versions(INPUTS)
    demand = ctx.lake.read("silver.demand", version=versions["silver.demand"])
    profile = None
    if versions["silver.series_profile"] is not None:
        profile = ctx.lake.read("silver.series_profile", version=versions["silver.series_profile"])
    else:
        log.warning("silver.series_profile does not exist: series are classified from their training window")
    stored = registry = None
    if versions["gold.model_registry"] is not None:
        registry = ctx.lake.read("gold.model_registry", version=versions["gold.model_registry"])
    if plan.warm_start and registry is not None:
        stored = latest_arima_orders(registry, freq)

    progress = SeriesProgress(ctx.spark, total=series_total(profile, freq), label="forecast")
    tables = forecast_tables(
        demand,
        profile,
        stored,
        plan,
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        country=features.country,
        input_versions=versions,
        config_hash=ctx.config_hash,
        series_per_partition=cfg.series_per_partition,
        progress=progress.counter,
        mlflow_run_id=ctx.extra.get("mlflow_run_id"),
    )
    tables.records.persist(StorageLevel.MEMORY_AND_DISK)
    progress.start()
    try:
        outputs = tables.by_table()
        if registry is not None and "mlflow_run_id" not in registry.columns:  # made before the column existed
            log.warning("gold.model_registry has no mlflow_run_id column: its rows are appended without it")
            outputs["gold.model_registry"] = outputs["gold.model_registry"].drop("mlflow_run_id")
        written = {name: ctx.lake.write_with_result(df, name, mode="append") for name, df in outputs.items()}
        outcome = tables.model_registry.groupBy("model", "status").count().orderBy("model", "status").collect()
        mase = tables.forecast_backtest.groupBy("model").agg(F.avg("mase").alias("mase")).collect()
    finally:
        progress.stop()
        tables.records.unpersist()
    return {
        "freq": freq,
        "model": plan.mode,
        "horizon": plan.horizon,
        "warm_start": plan.warm_start,
        "registry": {f"{row['model']}/{row['status']}": row["count"] for row in outcome},
        "backtest_mase": {row["model"]: None if row["mase"] is None else round(row["mase"], 3) for row in mase},
        "rows": {name: result.rows_written for name, result in written.items()},
        "versions": {name: result.version for name, result in written.items()},
        "input_versions": versions,
    }


main = job_main("forecast", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
