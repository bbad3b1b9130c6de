# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: the nightly pipeline
# MAGIC
# MAGIC Runs ingest → features → recommend → forecast → inventory → simulate → report on the cluster this
# MAGIC notebook is attached to, with the same job code `spark-submit jobs/run_all.py` runs: one tracked run
# MAGIC with a nested run per stage. Widgets set the lake root, the raw-data folder, the demand frequency, the
# MAGIC horizon, the run date and any setting overrides. Outside Databricks the same cells run with the
# MAGIC defaults below.

# COMMAND ----------

# MAGIC %pip install /dbfs/FileStore/replenish/replenish-0.1.0-py3-none-any.whl

# COMMAND ----------

import os

from pyspark.sql import SparkSession

WIDGETS = {"lake": "./lakehouse", "raw": "./data/raw", "freq": "D", "horizon": "28", "run_date": "", "settings": ""}
try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    dbutils.widgets.text("raw", "/dbfs/replenish/raw", "Raw files")
    dbutils.widgets.dropdown("freq", "D", ["D", "W", "M", "Q"], "Frequency")
    dbutils.widgets.text("horizon", "28", "Horizon (periods)")
    dbutils.widgets.text("run_date", "", "Run date (YYYY-MM-DD; empty: today)")
    dbutils.widgets.text("settings", "", "Overrides (key=value ...)")
    params = {name: dbutils.widgets.get(name) for name in WIDGETS}
    profile = "databricks"
except NameError:  # not on Databricks: local Spark; NOTEBOOK_<NAME> environment variables, else the defaults
    params = {name: os.environ.get(f"NOTEBOOK_{name.upper()}", default) for name, default in WIDGETS.items()}
    profile = "local"

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
common = ["--lake", params["lake"], "--profile", profile]
if params["run_date"]:
    common += ["--run-date", params["run_date"]]
for override in params["settings"].split():
    common += ["--set", override]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Every stage on the raw files already in the raw folder
# MAGIC
# MAGIC Bad rows go to `quarantine.*` with a reason; the data-quality gate stops the run before forecasting
# MAGIC when the sales look wrong (`gold.data_quality`). Each stage prints its time as it ends.

# COMMAND ----------

from replenish_jobs import run_all

pipeline = ["--skip-generate", "--data", params["raw"], "--freq", params["freq"], "--horizon", params["horizon"]]
assert run_all.main([*pipeline, *common], spark=spark) == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## What was written

# COMMAND ----------

from replenish.io.describe import format_table_summary, table_summary
from replenish.io.lake import Lake

lake = Lake(spark, params["lake"])
tables = table_summary(lake)
print(format_table_summary(tables))
run_id = lake.read("gold.model_registry").agg({"run_id": "max"}).first()[0]
print("run id:", run_id)
