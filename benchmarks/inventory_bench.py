"""The inventory job against its I/O floor, on N synthetic SKU-locations.

Run: `.venv/bin/python -m benchmarks.inventory_bench [--rows N] [--lake DIR]`. Prints the wall time of
the job, the wall time of the I/O floor and their ratio (target: at most 1.5). Asserts nothing.

* The inputs are generated with Spark into a Delta lake (reused when `--lake` already holds them for
  the same N): weekly series (a weekly plan), a 4-week forecast of one model (the day-one baseline
  case) with 80/95 % intervals, a 2-fold backtest of 4 weeks, per-fold metrics, a profile per series
  (35 % intermittent or lumpy), a supplier row and an inventory snapshot per series, a product row per
  SKU (10 locations per SKU).
* job: `replenish inventory` itself (`jobs/inventory.py`, in process): the latest forecast run, model
  selection, safety stock, levels and orders, four Delta tables written.
* I/O floor: merely reading the same inputs (every column, into a no-op sink) and writing as many
  output rows with the same schemas (three tables of N rows and one of the accuracy table's size,
  filled with random numbers so that they compress like real values).

* least plan (`--least-plan`): the least work any plan of the job does beyond the floor: the
  per-series rows of every input are brought together by ONE shuffle and aggregation per series
  (a sum or first value per input, no model choice, no policy), then the floor's outputs are written
  with keys from that aggregate. Its ratio to the floor is what a target leaves for the selection and
  the policy themselves.

All run on one warmed-up local Spark session (`conf/local.yaml`), the floor first, once per lake engine
(`--engines delta-spark,embedded`: the same inputs, each engine's reads and writes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType, StructType

from replenish import config
from replenish.inventory.schemas import (
    FORECAST_ACCURACY_SCHEMA,
    MODEL_SELECTION_SCHEMA,
    REPLENISHMENT_PLAN_SCHEMA,
    SAFETY_STOCK_SCHEMA,
)
from replenish.io.catalog import TableSpec
from replenish.io.lake import Lake
from replenish_jobs.harness import build_spark
from replenish_jobs.inventory import INPUTS

LOCATIONS = 10
HORIZON = 4
FOLDS = 2
RUN_ID = "20240101T000000-bench"
OUTPUTS = {
    "replenishment_plan": REPLENISHMENT_PLAN_SCHEMA,
    "safety_stock": SAFETY_STOCK_SCHEMA,
    "model_selection": MODEL_SELECTION_SCHEMA,
}


def _series(spark: SparkSession, rows: int) -> DataFrame:
    """One row per SKU-location with its synthetic traits (deterministic per id)."""
    ids = spark.range(rows)
    return ids.select(
        "id",
        F.format_string("SKU%08d", (F.col("id") / LOCATIONS).cast("long")).alias("sku"),
        F.format_string("LOC%02d", F.col("id") % LOCATIONS).alias("location"),
        F.exp(F.rand(1) * 5 - 1).alias("rate"),  # weekly demand from 0.4 to 55
        (F.abs(F.hash("id")) % 100 < 35).alias("intermittent"),
        F.rand(2).alias("u"),
    )


def generate(spark: SparkSession, lake: Lake, rows: int) -> dict[str, int]:
    """Write the benchmark inputs; returns rows per table."""
    series = _series(spark, rows).cache()
    run_date = F.lit("2024-01-01").cast("date")
    steps = series.select("*", F.explode(F.sequence(F.lit(1), F.lit(HORIZON))).alias("step"))
    spread = 1.2816 * F.sqrt("rate")
    prediction = [
        F.col("rate").alias("yhat"),
        (F.col("rate") - spread).alias("yhat_lo_80"),
        (F.col("rate") + spread).alias("yhat_hi_80"),
        (F.col("rate") - 2 * spread).alias("yhat_lo_95"),
        (F.col("rate") + 2 * spread).alias("yhat_hi_95"),
    ]
    forecast = steps.select(
        F.lit(RUN_ID).alias("run_id"),
        run_date.alias("run_date"),
        F.lit("W").alias("freq"),
        "sku",
        "location",
        F.lit("seasonal_naive").alias("model"),
        F.date_add(F.lit("2024-01-01").cast("date"), F.col("step") * 7).alias("date"),
        F.col("step").cast("int").alias("step"),
        *prediction,
    )
    folds = steps.select("*", F.explode(F.sequence(F.lit(1), F.lit(FOLDS))).alias("fold"))
    cutoff = F.date_sub(F.lit("2024-01-01").cast("date"), (FOLDS - F.col("fold") + 1) * HORIZON * 7)
    backtest = folds.select(
        F.lit(RUN_ID).alias("run_id"),
        run_date.alias("run_date"),
        F.lit("W").alias("freq"),
        "sku",
        "location",
        F.lit("seasonal_naive").alias("model"),
        F.col("fold").cast("int").alias("fold"),
        cutoff.alias("cutoff"),
        F.date_add(cutoff, (F.col("step") - 1) * 7).alias("date"),
        F.col("step").cast("int").alias("step"),
        F.greatest(F.round(F.col("rate") + F.sqrt("rate") * F.randn(3)), F.lit(0.0)).alias("y"),
        F.lit(False).alias("censored"),
        *prediction,
        F.lit(1.0).alias("mase_scale"),
    )
    metric_folds = series.select("*", F.explode(F.sequence(F.lit(1), F.lit(FOLDS))).alias("fold"))
    metrics = metric_folds.select(
        F.lit(RUN_ID).alias("run_id"),
        run_date.alias("run_date"),
        F.lit("W").alias("freq"),
        "sku",
        "location",
        F.lit("seasonal_naive").alias("model"),
        F.col("fold").cast("int").alias("fold"),
        F.lit("2023-12-01").cast("date").alias("cutoff"),
        F.lit(HORIZON).alias("horizon"),
        (F.rand(4) + 0.5).alias("mase"),
        F.rand(5).alias("wape"),
        (F.rand(6) - 0.5).alias("bias"),
        (F.rand(7) * F.sqrt("rate")).alias("rmse"),
        F.rand(8).alias("coverage_80"),
        F.rand(9).alias("coverage_95"),
        F.lit(HORIZON).alias("n_scored"),
    )
    abc = F.when(F.col("u") < 0.2, "A").when(F.col("u") < 0.5, "B").otherwise("C")
    xyz = F.when(F.col("intermittent"), "Z").when(F.col("rate") > 5, "X").otherwise("Y")
    profile = series.select(
        F.lit("W").alias("freq"),
        "sku",
        "location",
        F.concat(F.lit("cat-"), (F.abs(F.hash("sku")) % 20).cast("string")).alias("category"),
        F.when(F.col("intermittent"), "intermittent").otherwise("smooth").alias("demand_class"),
        abc.alias("abc"),
        xyz.alias("xyz"),
        F.concat(abc, xyz).alias("abc_xyz"),
    )
    suppliers = series.select(
        "sku",
        "location",
        F.lit("SUP1").alias("supplier_id"),
        (F.floor(F.rand(10) * 22) + 7).cast("double").alias("lead_time_mean_days"),
        (F.rand(11) * 4).alias("lead_time_std_days"),
        (F.floor(F.rand(12) * 3) * 10).cast("double").alias("moq"),
        F.element_at(
            F.array(*[F.lit(float(p)) for p in (1, 6, 12, 24)]), (F.floor(F.rand(13) * 4) + 1).cast("int")
        ).alias("pack_size"),
        (F.rand(14) * 40 + 20).alias("ordering_cost"),
        (F.rand(15) * 50 + 1).alias("unit_cost"),
    )
    inventory = series.select(
        "sku",
        "location",
        F.lit("2024-01-01").cast("date").alias("snapshot_date"),
        F.floor(F.rand(16) * F.col("rate") * 6).cast("double").alias("on_hand"),
        F.floor(F.rand(17) * F.col("rate") * 2).cast("double").alias("on_order"),
        F.when(F.rand(18) < 0.05, F.floor(F.rand(19) * 5)).otherwise(0.0).cast("double").alias("backorders"),
    )
    products = series.where(F.col("id") % LOCATIONS == 0).select(
        "sku", F.lit("cat").alias("category"), (F.rand(20) * 50 + 1).alias("unit_cost")
    )
    tables = {
        "gold.forecast": forecast,
        "gold.backtest_forecast": backtest,
        "gold.forecast_backtest": metrics,
        "silver.series_profile": profile,
        "bronze.suppliers": suppliers,
        "bronze.inventory": inventory,
        "bronze.products": products,
    }
    counts = {}
    for name, frame in tables.items():
        counts[name] = lake.write_with_result(frame, name, mode="overwrite").rows_written
    series.unpersist()
    return counts


def _random_rows(source: DataFrame, schema: StructType, seed: int) -> DataFrame:
    """Rows with `schema`'s columns: keys from `source`, random numbers and short strings elsewhere."""
    columns = []
    for i, field in enumerate(schema.fields):
        if field.name in source.columns and isinstance(field.dataType, StringType):
            value = F.col(field.name)
        elif isinstance(field.dataType, StringType):
            value = F.concat(F.lit("v"), (F.rand(seed + i) * 20).cast("int").cast("string"))
        elif isinstance(field.dataType, DoubleType):
            value = F.rand(seed + i) * 100
        elif isinstance(field.dataType, (IntegerType, LongType)):
            value = (F.rand(seed + i) * 100).cast(field.dataType)
        elif isinstance(field.dataType, DateType):
            value = F.lit("2024-01-01").cast("date")
        else:
            value = F.lit(None)
        columns.append(value.cast(field.dataType).alias(field.name))
    return source.select(*columns)


