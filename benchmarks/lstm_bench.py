"""LSTM benchmarks: input pipeline, training throughput and accuracy. Records figures, asserts nothing.

Run: `.venv/bin/python -m benchmarks.lstm_bench [--series N] [--days D] [--json PATH]`; prints Markdown.

1. Input pipeline: the same windows (built by Spark) read as `tf.data` batches through Petastorm
   (`make_spark_converter` -> `make_tf_dataset`), through the Arrow fallback, and from in-memory numpy
   (`tf.data.Dataset.from_tensor_slices`, the ceiling): samples/s and the ratio to in-memory (target
   >= 0.8). Each rate is timed from opening the loader's dataset to the last batch, so a loader that
   reads its shard once and holds it (`memory_cache_bytes`, the default) pays for that read; each
   loader also runs with `memory_cache_bytes=0`, reading Parquet every epoch.
2. Training throughput (samples/s of optimizer steps): single-process Keras on in-memory data, and
   `BarrierTrainer` with 1 and 2 workers on a Spark standalone cluster started for the benchmark
   (master and two one-core workers on 127.0.0.1, as the cluster tests run; the 2 workers
   all-reduce over gRPC). `steady` rates leave out each worker's first epoch (graph tracing) and
   the validation passes, as the single-process rate leaves out its warm-up.
3. Accuracy on generated daily data: `replenish forecast --model auto` (seasonal naive, routed
   ARIMA/ETS/Croston, the LSTM candidate) on a panel of ordinary, promo-heavy and short (recently
   launched) series; mean backtest MASE per model overall and per group; then per-series selection
   (lowest mean MASE on the earlier folds, scored on the last fold) with and without the LSTM.
   A second LSTM run treats the test windows' promotions as planned (`planned_promotions`).
4. New SKUs (`launch`): a third of an ordinary panel starts 7, 14 or 21 days before a forecast origin;
   one `forecast --model auto` on the history to the origin, and each new series' 28-day forecasts of
   every model (the LSTM, the routed `recent_mean` fallback, seasonal naive) scored against the days
   after it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _spark() -> Any:
    from replenish_jobs.harness import build_spark

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import SPARK_TEST_CONF

    return build_spark(
        {"app_name": "lstm-bench", "master": "local[2]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"},
        profile="local",
    )


def panel(series: int, days: int, seed: int = 11) -> pd.DataFrame:
    """Ordinary, promo-heavy and short series (a third each), silver.demand-shaped, with a `group`."""
    from replenish.forecast.synthetic import synthetic_demand

    third = max(series // 3, 1)
    parts = []
    for group, promo_rate, offset in (("ordinary", 0.03, 0), ("promo_heavy", 0.25, 1), ("short", 0.05, 2)):
        frame = synthetic_demand(third, days, seed=seed + offset, promo_rate=promo_rate, intermittent_share=0.1)
        frame = frame.drop(columns=["true_demand", "kind"])
        frame["sku"] = group[:2].upper() + frame["sku"]
        if group == "short":
            frame = frame[pd.to_datetime(frame["date"]) >= pd.to_datetime(frame["date"]).max() - pd.Timedelta(days=69)]
        frame["category"] = group
        parts.append(frame.assign(group=group))
    return pd.concat(parts, ignore_index=True)


def bench_input(spark: Any, demand: Any, out: Path, *, batches: int) -> dict[str, Any]:
    from replenish.neural.loader import MODEL_COLUMNS, ArrowLoader, PetastormLoader
    from replenish.neural.tf_runtime import tf
    from replenish.neural.windows import WindowSpec, training_windows

    spec = WindowSpec(freq="D", history=56, horizon=28)
    last = demand.agg({"date": "max"}).first()[0]
    windows = training_windows(demand, spec, train_end=last, stride=2, max_origins=40)
    windows.write.mode("overwrite").parquet(str(out / "bench_windows"))
    windows = spark.read.parquet(str(out / "bench_windows"))
    batch = 256
    petastorm = PetastormLoader.from_dataframe(
        windows, cache_dir=f"file://{out}/petastorm", row_group_bytes=4 * 1024 * 1024, min_row_groups=2
    )
    arrow = ArrowLoader.from_files(list(petastorm.converter.file_urls))
    columns = windows.select(*MODEL_COLUMNS).toPandas()  # benchmark only: the in-memory ceiling
    arrays = {
        name: np.stack(columns[name].map(lambda v: np.asarray(v, np.float32)))
        if name in ("history", "future", "target", "target_mask", "projection")
        else columns[name].to_numpy()
        for name in MODEL_COLUMNS
    }

    @contextlib.contextmanager
    def in_memory(**_: Any) -> Iterator[Any]:
        yield tf.data.Dataset.from_tensor_slices(arrays).shuffle(batch * 8, seed=0).batch(batch).repeat().prefetch(-1)

    def rate(open_dataset: Callable[..., Any]) -> float:
        """Samples/s from opening the dataset to the last of `batches` batches: the median of 3 runs."""
        rates = []
        for _ in range(3):
            started = time.perf_counter()
            with open_dataset(cur_shard=None, shard_count=None, batch_size=batch, shuffle=True, seed=0) as dataset:
                iterator = iter(dataset)
                for _ in range(batches):
                    next(iterator)
            rates.append(batches * batch / (time.perf_counter() - started))
        return float(np.median(rates))

    rate(in_memory)  # TensorFlow's first dataset and function tracing, outside every timing
    results: dict[str, Any] = {"windows": petastorm.rows, "row_groups": petastorm.row_groups, "batch": batch}
    results["bytes"] = petastorm.bytes
    results["in_memory"] = rate(in_memory)
    for name, loader in (("petastorm", petastorm), ("arrow", arrow)):
        results[name] = rate(loader.dataset)
        default, loader.memory_cache_bytes = loader.memory_cache_bytes, 0
        results[f"{name}_every_epoch"] = rate(loader.dataset)
        loader.memory_cache_bytes = default
    petastorm.delete()
    return {**results, "arrays": arrays}


def bench_training(frame: pd.DataFrame, arrays: dict[str, np.ndarray], out: Path, *, steps: int) -> dict:
    """Single-process Keras, then `BarrierTrainer` with 1 and 2 workers on a standalone cluster."""
    from pyspark.sql import SparkSession

    from replenish.forecast.settings import ForecastConfig
    from replenish.neural import pipeline
    from replenish.neural.model import LstmForecaster, ModelSpec, to_model_inputs
    from replenish.neural.settings import LstmSettings
    from replenish.neural.tf_runtime import tf
    from tests.cluster.standalone import standalone_daemons

    spec = ModelSpec(history=56, horizon=28, hidden=32, projection_dim=4, season=7)
    batch, epochs = 128, 3
    data = (
        tf.data.Dataset.from_tensor_slices(arrays)
        .shuffle(4096, seed=0)
        .batch(batch)
        .map(lambda b: to_model_inputs(b, spec))
        .repeat()
    )
    forecaster = LstmForecaster(spec).build()
    forecaster.fit(data, epochs=1, steps_per_epoch=3)  # graph tracing outside the timing
    started = time.perf_counter()
    forecaster.fit(data, epochs=epochs - 1, steps_per_epoch=steps)
    results: dict[str, Any] = {"single_process": (epochs - 1) * steps * batch / (time.perf_counter() - started)}
    (out / "standalone").mkdir()
    with standalone_daemons(out / "standalone", workers=2) as daemons:
        spark = (
            SparkSession.builder.master(daemons.master_url)
            .appName("lstm-bench-cluster")
            .config("spark.executor.cores", "1")
            .config("spark.executor.memory", "1g")
            .config("spark.cores.max", "2")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        windows = spark.read.parquet(str(out / "bench_windows"))
        labelled = windows.selectExpr("*", "CASE WHEN rand(1) < 0.9 THEN 'train' ELSE 'valid' END AS split_")
        labelled = labelled.drop("split").withColumnRenamed("split_", "split")
        demand = spark.createDataFrame(frame.drop(columns=["group"]))
        for workers in (1, 2):
            settings = LstmSettings(
                history=56,
                epochs=epochs,
                workers=workers,
                batch_size=batch,
                steps_per_epoch=steps,
                patience=5,
                row_group_bytes=1024 * 1024,
            )
            plan = pipeline.lstm_plan(demand, ForecastConfig(horizon=28).plan("D"), settings)
            result = pipeline.train_lstm(
                spark,
                labelled,
                plan,
                model_dir=str(out / f"model-{workers}"),
                work_dir=str(out / f"work-{workers}-{time.time()}"),
                cache_dir=str(out / f"cache-{workers}"),
            )
            results[f"barrier_{workers}"] = result["samples_per_second"]
            results[f"barrier_{workers}_steady"] = result["steady_samples_per_second"]
        results["windows"] = windows.count()
        spark.stop()
    return results


def bench_accuracy(spark: Any, frame: pd.DataFrame, out: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:

    from replenish.io.lake import Lake
    from replenish_jobs import forecast

    lake = Lake(spark, str(out / "lakehouse"))
    lake.write(spark.createDataFrame(frame.drop(columns=["group"])), "silver.demand", mode="overwrite")
    common = [
        "--lake",
        lake.root,
        "--run-date",
        "2024-06-01",
        "--set",
        "forecast.backtest.folds=3",
        "--set",
        "forecast.lstm.epochs=10",
        "--set",
        "forecast.lstm.max_origins=12",  # the product's stride: 12 origins spread over the year
        *(item for override in overrides for item in ("--set", override)),
    ]
    assert forecast.main([*common, "--run-id", "auto"], spark=spark) == 0
    assert (
        forecast.main(
            [*common, "--run-id", "planned", "--model", "lstm", "--set", "forecast.lstm.planned_promotions=true"],
            spark=spark,
        )
        == 0
    )
    scores = lake.read("gold.forecast_backtest").select("run_id", "sku", "location", "model", "fold", "mase").toPandas()
    groups = frame.groupby("sku")["group"].first()
    scores["group"] = scores["sku"].map(groups)
    scores.loc[scores["run_id"] == "planned", "model"] = "lstm_planned"
    scores = scores[np.isfinite(scores["mase"])]
    table = scores.groupby(["model", "group"])["mase"].mean().unstack()
    table["overall"] = scores.groupby("model")["mase"].mean()

    def selection(candidates: set[str]) -> float:
        pool = scores[scores["model"].isin(candidates)]
        last = pool["fold"].max()
        earlier = pool[pool["fold"] < last].groupby(["sku", "location", "model"])["mase"].mean().reset_index()
        best = earlier.loc[earlier.groupby(["sku", "location"])["mase"].idxmin()]
        final = pool[pool["fold"] == last].merge(best[["sku", "location", "model"]], on=["sku", "location", "model"])
        return float(final["mase"].mean())

    statistical = set(scores["model"]) - {"lstm", "lstm_planned"}
    return {
        "mase": table.round(3).to_dict(),
        "selection_without_lstm": round(selection(statistical), 3),
        "selection_with_lstm": round(selection(statistical | {"lstm"}), 3),
        "selection_with_lstm_planned": round(selection(statistical | {"lstm_planned"}), 3),
        "series": int(frame.groupby(["sku", "location"]).ngroups),
    }


LAUNCH_AGES = (7, 14, 21)
"""Days of history a new SKU has at the forecast origin in the launch stage."""


def launch_panel(series: int, days: int, seed: int = 31) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Established and new series of one kind of product: (history to the origin, the 28 days after, origin).

    A new series is an ordinary one whose rows start `LAUNCH_AGES` days before the origin, so its
    category, location and patterns are those the LSTM learns from the established ones.
    """
    from replenish.forecast.synthetic import synthetic_demand

    frame = synthetic_demand(series, days, seed=seed, promo_rate=0.05, intermittent_share=0.1)
    frame = frame.drop(columns=["true_demand", "kind"]).assign(category="ordinary")
    frame["sku"] = frame["sku"] + "-" + frame["location"]  # one series per SKU: scored by sku below
    dates = pd.to_datetime(frame["date"])
    origin = dates.max() - pd.Timedelta(days=28)
    skus = sorted(frame["sku"].unique())
    new = {sku: LAUNCH_AGES[i % len(LAUNCH_AGES)] for i, sku in enumerate(skus[::3])}
    age = frame["sku"].map(new)
    launched = age.isna() | (dates > origin - pd.to_timedelta(age.fillna(0), unit="D"))
    frame = frame[launched].assign(group=np.where(age[launched].isna(), "established", "new"), age=age[launched])
    history = frame[pd.to_datetime(frame["date"]) <= origin]
    return history, frame[pd.to_datetime(frame["date"]) > origin], origin


