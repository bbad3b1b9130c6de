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

from pyspark.sql import SparkSession

try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    dbutils.widgets.text("raw", "/dbfs/replenish/raw", "Raw files")
    dbutils.widgets.dropdown("freq", "D", ["D", "W", "M"], "Frequency")
    dbutils.widgets.text("horizon", "28", "Horizon (periods)")
    params = {name: dbutils.widgets.get(name) for name in ("lake", "raw", "freq", "horizon")}
    profile = "databricks"
except NameError:  # not on Databricks: local Spark and local folders
    params = {"lake": "./lakehouse", "raw": "./data/raw", "freq": "D", "horizon": "28"}
    profile = "local"

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
common = ["--lake", params["lake"], "--profile", profile]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Ingest every raw entity found in the raw folder; bad rows go to `quarantine.*` with a reason

# COMMAND ----------

from replenish_jobs import features, forecast, ingest, inventory, simulate

assert ingest.main(["--all", params["raw"], *common], spark=spark) == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## Features, forecasts (with backtests), then the replenishment plan

# COMMAND ----------

assert features.main(["--freq", params["freq"], *common], spark=spark) == 0
assert forecast.main(["--freq", params["freq"], "--horizon", params["horizon"], *common], spark=spark) == 0
assert inventory.main(["--freq", params["freq"], *common], spark=spark) == 0
assert simulate.main(["--freq", params["freq"], *common], spark=spark) == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## What was written

# COMMAND ----------

from replenish.io.lake import Lake
from replenish_jobs.tables import format_table_summary, table_summary

print(format_table_summary(table_summary(Lake(spark, params["lake"]))))
