"""Replay the held-out period with the policy and with the planners' naive policy.

Protocol (see replenish.inventory.holdout): the hold-out is the test windows of the last
`inventory.simulation.holdout_folds` backtest cutoffs of the latest forecast run (or
--forecast-run-id), up to the end of silver.demand. At each of those cutoffs the policy is planned
exactly as `replenish inventory` plans it, from the predictions made at that cutoff and the backtest
errors before it. Every series is then replayed period by period: actual demand from silver.demand,
lead times drawn per order from bronze.suppliers, backorders. The naive policy (order up to N weeks
of mean demand) is replayed on the same demand and lead times for a grid of N. Appends
gold.inventory_simulation (one row per series and policy) and prints, per ABC-XYZ class, achieved
versus target service and the inventory the naive policy needs for the same service.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.inventory.holdout import (
    compare_with_naive,
    holdout_periods,
    policies_by_cutoff,
    replay_holdout,
    summarize_simulation,
)
from replenish.inventory.policy import PLANNING_CONF
from replenish.inventory.settings import inventory_settings
from replenish.io.once import append_once
from replenish.shared import FREQUENCIES, RunStamp, latest_run_id, session_conf
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

INPUTS = ("gold.backtest_forecast", "silver.demand", "silver.series_profile", "bronze.suppliers", "bronze.products")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--forecast-run-id", help="the forecast run whose backtests are replayed (default: the latest)")
    parser.add_argument("--freq", choices=FREQUENCIES, help="series frequency; default: features.freq")


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    with session_conf(ctx.spark, PLANNING_CONF):
        return _run(ctx, args)


def _run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    settings = inventory_settings(ctx.settings, args.freq)
    versions = ctx.lake.versions(INPUTS)
    missing = [name for name in INPUTS[:3] if versions[name] is None]
    if missing:
        raise ValidationError(f"{', '.join(missing)} missing: run features and forecast (with backtests) first")

    def read(name: str, *, optional: bool = False) -> Any:
        """`name` at the version read; an optional input not written yet reads as its empty form."""
        if versions[name] is None and optional:
            return ctx.lake.empty(name)
        return ctx.lake.read(name, version=versions[name])

    backtest = read("gold.backtest_forecast").where(F.col("freq") == settings.freq)
    forecast_run_id = args.forecast_run_id or latest_run_id(backtest)
    if forecast_run_id is None:
        raise ValidationError(f"gold.backtest_forecast has no rows for freq {settings.freq}")
    backtest = backtest.where(F.col("run_id") == forecast_run_id)
    demand = read("silver.demand").where(F.col("freq") == settings.freq)
    holdout = holdout_periods(backtest, demand, settings)
    stamp = RunStamp(ctx.run_id, ctx.run_date, ctx.config_hash, forecast_run_id)
    # Materialized once, before the replay, and persisted rather than locally checkpointed, so a lost
    # executor's blocks are recomputed from the lineage (see `replay_holdout`).
    plans = policies_by_cutoff(
        backtest=backtest,
        profile=read("silver.series_profile"),
        suppliers=read("bronze.suppliers", optional=True),
        products=read("bronze.products", optional=True),
        settings=settings,
        holdout=holdout,
        stamp=stamp,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        plans.count()
        simulation = replay_holdout(
            plans=plans, demand=demand, settings=settings, stamp=stamp, holdout=holdout
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            written = append_once(ctx.lake, simulation, "gold.inventory_simulation", match={"run_id": ctx.run_id})
            summary = summarize_simulation(simulation).toPandas()
        finally:
            simulation.unpersist()
    finally:
        plans.unpersist()
    comparison = compare_with_naive(summary, settings)
    log.info("simulation per class:\n%s", comparison.to_string(index=False))
    return {
        "freq": settings.freq,
        "forecast_run_id": forecast_run_id,
        "holdout": {"start": holdout.start, "end": holdout.end, "replans": [str(c) for c in holdout.cutoffs]},
        "policy": settings.policy,
        "service_measure": settings.service_measure,
        "classes": [_rounded(row) for row in comparison.to_dict("records")],
        "rows": written.rows_written,
        "version": written.version,
        "input_versions": versions,
    }


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (None if isinstance(value, float) and math.isnan(value) else round(value, 4))
        if isinstance(value, float)
        else value
        for key, value in row.items()
    }


main = job_main("simulate", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