def io_floor(spark: SparkSession, lake: Lake, accuracy_rows: int) -> float:
    """Seconds to read every input in full and write the job's number of output rows."""
    started = time.perf_counter()
    for name in INPUTS:
        lake.read(name).write.format("noop").mode("overwrite").save()
    _write_outputs(lake, lake.read("bronze.suppliers").select("sku", "location"), accuracy_rows, "floor")
    return time.perf_counter() - started


def _write_outputs(lake: Lake, keys: DataFrame, accuracy_rows: int, prefix: str) -> None:
    """The job's four outputs' row counts and schemas, random values keyed by `keys`' sku and location."""
    for i, (name, schema) in enumerate(OUTPUTS.items()):
        lake.write(_random_rows(keys, schema, 100 * i), TableSpec(f"{prefix}.{name}"), mode="overwrite")
    accuracy = _random_rows(keys.limit(accuracy_rows), FORECAST_ACCURACY_SCHEMA, 900)
    lake.write(accuracy, TableSpec(f"{prefix}.forecast_accuracy"), mode="overwrite")


def least_plan(spark: SparkSession, lake: Lake, accuracy_rows: int) -> float:
    """Seconds to bring every series' rows together once and write the job's number of output rows."""
    started = time.perf_counter()
    values = {
        "gold.forecast": F.col("yhat"),
        "gold.backtest_forecast": F.col("y") - F.col("yhat"),
        "silver.series_profile": F.col("abc_xyz"),
        "bronze.suppliers": F.col("lead_time_mean_days"),
        "bronze.inventory": F.col("on_hand"),
    }
    types = {name: "string" if name == "silver.series_profile" else "double" for name in values}
    # One value column per input, NULL in the other inputs' rows: the union is one shuffle by series.
    frames = [
        lake.read(name).select(
            "sku",
            "location",
            *[
                (value if other == name else F.lit(None)).cast(types[other]).alias(f"value_{i}")
                for i, other in enumerate(values)
            ],
        )
        for name, value in values.items()
    ]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    per_series = union.groupBy("sku", "location").agg(
        *[
            (F.first(column, ignorenulls=True) if types[name] == "string" else F.sum(column)).alias(column)
            for column, name in ((f"value_{i}", name) for i, name in enumerate(values))
        ]
    )
    products = lake.read("bronze.products").select("sku", "unit_cost").dropDuplicates(["sku"])
    series = per_series.join(F.broadcast(products), "sku", "left").persist()
    try:
        _write_outputs(lake, series.select("sku", "location"), accuracy_rows, "least")
        lake.read("gold.forecast_backtest").groupBy("model").agg(F.avg("mase")).write.format("noop").mode(
            "overwrite"
        ).save()
    finally:
        series.unpersist()
    return time.perf_counter() - started


