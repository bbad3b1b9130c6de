"""Do interactions help forecasting? Leading indicators in ARIMA, and analog forecasts for launches.

Run: `.venv/bin/python -m benchmarks.demand_signals_bench [--skus 120 --locations 3 --days 730 --freq W]`.
Prints Markdown (and JSON with `--json PATH`); asserts nothing.

On one generated lake (generate → ingest → features → recommend) it runs the forecast job twice on
the same silver.demand: with the default ARIMA regressors (which include `views_ratio` and
`add_to_carts_ratio`) and with them removed (`price_ratio, promo, is_holiday`). It reports

1. the signal itself: the correlation of `views_ratio` with demand over its trailing mean, per
   frequency period (does the generator make views lead sales, and do the features see it?);
2. backtest MASE of ARIMA (`--model arima`: every smooth and erratic series) with and without the
   indicators, on the (series, fold) pairs ARIMA scored in both runs;
3. for the recently launched series, backtest MASE of `analog` against the routed fallback
   (`recent_mean`) on the same folds, from the run with indicators.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

BASE_REGRESSORS = "[price_ratio, promo, is_holiday]"


def _run(module: Any, argv: list[str], spark: Any) -> None:
    code = module.main(argv, spark=spark)
    if code != 0:
        raise SystemExit(f"{module.__name__} {' '.join(argv)} failed ({code})")


CUTOFFS = (1, 2, 4)


def paired_arima_mase(backtest: Any, runs: list[str]) -> dict[str, Any]:
    """Mean ARIMA backtest MASE of each run on the same (series, fold) pairs: those ARIMA scored in every run.

    A series whose ARIMA failed in one run (and fell back to another model) is left out of both, so
    the difference is the regressors' and not the series mix's.
    """
    from pyspark.sql import functions as F

    scored = backtest.where("model = 'arima' AND mase IS NOT NULL AND NOT isnan(mase)")
    pivot = scored.groupBy("sku", "location", "fold").pivot("run_id", runs).agg(F.first("mase")).dropna()
    totals = pivot.agg(
        *[F.avg(run).alias(run) for run in runs],
        F.count(F.lit(1)).alias("folds"),
        F.countDistinct("sku", "location").alias("series"),
        F.count(F.when(F.col(runs[0]) < F.col(runs[1]), True)).alias("wins"),
    ).first()
    return {
        **{run: round(float(totals[run]), 4) for run in runs},
        "series": int(totals["series"]),
        "folds": int(totals["folds"]),
        f"folds_where_{runs[0]}_is_lower": int(totals["wins"]),
    }


def launch_comparison(spark: Any, lake: Any, freq: str, *, horizon: int) -> dict[str, Any]:
    """MASE of `analog` and of the recent-mean fallback over the first periods after each launch.

    Every SKU launched inside the history is replayed as if forecast `c` periods after its first
    one (c in `CUTOFFS`): the fallback is the mean of those c periods, the analog model borrows from
    the SKU's analogs (gold.similar_items, else category and price) with data before the cutoff
    only. Errors over the next `horizon` periods are divided by the series' in-sample naive MAE over
    its whole history (the same denominator for both methods).
    """
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from replenish.forecast.analog import AnalogModel, ColdStartConfig, analog_pairs

    cfg = ColdStartConfig()
    products = lake.read("bronze.products")
    demand = lake.read("silver.demand").where(F.col("freq") == freq)
    first = demand.agg(F.min("date")).first()[0]
    launched = products.where(F.col("launch_date") > F.lit(first)).select("sku")
    series = demand.groupBy("sku", "location").agg(F.sum("demand").alias("total"))
    profile = series.join(launched.withColumn("is_new", F.lit(True)), "sku", "left").select(
        "sku", "location", F.coalesce("is_new", F.lit(False)).alias("is_new"),
        F.lit("smooth").alias("demand_class"), F.when(F.col("total") > 0, 1).otherwise(0).alias("n_nonzero"),
    )  # fmt: skip
    similar = lake.read("gold.similar_items") if lake.exists("gold.similar_items") else None
    pairs: pd.DataFrame = analog_pairs(profile, similar, products, analogs=cfg.analogs, classes=("smooth",)).toPandas()
    history = demand.select("sku", "location", "date", "demand", "censored").toPandas()
    history["date"] = pd.to_datetime(history["date"])
    by_series = {key: frame.sort_values("date") for key, frame in history.groupby(["sku", "location"])}
    recent = 8 if freq == "W" else 28
    errors: dict[str, list[float]] = {"analog": [], "recent_mean": []}
    by_cutoff: dict[str, list[float]] = {f"{method}_{c}": [] for method in errors for c in CUTOFFS}
    seen = set()
    for (sku, location), group in pairs.groupby(["sku", "location"]):
        own = by_series.get((sku, location))
        if own is None or len(own) < max(CUTOFFS) + horizon:
            continue
        y = own["demand"].to_numpy(float)
        scale = float(np.mean(np.abs(np.diff(y))))
        if scale <= 0:
            continue
        seen.add((sku, location))
        for c in CUTOFFS:
            cutoff = own["date"].iloc[c]
            histories = []
            for analog in group["analog_sku"]:
                other = by_series.get((analog, location))
                if other is None:
                    histories.append(np.array([]))
                    continue
                before = other[(other["date"] < cutoff) & ~other["censored"].astype(bool)]
                histories.append(before["demand"].to_numpy(float)[-recent:])
            model = AnalogModel(prior_periods=cfg.prior_periods).fit(y[:c], histories, group["weight"].to_numpy(float))
            actual = y[c : c + horizon]
            for method, level in (("analog", model.level_), ("recent_mean", y[:c][-recent:].mean())):
                error = float(np.mean(np.abs(actual - level))) / scale
                errors[method].append(error)
                by_cutoff[f"{method}_{c}"].append(error)
    return {
        "series": len(seen),
        "cutoffs": list(CUTOFFS),
        "horizon": horizon,
        "analog": round(float(np.mean(errors["analog"])), 3) if errors["analog"] else None,
        "recent_mean": round(float(np.mean(errors["recent_mean"])), 3) if errors["recent_mean"] else None,
        "by_cutoff": {key: round(float(np.mean(values)), 3) for key, values in by_cutoff.items() if values},
        "sources": pairs.drop_duplicates(["sku", "location"])["source"].value_counts().to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--skus", type=int, default=120)
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--freq", choices=["D", "W"], default="W")
    parser.add_argument("--horizon", type=int, default=None, help="default: 8 (W), 28 (D)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from replenish.io.lake import Lake
    from replenish_jobs import features, forecast, generate, ingest, recommend
    from replenish_jobs.harness import build_spark

    spark = build_spark(
        {
            "app_name": "demand-signals-bench",
            "master": "local[2]",
            "log_level": "ERROR",
            "conf": {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
        }
    )
    horizon = args.horizon or (8 if args.freq == "W" else 28)
    results: dict[str, Any] = {"scale": vars(args)}
    try:
        with tempfile.TemporaryDirectory(prefix="signals-") as name:
            root, raw = Path(name) / "lakehouse", Path(name) / "raw"
            common = ["--lake", str(root), "--run-date", "2025-01-01"]
            scale = ["--set", "generate.start=2023-01-01", "--set", "generate.launch_share=0.2"]
            _run(
                generate,
                [
                    "--out", str(raw), "--skus", str(args.skus), "--locations", str(args.locations),
                    "--days", str(args.days), "--users", str(args.users), "--format", "parquet", *common, *scale,
                ],
                spark,
            )  # fmt: skip
            _run(ingest, ["--all", str(raw), *common], spark)
            _run(features, ["--freq", args.freq, *common], spark)
            _run(recommend, [*common, "--set", "recommend.ranks=[8]", "--set", "recommend.alphas=[10.0]"], spark)
            lake = Lake(spark, str(root))
            demand = lake.read("silver.demand").where(F.col("freq") == args.freq)
            window = "rolling_mean_13" if args.freq == "W" else "rolling_mean_28"
            signal = demand.where(f"{window} > 0 AND views_ratio IS NOT NULL").select(
                F.corr("views_ratio", F.col("demand") / F.col(window)).alias("corr_views"),
                F.corr("add_to_carts_ratio", F.col("demand") / F.col(window)).alias("corr_carts"),
                F.count(F.lit(1)).alias("periods"),
            )
            results["signal"] = signal.first().asDict()  # type: ignore[union-attr]
            runs = {"with_indicators": None, "without_indicators": BASE_REGRESSORS}
            for label, regressors in runs.items():
                extra = ["--set", f"forecast.arima.regressors={regressors}"] if regressors else []
                options = ["--freq", args.freq, "--horizon", str(horizon), "--model", "arima", "--run-id", label]
                options += ["--full-search", "--set", "forecast.lstm.enabled=false"]
                _run(forecast, [*options, *common, *extra], spark)
            results["arima_mase"] = paired_arima_mase(lake.read("gold.forecast_backtest"), list(runs))
            results["launch_mase"] = launch_comparison(spark, lake, args.freq, horizon=4)
    finally:
        spark.stop()
    print(json.dumps(results, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