def bench_launch(spark: Any, out: Path, *, series: int, days: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """New SKUs (7-21 days of history): the LSTM's 28-day forecast against the routed fallback's.

    The forecast job runs once on the history to an origin (`--model auto`, the LSTM a candidate);
    each new series' forecasts of every model are scored against the 28 days after it, scaled by the
    series' naive MAE over everything observed (the same denominator for every model). `mase`: each
    model's mean over the series it forecast; `paired_with_fallback`: the LSTM against the model
    routing gave the same series (`recent_mean`, or `croston_sba` for an intermittent one).
    """
    from replenish.io.lake import Lake
    from replenish_jobs import forecast

    history, future, origin = launch_panel(series, days)
    lake = Lake(spark, str(out / "launch-lakehouse"))
    columns = [c for c in history.columns if c not in ("group", "age")]
    lake.write(spark.createDataFrame(history[columns]), "silver.demand", mode="overwrite")
    options = ["--lake", lake.root, "--run-date", (origin + pd.Timedelta(days=1)).date().isoformat()]
    options += ["--horizon", "28", "--run-id", "launch"]
    settings = ["forecast.backtest.folds=3", "forecast.lstm.epochs=10", "forecast.lstm.max_origins=12", *overrides]
    assert forecast.main([*options, *[item for s in settings for item in ("--set", s)]], spark=spark) == 0
    new = history[history["group"] == "new"]
    ages = new.groupby("sku")["age"].first()
    observed = pd.concat([history, future])
    observed = observed[observed["sku"].isin(ages.index)].sort_values(["sku", "date"])
    scale = observed.groupby("sku")["demand"].apply(lambda d: float(np.mean(np.abs(np.diff(d.to_numpy())))))
    rows = lake.read("gold.forecast").select("sku", "date", "model", "yhat").toPandas()
    rows = rows[rows["sku"].isin(ages.index)]
    rows["date"] = pd.to_datetime(rows["date"])
    actual = future[["sku", "date", "demand"]].assign(date=lambda f: pd.to_datetime(f["date"]))
    scored = rows.merge(actual, on=["sku", "date"])
    errors = scored.assign(error=(scored["yhat"] - scored["demand"]).abs()).groupby(["sku", "model"])["error"].mean()
    mase = (errors / errors.index.get_level_values("sku").map(scale).to_numpy()).reset_index(name="mase")
    mase = mase[np.isfinite(mase["mase"])]
    mase["age"] = mase["sku"].map(ages)
    table = mase.groupby(["model", "age"])["mase"].mean().unstack()
    table["all"] = mase.groupby("model")["mase"].mean()
    by_series = mase.pivot(index="sku", columns="model", values="mase")
    routed = [model for model in by_series.columns if model not in ("lstm", "seasonal_naive")]
    paired = pd.DataFrame({"lstm": by_series["lstm"], "fallback": by_series[routed].bfill(axis=1).iloc[:, 0]}).dropna()
    return {
        "new_series": int(ages.size),
        "series_scored": int(mase["sku"].nunique()),
        "mase": {model: {str(k): round(float(v), 3) for k, v in row.items()} for model, row in table.iterrows()},
        "paired_with_fallback": {
            "pairs": len(paired),
            "lstm": round(float(paired["lstm"].mean()), 3),
            "fallback": round(float(paired["fallback"].mean()), 3),
            "lstm_lower": int((paired["lstm"] < paired["fallback"]).sum()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=30)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--batches", type=int, default=500, help="input stage: batches of 256 per rate (500: about the demo's training)"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], choices=["input", "training", "accuracy", "launch"])
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="KEY=VALUE for the accuracy stage's forecast runs"
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    spark = _spark()
    frame = panel(args.series, args.days)
    demand = spark.createDataFrame(frame.drop(columns=["group"]))
    report: dict[str, Any] = {"series": args.series, "days": args.days}
    with tempfile.TemporaryDirectory(prefix="lstm-bench-") as folder:
        out = Path(folder)
        arrays = None
        if "input" not in args.skip or "training" not in args.skip:
            inputs = bench_input(spark, demand, out, batches=args.batches)
            arrays = inputs.pop("arrays")
            report["input"] = inputs
            print(f"input pipeline (samples/s): {json.dumps(inputs)}", flush=True)
        if "accuracy" not in args.skip:
            report["accuracy"] = bench_accuracy(spark, frame, out, args.overrides)
            print(f"accuracy: {json.dumps(report['accuracy'])}", flush=True)
        if "launch" not in args.skip:
            report["launch"] = bench_launch(spark, out, series=args.series, days=args.days, overrides=args.overrides)
            print(f"launch: {json.dumps(report['launch'])}", flush=True)
        spark.stop()  # the training stage runs its own session on a standalone cluster
        if "training" not in args.skip and arrays is not None:
            report["training"] = bench_training(frame, arrays, out, steps=args.steps)
            print(f"training (samples/s): {json.dumps(report['training'])}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
