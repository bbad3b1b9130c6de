"""Whether a session can run `replenish stream`: Structured Streaming over Delta needs delta-spark's SQL
extension (for MERGE) in the session itself. Every session the job harness (`replenish_jobs.harness`)
builds has it unless the lake engine is `embedded` (replenish.io.engines).
"""

from __future__ import annotations

from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Set on Databricks clusters, whose runtime has Delta built in without the open-source extension setting.
_DATABRICKS_CLUSTER = "spark.databricks.clusterUsageTags.clusterId"


def has_delta(spark: SparkSession) -> bool:
    """True when the session runs delta-spark's SQL extension (needed for MERGE), or is a Databricks cluster's."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return DELTA_EXTENSION in extensions or spark.conf.get(_DATABRICKS_CLUSTER, None) is not None
