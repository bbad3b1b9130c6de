# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: train the global LSTM on GPU workers
# MAGIC
# MAGIC Builds the LSTM's training windows from `silver.demand` with Spark, trains the model in a barrier stage
# MAGIC through Petastorm (one GPU per training task), forecasts every series and backtests it, with the same
# MAGIC library functions `replenish train-lstm` and `replenish forecast --model lstm` call (docs/lstm.md).
# MAGIC
# MAGIC **Cluster** (GPU ML runtime, e.g. 15.4 LTS ML GPU): 2+ GPU workers such as `g5.xlarge` (1 x A10G each),
# MAGIC autoscaling off (a barrier stage needs all its tasks at once). Databricks sets
# MAGIC `spark.task.resource.gpu.amount` (1 GPU per task); on other clusters set
# MAGIC `spark.executor.resource.gpu.amount=1`, `spark.task.resource.gpu.amount=1` and the discovery script
# MAGIC `conf/gpu_discovery.sh`. Install `tensorflow[and-cuda]` on GPU runtimes that lack TensorFlow 2.21.
# MAGIC The lake must be a file path (`/dbfs/...` or a Unity Catalog volume): models and the Petastorm cache are
# MAGIC files. Outside Databricks the same cells run on local Spark and CPU with the defaults below.

# COMMAND ----------

# MAGIC %pip install /dbfs/FileStore/replenish/replenish-0.1.0-py3-none-any.whl

# COMMAND ----------

import datetime as dt
import json
import os

from pyspark.sql import SparkSession

try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    dbutils.widgets.dropdown("freq", "D", ["D", "W", "M", "Q"], "Frequency")
    dbutils.widgets.text("workers", "2", "Training workers (GPUs)")
    dbutils.widgets.dropdown("use_gpu", "true", ["true", "false"], "One GPU per task")
    dbutils.widgets.text("settings", "", "Overrides (key=value ...)")
    params = {name: dbutils.widgets.get(name) for name in ("lake", "freq", "workers", "use_gpu", "settings")}
    profile = "databricks"
except NameError:  # not on Databricks: local Spark, CPU; NOTEBOOK_<NAME> environment variables, else the defaults
    defaults = {"lake": "./lakehouse", "freq": "D", "workers": "1", "use_gpu": "false", "settings": ""}
    params = {name: os.environ.get(f"NOTEBOOK_{name.upper()}", value) for name, value in defaults.items()}
    profile = "local"

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Settings: the profile's `forecast` section, with this notebook's workers and GPU choice

# COMMAND ----------

import dataclasses

from replenish import config
from replenish.forecast import ForecastConfig
from replenish.io.lake import Lake
from replenish.neural import pipeline

settings = config.load(profile, params["settings"].split())
forecast_cfg = config.section(settings, "forecast", ForecastConfig)
lstm_settings = dataclasses.replace(
    forecast_cfg.lstm, workers=int(params["workers"]), use_gpu=params["use_gpu"] == "true"
)
plan = forecast_cfg.plan(params["freq"])
lake = Lake(spark, params["lake"])
root = os.path.abspath(params["lake"])
run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-nb"

# COMMAND ----------

# MAGIC %md
# MAGIC ## Windows in Spark → `silver.lstm_windows`

# COMMAND ----------

demand = lake.read("silver.demand")
lstm_plan = pipeline.lstm_plan(demand, plan, lstm_settings)
windows = pipeline.training_windows(demand, lstm_plan)
version = lake.write(windows, "silver.lstm_windows", mode="overwrite_partitions")
stored = lake.read("silver.lstm_windows", version=version).where(f"freq = '{lstm_plan.freq}'")
print(f"training end {lstm_plan.train_end}, backtest cutoffs {[str(c) for c in lstm_plan.cutoffs]}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Barrier training (MultiWorkerMirroredStrategy, Petastorm shards); one line per epoch

# COMMAND ----------

model_path = f"{root}/models/lstm/{lstm_plan.freq}/{run_id}"
result = pipeline.train_lstm(
    spark,
    stored,
    lstm_plan,
    model_dir=model_path,
    work_dir=f"{root}/_work/lstm/{lstm_plan.freq}/{run_id}",
    cache_dir=f"{root}/_cache/petastorm",
)
print(json.dumps({k: result[k] for k in ("epochs", "loss", "val_loss", "samples_per_second", "gpus")}, indent=1))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Forecasts and backtest (not written: `replenish forecast --model lstm` writes them and the registry)

# COMMAND ----------

tables = pipeline.lstm_forecast_tables(
    demand, lstm_plan, model_path=model_path, run_id=run_id, run_date=dt.date.today()
)
tables["gold.forecast"].orderBy("sku", "location", "date").show(10)
if "gold.forecast_backtest" in tables:
    tables["gold.forecast_backtest"].groupBy("fold").avg("mase", "coverage_80", "coverage_95").orderBy("fold").show()
