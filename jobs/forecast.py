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
import json
import logging
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from replenish import config
from replenish.features import FREQUENCIES, FeaturesConfig
from replenish.forecast import FORECAST_MODES, ForecastConfig, forecast_tables, latest_arima_orders
from replenish.forecast.analog import ColdStartConfig, analog_tables, with_analog_rows
from replenish.forecast.incremental import ForecastInputs, Increment, carried_rows, plan_increment
from replenish.forecast.settings import resolve_freq
from replenish.io.once import append_once
from replenish.progress import SeriesProgress, series_total
from replenish.quality import SALES_CHECK, enforce_gate, quality_settings
from replenish_jobs.harness import JobContext, job_main
from replenish_jobs.lstm_steps import lstm_candidate, lstm_forecast

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

INPUTS = ("silver.demand", "silver.series_profile", "gold.model_registry")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        choices=FORECAST_MODES,
        help="auto (baseline + routed model per series, + the LSTM when forecast.lstm.enabled), baseline "
        "(seasonal naive), arima (the routed model: ARIMA / Croston / fallbacks) or lstm (the global LSTM, "
        "trained when no model fits the run); default: forecast.model",
    )
    parser.add_argument("--horizon", type=int, help="periods to forecast; default: forecast.horizon")
    parser.add_argument(
        "--freq",
        choices=FREQUENCIES,
        help="demand frequency; default: the one frequency in silver.demand, else features.freq",
    )
    parser.add_argument(
        "--full-search",
        action="store_true",
        help="search ARIMA orders for every series instead of reusing the stored ones (cold start)",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="refit only the series whose inputs changed since the last forecast run and carry the others' "
        "rows into this run (a full run, saying why, when there is no comparable earlier run); same rows as a "
        "full run but fit_seconds (docs/lake.md, Incremental nightly run)",
    )


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    cfg = config.section(ctx.settings, "forecast", ForecastConfig)
    features = config.section(ctx.settings, "features", FeaturesConfig)
    check_sales(ctx)  # the gate comes before anything is read from the tables built on the sales
    versions = ctx.lake.versions(INPUTS)
    demand = ctx.lake.read("silver.demand", version=versions["silver.demand"])
    present = tuple(sorted(row["freq"] for row in demand.select("freq").distinct().collect()))
    freq, why = resolve_freq(requested=args.freq, configured=features.freq, present=present)
    log.info("forecast frequency %s (%s)", freq, why)
    plan = cfg.plan(
        freq,
        model=args.model,
        horizon=args.horizon,
        full_search=args.full_search,
        run_date=ctx.run_date.isoformat(),
    )
    if plan.mode == "lstm":
        lstm = lstm_forecast(ctx, plan, settings=cfg.lstm, country=features.country)
        return {"freq": freq, "model": plan.mode, "horizon": plan.horizon, "lstm": lstm}
    profile = None
    if versions["silver.series_profile"] is not None:
        profile = ctx.lake.read("silver.series_profile", version=versions["silver.series_profile"])
    else:
        log.warning("silver.series_profile does not exist: series are classified from their training window")
    stored = registry = None
    if versions["gold.model_registry"] is not None:
        registry = ctx.lake.read("gold.model_registry", version=versions["gold.model_registry"])
    if plan.warm_start and registry is not None:
        # a re-submitted run must not warm-start from the rows its own first attempt wrote
        stored = latest_arima_orders(registry.where(F.col("run_id") != ctx.run_id), freq)

    run_inputs = ForecastInputs(
        run_id=ctx.run_id,
        freq=freq,
        mode=plan.mode,
        horizon=plan.horizon,
        warm_start=plan.warm_start,
        config_hash=ctx.config_hash,
        demand_version=versions["silver.demand"],
        profile_version=versions["silver.series_profile"],
        run_date=ctx.run_date.isoformat(),
    )
    increment = Increment("full: --incremental not given")
    if args.incremental:
        increment = plan_increment(ctx.lake, plan, run_inputs, demand=demand, profile=profile, stored_orders=stored)
        log.info("forecast %s: %s", freq, increment.reason)
    total = series_total(profile, freq) if increment.series is None else increment.series_count
    progress = SeriesProgress(ctx.spark, total=total, label="forecast")
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
        series=increment.series,
    )
    tables.records.persist(StorageLevel.MEMORY_AND_DISK)
    optional = {
        name: ctx.lake.read(name) for name in ("gold.similar_items", "bronze.products") if ctx.lake.exists(name)
    }
    analog = analog_tables(
        demand, profile, optional.get("gold.similar_items"), optional.get("bronze.products"), plan,
        config.section(ctx.settings, "cold_start", ColdStartConfig), run_id=ctx.run_id, run_date=ctx.run_date,
        config_hash=ctx.config_hash,
    )  # fmt: skip
    progress.start()
    try:
        outputs = with_analog_rows(tables.by_table(), analog.by_table())
        outputs["gold.model_registry"] = outputs["gold.model_registry"].withColumn(
            "mlflow_run_id", F.lit(ctx.extra.get("mlflow_run_id")).cast("string")
        )
        if registry is not None and "mlflow_run_id" not in registry.columns:  # made before the column existed
            log.warning("gold.model_registry has no mlflow_run_id column: its rows are appended without it")
            outputs["gold.model_registry"] = outputs["gold.model_registry"].drop("mlflow_run_id")
        if increment.previous_run_id is not None and increment.series is not None:
            assert increment.previous_run_date is not None  # recorded with the run id
            outputs = _with_carried_rows(
                ctx,
                outputs,
                previous_run_id=increment.previous_run_id,
                previous_run_date=increment.previous_run_date,
                refitted=increment.series,
                freq=freq,
                versions=versions,
            )
        ctx.lake.commit_info.update(run_inputs.as_commit_info())  # where the next incremental run starts
        # once per run id: a re-submitted run writes only the tables its first attempt did not commit
        written = {name: append_once(ctx.lake, df, name, match={"run_id": ctx.run_id}) for name, df in outputs.items()}
        ctx.lake.commit_info.pop("forecast_inputs", None)
        # from the rows written (this run's partition): the outputs would recompute the carried rows
        registry_rows, metrics = (_this_run(ctx, name) for name in ("gold.model_registry", "gold.forecast_backtest"))
        outcome = registry_rows.groupBy("model", "status").count().orderBy("model", "status").collect()
        mase = metrics.groupBy("model").agg(F.avg("mase").alias("mase")).collect()
    finally:
        progress.stop()
        tables.records.unpersist()
        analog.release()
        increment.release()
    summary = {
        "freq": freq,
        "model": plan.mode,
        "horizon": plan.horizon,
        "warm_start": plan.warm_start,
        "registry": {f"{row['model']}/{row['status']}": row["count"] for row in outcome},
        "backtest_mase": {row["model"]: None if row["mase"] is None else round(row["mase"], 3) for row in mase},
        "rows": {name: result.rows_written for name, result in written.items()},
        "versions": {name: result.version for name, result in written.items()},
        "input_versions": versions,
        **({"incremental": increment.reason} if args.incremental else {}),
    }
    if plan.mode == "auto" and cfg.lstm.enabled:
        summary["lstm"] = lstm_candidate(ctx, plan, settings=cfg.lstm, country=features.country)
    return summary