def inventory_job(spark: SparkSession, lake: Lake, run_id: str) -> tuple[float, dict[str, Any]]:
    """Seconds `replenish inventory` takes, and its summary."""
    from replenish_jobs import inventory

    started = time.perf_counter()
    argv = ["--lake", lake.root, "--freq", "W", "--run-id", run_id, "--set", f"lake.engine={lake.engine_name}"]
    code = inventory.main(argv, spark=spark)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the inventory job failed with exit code {code}")
    summary = lake.read("gold.replenishment_plan").where(F.col("run_id") == run_id).count()
    return seconds, {"plan_rows": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="SKU-locations (default: 10,000,000)")
    parser.add_argument("--lake", help="lake folder for the inputs (kept and reused); default: a temporary one")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--least-plan", action="store_true", help="also time the least plan (one shuffle per series), after the floor"
    )
    parser.add_argument(
        "--engines",
        default="delta-spark,embedded",
        help="lake engines to time, in this order, on the same inputs in one session (default: both)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the local profile, e.g. --set spark.conf.spark.driver.memory=2g",
    )
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    settings = config.load("local", args.overrides)
    spark = build_spark(settings["spark"], profile="local")
    spark.sparkContext.setLogLevel("ERROR")
    temporary = None if args.lake else tempfile.mkdtemp(prefix="inventory-bench-")
    root = Path(args.lake or temporary)  # type: ignore[arg-type]
    marker = root / f"inputs-{args.rows}.json"
    lake = Lake(spark, str(root / "lakehouse"))
    try:
        if marker.exists():
            counts = json.loads(marker.read_text())
            print(f"inputs: reusing {root}", flush=True)
        else:
            started = time.perf_counter()
            counts = generate(spark, lake, args.rows)
            marker.write_text(json.dumps(counts))
            print(f"inputs: generated in {time.perf_counter() - started:.0f} s: {counts}", flush=True)

        # Warm up the JVM (parsing, code generation) on a small lake, so neither timing pays for it.
        generate(spark, Lake(spark, str(root / "warmup")), 2_000)
        for engine in engines:
            warm = Lake(spark, str(root / "warmup"), engine=engine)  # type: ignore[arg-type]
            io_floor(spark, warm, 10)
            if args.least_plan:
                least_plan(spark, warm, 10)
            inventory_job(spark, warm, f"20240101T000000-warmup-{engine}")

        accuracy_rows = 200
        results: dict[str, dict[str, Any]] = {}
        for engine in engines:
            on_engine = Lake(spark, str(root / "lakehouse"), engine=engine)  # type: ignore[arg-type]
            floor = io_floor(spark, on_engine, accuracy_rows)
            print(f"{engine}: I/O floor: {floor:.1f} s", flush=True)
            least = least_plan(spark, on_engine, accuracy_rows) if args.least_plan else None
            if least is not None:
                print(f"{engine}: least plan: {least:.1f} s", flush=True)
            job, summary = inventory_job(spark, on_engine, f"20240101T{int(time.time()) % 1000000:06d}-{engine}")
            print(f"{engine}: inventory job: {job:.1f} s ({summary['plan_rows']:,} plan rows)", flush=True)
            result = {
                "job_seconds": round(job, 1),
                "floor_seconds": round(floor, 1),
                "ratio": round(job / floor, 2) if floor > 0 else math.nan,
            }
            if least is not None:
                result["least_plan_seconds"] = round(least, 1)
                result["least_plan_ratio"] = round(least / floor, 2) if floor > 0 else math.nan
                result["job_to_least_plan"] = round(job / least, 2) if least > 0 else math.nan
            results[engine] = result
        output = {
            "rows": args.rows,
            "input_rows": counts,
            "cores": os.cpu_count(),
            "parallelism": spark.sparkContext.defaultParallelism,
            **results[engines[0]],
            "engines": results,
        }
        print(
            "\n| engine | SKU-locations | job (s) | I/O floor (s) | job / floor | least plan (s) | job / least plan |"
            "\n|---|---|---|---|---|---|---|"
        )
        for engine, r in results.items():
            print(
                f"| {engine} | {args.rows:,} | {r['job_seconds']} | {r['floor_seconds']} | {r['ratio']:.2f} | "
                f"{r.get('least_plan_seconds', '-')} | {r.get('job_to_least_plan', '-')} |"
            )
        if args.json:
            Path(args.json).write_text(json.dumps(output, indent=2))
    finally:
        spark.stop()
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
