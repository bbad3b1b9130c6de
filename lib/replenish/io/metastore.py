"""The lake's tables in Spark's catalog, so that `spark.sql("SELECT … FROM gold.replenishment_plan")` works.

Each table is registered as an external Delta table: a schema per layer (`bronze`, `silver`, `gold`,
`quarantine`) and `CREATE TABLE <layer>.<table> USING DELTA LOCATION '<path>'`. The Delta log stays the
one source of truth (schema, files, versions); the catalog only maps a name to a path, so registering is
cheap and dropping a registration never touches the data.

Which catalog that is depends on the session: the in-memory session catalog locally (tables are
registered again by every session that opens the lake, which is what keeps concurrent jobs independent;
a Hive metastore when the session was built with `spark.sql.catalogImplementation=hive`), the workspace
catalog on Databricks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from replenish.io.catalog import TABLES, TableSpec, table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def _same_location(registered: str, uri: str) -> bool:
    def plain(value: str) -> str:
        for prefix in ("file://", "file:"):
            if value.startswith(prefix):
                value = value[len(prefix) :]
        return value.rstrip("/")

    return plain(registered) == plain(uri)


def registered_location(spark: SparkSession, name: str) -> str | None:
    """Where the catalog's table `name` points, or None when it is not registered."""
    layer, short = name.split(".", 1)
    if not spark.catalog.databaseExists(layer) or not spark.catalog.tableExists(f"{layer}.{short}"):
        return None
    try:  # the session catalog's metadata: no Delta log is read
        jvm: Any = spark._jvm  # type: ignore[attr-defined]
        ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier.apply(short, jvm.scala.Some(layer))
        return str(spark._jsparkSession.sessionState().catalog().getTableMetadata(ident).location().toString())  # type: ignore[attr-defined]
    except Exception:  # another catalog (Unity Catalog): ask Delta
        return str(spark.sql(f"DESCRIBE DETAIL {layer}.`{short}`").first()["location"])  # type: ignore[index]


def _create_schema(spark: SparkSession, layer: str, location: str) -> None:
    """The layer's schema, located at the layer's folder (not a `spark-warehouse` in the working directory)."""
    if spark.catalog.databaseExists(layer):
        return
    try:
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{layer}` LOCATION '{location}'")
    except Exception:  # catalogs that manage schema locations themselves (Unity Catalog)
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{layer}`")


def register_table(spark: SparkSession, spec: TableSpec, uri: str) -> bool:
    """Register `spec` at `uri`; re-point a registration that names another path. True when it changed."""
    layer, short = spec.name.split(".", 1)
    current = registered_location(spark, spec.name)
    if current is not None and _same_location(current, uri):
        return False
    _create_schema(spark, layer, uri.rstrip("/").rsplit("/", 1)[0])
    if current is not None:
        log.info("catalog: %s pointed at %s; re-pointing it to %s", spec.name, current, uri)
        spark.sql(f"DROP TABLE `{layer}`.`{short}`")  # external table: the files stay
    location = uri.replace("'", "\\'")
    spark.sql(f"CREATE TABLE `{layer}`.`{short}` USING DELTA LOCATION '{location}'")
    return True


def register_tables(lake: Any, names: Iterable[str | TableSpec] | None = None) -> list[str]:
    """Register the lake's existing tables (all of the catalog's by default) in the session's catalog.

    Args:
        lake: a `replenish.io.lake.Lake` on the delta-spark engine; on the embedded engine the session has
            no Delta catalog and nothing is registered (use `replenish.io.bi.spark_views` there).

    Returns:
        the names registered or re-pointed now.
    """
    if lake.engine_name != "delta-spark":
        log.info("catalog: the embedded engine registers no tables; use temporary views (spark_views)")
        return []
    changed = []
    for name in names if names is not None else TABLES:
        spec = table(name)
        if lake.exists(spec) and register_table(lake.spark, spec, lake.path(spec)):
            changed.append(spec.name)
    return changed
