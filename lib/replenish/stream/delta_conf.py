"""delta-spark in the session of `replenish stream`, until every session gets it by default.

Structured Streaming over Delta needs delta-spark's SQL extension, its catalog and its JARs in the
session itself; they cannot be added to a session that is running. These are the settings that
`delta.configure_spark_with_delta_pip` adds, as `--set` overrides of the job's profile.
"""

from __future__ import annotations

from importlib.metadata import version

from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Set on Databricks clusters, whose runtime has Delta built in without the open-source extension setting.
_DATABRICKS_CLUSTER = "spark.databricks.clusterUsageTags.clusterId"


def delta_spark_conf() -> dict[str, str]:
    """Spark settings that load delta-spark: the JARs of the installed delta-spark (Scala 2.12, Spark 3.5)."""
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.jars.packages": f"io.delta:delta-spark_2.12:{version('delta-spark')}",
    }


def delta_overrides() -> list[str]:
    """The settings as `--set spark.conf.<key>=<value>` arguments; later `--set`s of the user win."""
    return [item for key, value in delta_spark_conf().items() for item in ("--set", f"spark.conf.{key}={value}")]


def has_delta(spark: SparkSession) -> bool:
    """True when the session runs delta-spark's SQL extension (needed for MERGE), or is a Databricks cluster's."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    return DELTA_EXTENSION in extensions or spark.conf.get(_DATABRICKS_CLUSTER, None) is not None
