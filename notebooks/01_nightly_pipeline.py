# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: the nightly pipeline
# MAGIC
# MAGIC Runs ingest → features → forecast → inventory → simulate on the cluster this notebook is attached to,
# MAGIC with the same job code `spark-submit jobs/<job>.py` runs. Widgets set the lake root, the raw-data folder,
# MAGIC the demand frequency and the horizon. Outside Databricks the same cells run with the defaults below.

# COMMAND ----------

# MAGIC %pip install /dbfs/FileStore/replenish/replenish-0.1.0-py3-none-any.whl

# COMMAND ----------

import os

from pyspark.sql import SparkSession

WIDGETS = {"lake": "./lakehouse", "raw": "./data/raw", "freq": "D", "horizon": "28", "settings": ""}
try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    dbutils.widgets.text("raw", "/dbfs/replenish/raw", "Raw files")
    dbutils.widgets.dropdown("freq", "D", ["D", "W", "M"], "Frequency")
    dbutils.widgets.text("horizon", "28", "Horizon (periods)")
    dbutils.widgets.text("settings", "", "Overrides (key=value ...)")
    params = {name: dbutils.widgets.get(name) for name in WIDGETS}
    profile = "databricks"
except NameError:  # not on Databricks: local Spark; NOTEBOOK_<NAME> environment variables, else the defaults
    params = {name: os.environ.get(f"NOTEBOOK_{name.upper()}", default) for name, default in WIDGETS.items()}
    profile = "local"

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
common = ["--lake", params["lake"], "--profile", profile]
for override in params["settings"].split():
    common += ["--set", override]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Ingest every raw entity found in the raw folder; bad rows go to `quarantine.*` with a reason

# COMMAND ----------

from replenish_jobs import features, forecast, ingest, inventory, report, simulate

assert ingest.main(["--all", params["raw"], *common], spark=spark) == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## Features, forecasts (with backtests), the replenishment plan, its hold-out replay and the report

# COMMAND ----------

assert features.main(["--freq", params["freq"], *common], spark=spark) == 0
assert forecast.main(["--freq", params["freq"], "--horizon", params["horizon"], *common], spark=spark) == 0
assert inventory.main(["--freq", params["freq"], *common], spark=spark) == 0
assert simulate.main(["--freq", params["freq"], *common], spark=spark) == 0
assert report.main(["--out", f"{params['lake'].rstrip('/')}/report.html", *common], spark=spark) == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## What was written

# COMMAND ----------

from replenish.io.lake import Lake
from replenish_jobs.tables import format_table_summary, table_summary

tables = table_summary(Lake(spark, params["lake"]))
print(format_table_summary(tables))
