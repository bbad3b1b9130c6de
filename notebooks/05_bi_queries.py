# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: BI queries on the gold tables
# MAGIC
# MAGIC The questions a BI dashboard asks, in plain SQL against views named `<layer>_<table>`
# MAGIC (`gold_replenishment_plan`), the same names DuckDB uses (docs/bi.md). The SQL cells run on this
# MAGIC cluster's Spark; the last cell runs the same SQL on DuckDB, without Spark, and compares the answers.

# COMMAND ----------

import os

from pyspark.sql import SparkSession

from replenish.io.bi import spark_views
from replenish.io.lake import Lake

try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    lake_root = dbutils.widgets.get("lake")
except NameError:  # not on Databricks: the NOTEBOOK_LAKE environment variable, else ./lakehouse
    lake_root = os.environ.get("NOTEBOOK_LAKE", "./lakehouse")

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
views = spark_views(Lake(spark, lake_root))
print("views:", ", ".join(views))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Orders to place today, largest first

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT sku, location, abc_xyz, inventory_position, order_up_to_level, order_quantity, order_value, order_reason
# MAGIC FROM gold_replenishment_plan
# MAGIC WHERE run_id = (SELECT max(run_id) FROM gold_replenishment_plan)
# MAGIC   AND order_quantity > 0
# MAGIC ORDER BY order_value DESC NULLS LAST, sku, location
# MAGIC LIMIT 20

# COMMAND ----------

# MAGIC %md
# MAGIC ## Safety stock by class and chosen model

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT s.abc_xyz, m.selected_model, count(*) AS series,
# MAGIC        sum(s.safety_stock) AS safety_stock_units,
# MAGIC        avg(s.forecast_error_std) AS mean_forecast_error_std
# MAGIC FROM gold_safety_stock s
# MAGIC JOIN gold_model_selection m
# MAGIC   ON m.run_id = s.run_id AND m.sku = s.sku AND m.location = s.location
# MAGIC WHERE s.run_id = (SELECT max(run_id) FROM gold_safety_stock)
# MAGIC GROUP BY s.abc_xyz, m.selected_model
# MAGIC ORDER BY s.abc_xyz, m.selected_model

# COMMAND ----------

# MAGIC %md
# MAGIC ## Service achieved vs target per class, on the hold-out replay

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT abc_xyz, count(*) AS series, avg(service_target) AS service_target,
# MAGIC        1 - sum(stockout_cycles) / sum(cycles) AS cycle_service_level,
# MAGIC        sum(filled) / sum(demand) AS fill_rate,
# MAGIC        sum(average_on_hand) AS average_on_hand
# MAGIC FROM gold_inventory_simulation
# MAGIC WHERE run_id = (SELECT max(run_id) FROM gold_inventory_simulation)
# MAGIC   AND policy = 'optimized'
# MAGIC GROUP BY abc_xyz
# MAGIC ORDER BY abc_xyz

# COMMAND ----------

# MAGIC %md
# MAGIC ## The same question from a BI tool without Spark: DuckDB over the same Delta tables

# COMMAND ----------

from replenish.io.bi import duckdb_connect

ORDERS_BY_CLASS = """
SELECT abc_xyz, count(*) AS series, sum(order_quantity) AS order_quantity, sum(order_value) AS order_value
FROM gold_replenishment_plan
WHERE run_id = (SELECT max(run_id) FROM gold_replenishment_plan)
GROUP BY abc_xyz
ORDER BY abc_xyz
"""
on_spark = spark.sql(ORDERS_BY_CLASS).toPandas()
duckdb = duckdb_connect(lake_root, tables=["gold.replenishment_plan"])
on_duckdb = duckdb.sql(ORDERS_BY_CLASS).df()
print(on_duckdb.to_string(index=False))
engines_agree = on_spark["series"].tolist() == on_duckdb["series"].tolist() and bool(
    ((on_spark["order_quantity"] - on_duckdb["order_quantity"]).abs() < 1e-6).all()
)
print("Spark and DuckDB agree:", engines_agree)
