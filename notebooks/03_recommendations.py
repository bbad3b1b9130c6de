# Databricks notebook source
# MAGIC %md
# MAGIC # replenish: recommendations, SKU embeddings and similar SKUs
# MAGIC
# MAGIC Fits implicit-feedback ALS on `bronze.interactions` with the same library call as `replenish recommend`
# MAGIC (`build_recommender`), writes the tables the job writes, and shows what came out: the settings search
# MAGIC against the popularity baseline, one user's recommendations and one SKU's neighbours.

# COMMAND ----------

import os

from pyspark.sql import SparkSession

from replenish import config
from replenish.io.lake import Lake
from replenish.recommend import RecommendConfig, build_recommender

try:
    dbutils.widgets.text("lake", "/dbfs/replenish/lakehouse", "Lake root")
    dbutils.widgets.text("run_date", "", "Run date (YYYY-MM-DD; empty: today)")
    lake_root = dbutils.widgets.get("lake")
    run_date_text = dbutils.widgets.get("run_date")
except NameError:  # not on Databricks: NOTEBOOK_<NAME> environment variables, else the defaults
    lake_root = os.environ.get("NOTEBOOK_LAKE", "./lakehouse")
    run_date_text = os.environ.get("NOTEBOOK_RUN_DATE", "")

import datetime as dt

from replenish.shared import new_run_id

spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
lake = Lake(spark, lake_root)
settings = config.load("databricks" if "dbutils" in globals() else "local")
cfg = config.section(settings, "recommend", RecommendConfig)
run_date = dt.date.fromisoformat(run_date_text) if run_date_text else dt.datetime.now(dt.UTC).date()
run_id = new_run_id()
spark.sparkContext.setCheckpointDir(cfg.checkpoint_dir or f"{lake_root.rstrip('/')}/_checkpoints/recommend")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Fit, evaluate, publish (what `replenish recommend` does)

# COMMAND ----------


def current(name):
    return lake.read(name) if lake.exists(name) else None


products = current("bronze.products")
result = build_recommender(
    lake.read("bronze.interactions"),
    cfg=cfg,
    user_map=current("silver.user_index"),
    sku_map=current("silver.sku_index"),
    run_id=run_id,
    run_date=run_date,
    known_skus=None if products is None else products.select("sku"),
)
for name, frame in result.by_table().items():
    if name.startswith("silver."):
        lake.insert_new(frame, name)
    else:
        lake.write(frame, name, mode="append" if name == "gold.recommender_evaluation" else "overwrite")
result.release()  # unpersist what the run cached: this session lives on
print(result.metrics)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The settings searched, against the popularity baseline

# COMMAND ----------

evaluation = lake.read("gold.recommender_evaluation").where(f"run_id = '{run_id}'").orderBy("model", "ndcg_at_k")
evaluation.show(truncate=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## One user's recommendations, and the neighbours of their first SKU

# COMMAND ----------

recommendations = lake.read("gold.recommendations")
user = recommendations.select("user_id").orderBy("user_id").first()
recommendations.where(f"user_id = '{user.user_id}'").orderBy("rank").show(20, truncate=False)
first_sku = recommendations.where(f"user_id = '{user.user_id}' AND rank = 1").first().sku
lake.read("gold.similar_items").where(f"sku = '{first_sku}'").orderBy("rank").show(truncate=False)
lake.read("gold.item_factors").where(f"sku = '{first_sku}'").select("sku", "projection").show(truncate=False)
