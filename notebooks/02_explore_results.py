# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: explore the results
# MAGIC
# MAGIC Reads the gold tables through the lake API (any Spark, with or without the Delta JARs), registers them
# MAGIC as temporary views, and answers the questions planners ask first.

# COMMAND ----------

import os

from pyspark.sql import SparkSession

from replenish.io.catalog import TABLES
from replenish.io.lake import Lake

try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    lake_root = dbutils.widgets.get("lake")
except NameError:  # not on Databricks: the NOTEBOOK_LAKE environment variable, else ./lakehouse
    lake_root = os.environ.get("NOTEBOOK_LAKE", "./lakehouse")

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
lake = Lake(spark, lake_root)
for name in TABLES:
    if lake.exists(name):
        lake.read(name).createOrReplaceTempView(name.replace(".", "_"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Forecast accuracy by demand class and model (backtests of the latest run)

# COMMAND ----------

accuracy = spark.sql(
    """
    SELECT p.demand_class, b.model, count(DISTINCT b.sku, b.location) AS series,
           round(avg(b.mase), 3) AS mase, round(avg(b.wape), 3) AS wape, round(avg(b.coverage_80), 3) AS coverage_80
    FROM gold_forecast_backtest b
    JOIN silver_series_profile p USING (freq, sku, location)
    WHERE b.run_id = (SELECT max(run_id) FROM gold_forecast_backtest)
    GROUP BY p.demand_class, b.model
    ORDER BY p.demand_class, mase
    """
)
accuracy.show(50, truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## One series: history, forecast and its 80% / 95% intervals

# COMMAND ----------

series = spark.sql("SELECT sku, location FROM gold_forecast LIMIT 1").first()
history = spark.sql(
    f"SELECT date, demand FROM silver_demand WHERE sku = '{series.sku}' AND location = '{series.location}' "
    "ORDER BY date DESC LIMIT 90"
)
future = spark.sql(
    f"SELECT date, model, yhat, yhat_lo_80, yhat_hi_80, yhat_lo_95, yhat_hi_95 FROM gold_forecast "
    f"WHERE sku = '{series.sku}' AND location = '{series.location}' "
    "AND run_id = (SELECT max(run_id) FROM gold_forecast) ORDER BY model, date"
)
history.show(10)
future.show(30)

# COMMAND ----------

# MAGIC %md
# MAGIC ## What to order today

# COMMAND ----------

spark.sql("SELECT * FROM gold_replenishment_plan ORDER BY sku, location LIMIT 50").show(50, truncate=False)
