# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: the tracked runs
# MAGIC
# MAGIC Every job run is an MLflow run (docs/operations.md). This notebook lists the latest runs of the
# MAGIC experiment with their key metrics: backtest MASE per model, achieved vs target service, and the
# MAGIC inventory saved against the naive policy, so a night can be compared with the nights before.

# COMMAND ----------

import os

import mlflow

from replenish import config
from replenish.tracking import configure, tracking_config

try:
    dbutils.widgets.text("experiment", "/Shared/replenish", "MLflow experiment")
    dbutils.widgets.text("runs", "50", "Runs to list")
    params = {name: dbutils.widgets.get(name) for name in ("experiment", "runs")}
    profile = "databricks"
except NameError:  # not on Databricks: NOTEBOOK_<NAME> environment variables, else the defaults
    params = {
        "experiment": os.environ.get("NOTEBOOK_EXPERIMENT", "replenish"),
        "runs": os.environ.get("NOTEBOOK_RUNS", "50"),
    }
    profile = "local"

settings = config.load(profile, [f"tracking.experiment={params['experiment']}"])
print("tracking URI:", configure(tracking_config(settings)))

# COMMAND ----------

# MAGIC %md
# MAGIC ## The latest runs: job, gold run id, status, time

# COMMAND ----------

runs = mlflow.search_runs(
    experiment_names=[params["experiment"]], max_results=int(params["runs"]), order_by=["start_time DESC"]
)
columns = ["tags.replenish.job", "tags.replenish.run_id", "status", "metrics.seconds", "run_id"]
print(runs[[name for name in columns if name in runs.columns]].to_string(index=False))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Forecast accuracy per run: mean backtest MASE of each model

# COMMAND ----------

forecasts = runs[runs["tags.replenish.job"] == "forecast"]
mase_columns = [name for name in runs.columns if name.startswith("metrics.backtest/") and name.count("/") == 2]
mase_columns = [name for name in mase_columns if name.endswith("/mase")]
accuracy = forecasts[["tags.replenish.run_id", *mase_columns]].rename(
    columns=lambda name: name.removeprefix("metrics.backtest/").removesuffix("/mase")
)
print(accuracy.to_string(index=False))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Service achieved vs target, and inventory saved against the naive policy (all classes)

# COMMAND ----------

simulations = runs[runs["tags.replenish.job"] == "simulate"]
service_columns = {
    "metrics.classes/ALL/achieved": "achieved",
    "metrics.classes/ALL/service_target": "target",
    "metrics.classes/ALL/inventory_saving": "inventory_saving",
}
service = simulations[["tags.replenish.run_id", *[c for c in service_columns if c in simulations.columns]]].rename(
    columns=service_columns
)
print(service.to_string(index=False))
