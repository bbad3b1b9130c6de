"""The delta-spark engine: used when the Delta Lake JARs are on the classpath (clusters, Databricks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from replenish.io.lake import WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class DeltaSparkEngine:
    """Delta tables through delta-spark's own reader, writer, MERGE, OPTIMIZE and VACUUM."""

    def __init__(self, spark: SparkSession) -> None:
        from delta.tables import DeltaTable

        self.spark = spark
        self._delta_table = DeltaTable

    def exists(self, uri: str) -> bool:
        return bool(self._delta_table.isDeltaTable(self.spark, uri))

    def version(self, uri: str) -> int:
        return int(self.history(uri, limit=1)[0]["version"])

    def history(self, uri: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        table = self._delta_table.forPath(self.spark, uri)
        frame = table.history(limit) if limit else table.history()
        return [row.asDict(recursive=True) for row in frame.collect()]  # commit metadata, not table data

    def describe(self, uri: str) -> dict[str, Any]:
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.`{uri}`").collect()[0]
        return {
            "version": self.version(uri),
            "rows": self.read(uri).count(),
            "files": int(detail["numFiles"]),
            "bytes": int(detail["sizeInBytes"]),
        }

    def read(self, uri: str, *, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(uri)

    def _last_commit(self, uri: str, rows_metric: str) -> WriteResult:
        last = self.history(uri, limit=1)[0]
        metrics = last.get("operationMetrics") or {}
        return WriteResult(
            version=int(last["version"]),
            rows_written=int(metrics.get(rows_metric, 0)),
            files_added=int(metrics.get("numFiles", metrics.get("numAddedFiles", 0))),
            files_removed=int(metrics.get("numRemovedFiles", 0)),
        )

    def write(self, df: DataFrame, uri: str, *, mode: str, partition_by: Sequence[str]) -> WriteResult:
        writer = df.write.format("delta")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if mode == "overwrite_partitions":
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        elif mode == "overwrite":
            writer = writer.mode("overwrite").option("overwriteSchema", "true")
        else:
            writer = writer.mode("append")
        writer.save(uri)
        return self._last_commit(uri, "numOutputRows")

    def insert_new(self, df: DataFrame, uri: str, *, keys: Sequence[str], partition_by: Sequence[str]) -> WriteResult:
        if not self.exists(uri):
            return self.write(df, uri, mode="append", partition_by=partition_by)
        condition = " AND ".join(f"target.`{k}` = source.`{k}`" for k in keys)
        (
            self._delta_table.forPath(self.spark, uri)
            .alias("target")
            .merge(df.alias("source"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
        return self._last_commit(uri, "numTargetRowsInserted")

    def compact(self, uri: str, *, target_file_bytes: int) -> WriteResult:
        self.spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(target_file_bytes))
        self._delta_table.forPath(self.spark, uri).optimize().executeCompaction()
        return self._last_commit(uri, "numAddedRows")

    def vacuum(self, uri: str, *, retention_hours: int, dry_run: bool) -> list[str]:
        if dry_run:
            rows = self.spark.sql(f"VACUUM delta.`{uri}` RETAIN {retention_hours} HOURS DRY RUN").collect()
            return [row[0] for row in rows]
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        self._delta_table.forPath(self.spark, uri).vacuum(retention_hours / 1.0)
        return []
