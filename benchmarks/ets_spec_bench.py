"""Which ETS model string for daily demand? Backtest MASE and CPU of ETS specs on a lake's series.

Run: `.venv/bin/python -m benchmarks.ets_spec_bench --lake ./lakehouse [--series 150 --specs ZZZ ZNZ]`
(a lake with daily `silver.demand`, e.g. after `make demo`). Prints Markdown (and JSON with `--json
PATH`); asserts nothing.

Draws `--series` smooth and erratic daily series of `silver.series_profile` (a fixed hash order, so
the same lake gives the same sample), collects their demand to this process, and fits the product's
`ETS` model with each spec on the forecast job's rolling origins (`forecast.backtest.folds` folds of
`forecast.horizon` periods, each trained on the `forecast.daily.train_periods` periods before its
origin). MASE is scaled by the in-sample seasonal-naive MAE, as `gold.forecast_backtest` is; CPU
seconds are the fits' and forecasts' own, in one process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np


def sample_series(lake: Any, *, count: int) -> list[np.ndarray]:
    """Daily demand (censored periods kept as sold) of `count` smooth or erratic series."""
    from pyspark.sql import functions as F

    profile = lake.read("silver.series_profile").where("freq = 'D' AND demand_class IN ('smooth', 'erratic')")
    chosen = profile.orderBy(F.xxhash64("sku", "location")).limit(count).select("sku", "location")
    demand = lake.read("silver.demand").where("freq = 'D'").join(chosen, ["sku", "location"])
    rows = demand.groupBy("sku", "location").agg(
        F.sort_array(F.collect_list(F.struct("date", F.coalesce(F.col("demand"), F.lit(0.0)).alias("y")))).alias("s")
    )
    return [np.array([cell["y"] for cell in row["s"]], dtype=float) for row in rows.toLocalIterator()]


def score_specs(
    series: list[np.ndarray], specs: list[str], *, folds: int, horizon: int, train_periods: int, season: int
) -> dict[str, dict[str, float]]:
    """Mean and median MASE and CPU seconds per spec, over every (series, fold) all specs scored."""
    from replenish.forecast.models import ETS, FitError

    errors: dict[str, list[float]] = {spec: [] for spec in specs}
    cpu = dict.fromkeys(specs, 0.0)
    for y in series:
        for fold in range(folds):
            end = len(y) - horizon * (folds - fold)
            train, test = y[max(0, end - train_periods) : end], y[end : end + horizon]
            if len(train) < 2 * season + 2 or len(test) < horizon:
                continue
            scale = float(np.mean(np.abs(train[season:] - train[:-season])))
            if scale <= 0:
                continue
            scored: dict[str, float] = {}
            for spec in specs:
                started = time.process_time()
                try:
                    mean = ETS(season_length=season, spec=spec).fit(train).predict(horizon)["mean"]
                    scored[spec] = float(np.mean(np.abs(test - mean)) / scale)
                except FitError:
                    pass
                cpu[spec] += time.process_time() - started
            if len(scored) == len(specs):
                for spec, value in scored.items():
                    errors[spec].append(value)
    return {
        spec: {
            "mase": round(float(np.mean(errors[spec])), 4),
            "median_mase": round(float(np.median(errors[spec])), 4),
            "folds": len(errors[spec]),
            "cpu_seconds": round(cpu[spec], 1),
        }
        for spec in specs
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="a lake with daily silver.demand and silver.series_profile")
    parser.add_argument("--series", type=int, default=150)
    parser.add_argument("--specs", nargs="+", default=["ZZZ", "ZNZ"])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    from replenish import config
    from replenish.forecast import ForecastConfig
    from replenish.io.lake import Lake
    from replenish_jobs.harness import build_spark

    settings = config.load("local")
    cfg = config.section(settings, "forecast", ForecastConfig)
    spark = build_spark(settings["spark"])
    series = sample_series(Lake(spark, args.lake), count=args.series)
    spark.stop()
    daily = cfg.for_freq("D")
    results = score_specs(
        series,
        args.specs,
        folds=cfg.backtest.folds,
        horizon=cfg.horizon,
        train_periods=daily.train_periods,
        season=daily.season_length,
    )
    print(f"ETS specs on {len(series)} daily series of {args.lake}, {cfg.backtest.folds} folds of {cfg.horizon} days\n")
    print("| spec | MASE | median MASE | (series, fold) pairs | CPU s |\n|---|---:|---:|---:|---:|")
    for spec, row in results.items():
        print(f"| {spec} | {row['mase']} | {row['median_mase']} | {row['folds']} | {row['cpu_seconds']} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"lake": args.lake, "series": len(series), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