def _with_carried_rows(
    ctx: JobContext,
    outputs: dict[str, DataFrame],
    *,
    previous_run_id: str,
    previous_run_date: str,
    refitted: DataFrame,
    freq: str,
    versions: dict[str, int | None],
) -> dict[str, DataFrame]:
    """Each table's refitted rows plus the previous run's rows of the other series, restamped for this run."""
    stamp = {
        "run_id": ctx.run_id,
        "run_date": ctx.run_date,
        "mlflow_run_id": ctx.extra.get("mlflow_run_id"),
        "input_versions": json.dumps(dict(versions), sort_keys=True),
    }
    return {
        name: frame.unionByName(
            carried_rows(
                ctx.lake,
                name,
                previous_run_id=previous_run_id,
                previous_run_date=previous_run_date,
                freq=freq,
                refitted=refitted,
                like=frame,
                stamp=stamp,
            )
        )
        for name, frame in outputs.items()
    }


def _this_run(ctx: JobContext, name: str) -> DataFrame:
    """This run's rows of a forecast table as committed (run_date first: the partition)."""
    return ctx.lake.read(name).where((F.col("run_date") == F.lit(ctx.run_date)) & (F.col("run_id") == ctx.run_id))


def check_sales(ctx: JobContext) -> None:
    """The data-quality gate before forecasting: bronze.sales, the daily rows every series is built from."""
    if not ctx.lake.exists("bronze.sales"):
        log.warning("bronze.sales does not exist: the data-quality gate has nothing to check")
        return
    enforce_gate(
        ctx.lake,
        [(SALES_CHECK, ctx.lake.read("bronze.sales"))],
        quality_settings(ctx.settings),
        stage="forecast",
        run_id=ctx.run_id,
        run_date=ctx.run_date,
    )


main = job_main("forecast", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
