"""spark-submit app of test_lstm_on_cluster: a 2-worker barrier training on fake GPUs, then forecasts.

Usage: lstm_barrier_app.py <output folder>; prints one JSON line with the chief's result.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from replenish.forecast.settings import BacktestSettings, ForecastConfig
from replenish.forecast.synthetic import synthetic_demand
from replenish.neural import pipeline
from replenish.neural.settings import LstmSettings


def main(out: str) -> None:
    spark = SparkSession.builder.getOrCreate()
    panel = synthetic_demand(8, 90, seed=5, intermittent_share=0.0, zero_share=0.0)
    demand = spark.createDataFrame(panel.drop(columns=["true_demand", "kind"]))
    settings = LstmSettings(
        history=14,
        epochs=3,
        workers=2,
        use_gpu=True,
        batch_size=16,
        stride=2,
        max_origins=10,
        steps_per_epoch=5,
        row_group_bytes=2048,
        patience=5,
    )
    plan = pipeline.lstm_plan(demand, ForecastConfig(horizon=7, backtest=BacktestSettings(folds=1)).plan("D"), settings)
    pipeline.training_windows(demand, plan).write.parquet(f"{out}/windows")
    windows = spark.read.parquet(f"{out}/windows")
    result = pipeline.train_lstm(
        spark, windows, plan, model_dir=f"{out}/model", work_dir=f"{out}/work", cache_dir=f"{out}/cache"
    )
    tables = pipeline.lstm_forecast_tables(
        demand, plan, model_path=f"{out}/model", run_id="cluster", run_date=dt.date(2024, 1, 1)
    )
    forecast = tables["gold.forecast"]
    summary = forecast.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("sku", "location").alias("series"),
        F.sum(F.when(F.isnan("yhat") | (F.col("yhat") < 0), 1).otherwise(0)).alias("bad"),
    ).first()
    print(json.dumps({"result": result, "forecast": summary.asDict()}))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
