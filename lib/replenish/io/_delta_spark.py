"""The delta-spark engine: every operation through delta-spark's public API (`DeltaTable`, the
`delta` data source and Delta SQL), the commit included.

Each commit carries the run's `commit_info` as Delta's `userMetadata` (a JSON text) with a write id, by
which the engine finds its own commit in the history even when other writers commit around it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from replenish.errors import ConcurrentWriteError, LakeError
from replenish.io.lake import WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING_PARALLELISM_CONF = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
# How far back in the history an engine looks for its own commit (others may commit meanwhile).
OWN_COMMIT_SEARCH_DEPTH = 50


def conflict_errors() -> tuple[type[BaseException], ...]:
    """The Python classes of Delta's optimistic-concurrency conflicts (delta-spark converts them)."""
    from delta import exceptions as delta_errors

    return (
        delta_errors.DeltaConcurrentModificationException,
        delta_errors.ConcurrentWriteException,
        delta_errors.MetadataChangedException,
        delta_errors.ProtocolChangedException,
        delta_errors.ConcurrentAppendException,
        delta_errors.ConcurrentDeleteReadException,
        delta_errors.ConcurrentDeleteDeleteException,
        delta_errors.ConcurrentTransactionException,
    )


@contextmanager
def conflicts_named(uri: str, operation: str) -> Iterator[None]:
    """Turn Delta's conflict exceptions into a `ConcurrentWriteError` that names the table."""
    try:
        yield
    except conflict_errors() as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConcurrentWriteError(
            f"{uri}: another writer committed a conflicting change while this {operation} ran "
            f"({type(exc).__name__}: {reason}); this {operation} committed nothing"
        ) from exc


def _quoted(uri: str) -> str:
    return "delta.`" + uri.replace("`", "``") + "`"


class DeltaSparkEngine:
    """Delta tables through delta-spark's own reader, writer, MERGE, OPTIMIZE and VACUUM."""

    def __init__(self, spark: SparkSession) -> None:
        from delta.tables import DeltaTable

        self.spark = spark
        self._delta_table = DeltaTable

    # -- metadata -------------------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        return bool(self._delta_table.isDeltaTable(self.spark, uri))

    def version(self, uri: str) -> int:
        return int(self.history(uri, limit=1)[0]["version"])

    def history(self, uri: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        table = self._delta_table.forPath(self.spark, uri)
        frame = table.history(limit) if limit else table.history()
        return [row.asDict(recursive=True) for row in frame.collect()]  # commit metadata, not table data

    def _detail(self, uri: str) -> Any:
        return self._delta_table.forPath(self.spark, uri).detail().first()

    def partition_columns(self, uri: str) -> list[str]:
        return list(self._detail(uri)["partitionColumns"])

    def schema(self, uri: str) -> StructType:
        return self.spark.read.format("delta").load(uri).schema

    def describe(self, uri: str) -> dict[str, Any]:
        detail = self._detail(uri)
        return {
            "version": self.version(uri),
            "rows": self.read(uri).count(),  # answered from the log's statistics, no data scanned
            "files": int(detail["numFiles"]),
            "bytes": int(detail["sizeInBytes"]),
        }

    # -- read -----------------------------------------------------------------------------------------------
    def read(self, uri: str, *, version: int | None = None, timestamp: dt.datetime | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            utc = timestamp.astimezone(dt.UTC).replace(tzinfo=None)
            reader = reader.option("timestampAsOf", utc.isoformat(sep=" "))
        try:
            frame = reader.load(uri)
            if version is not None or timestamp is not None:
                frame.schema  # noqa: B018  resolves the snapshot now, so a bad version fails here
        except Exception as exc:
            if version is None and timestamp is None:
                raise
            where = f"version {version}" if version is not None else f"timestamp {timestamp}"
            raise LakeError(f"cannot read {uri} at {where}: {str(exc).splitlines()[0]}") from exc
        return frame

    # -- write ----------------------------------------------------------------------------------------------
    @staticmethod
    def _metadata(commit_info: Mapping[str, str]) -> tuple[str, str]:
        write_id = uuid.uuid4().hex
        return write_id, json.dumps({**commit_info, "write_id": write_id}, sort_keys=True)

    def _own_commit(self, uri: str, write_id: str) -> dict[str, Any] | None:
        for commit in self.history(uri, limit=OWN_COMMIT_SEARCH_DEPTH):
            try:
                if json.loads(commit.get("userMetadata") or "{}").get("write_id") == write_id:
                    return commit
            except ValueError:
                continue
        return None

    def _result(self, uri: str, write_id: str, *, rows: str, added: str, removed: str) -> WriteResult:
        commit = self._own_commit(uri, write_id)
        if commit is None:  # nothing was committed (e.g. a MERGE with nothing to insert)
            return WriteResult(version=self.version(uri), rows_written=0)
        metrics = commit.get("operationMetrics") or {}
        return WriteResult(
            version=int(commit["version"]),
            rows_written=int(metrics.get(rows, 0)),
            files_added=int(metrics.get(added, 0)),
            files_removed=int(metrics.get(removed, 0)),
        )

    def write(
        self,
        df: DataFrame,
        uri: str,
        *,
        mode: str,
        partition_by: Sequence[str],
        commit_info: Mapping[str, str] | None = None,
    ) -> WriteResult:
        write_id, metadata = self._metadata(commit_info or {})
        writer = df.write.format("delta").option("userMetadata", metadata)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if mode == "overwrite_partitions":
            writer = writer.mode("overwrite").option("partitionOverwriteMode", "dynamic")
        elif mode == "overwrite":
            # static: the session's `partitionOverwriteMode=dynamic` would keep partitions `df` lacks
            writer = (
                writer.mode("overwrite").option("partitionOverwriteMode", "static").option("overwriteSchema", "true")
            )
        else:
            writer = writer.mode("append")
        with conflicts_named(uri, mode):
            writer.save(uri)
        return self._result(uri, write_id, rows="numOutputRows", added="numFiles", removed="numRemovedFiles")

    def insert_new(
        self,
        df: DataFrame,
        uri: str,
        *,
        keys: Sequence[str],
        partition_by: Sequence[str],
        commit_info: Mapping[str, str] | None = None,
    ) -> WriteResult:
        if not self.exists(uri):
            return self.write(df, uri, mode="append", partition_by=partition_by, commit_info=commit_info)
        from replenish.shared import session_conf

        write_id, metadata = self._metadata(commit_info or {})
        condition = " AND ".join(f"target.`{k}` = source.`{k}`" for k in keys)
        with session_conf(self.spark, {USER_METADATA_CONF: metadata}), conflicts_named(uri, "insert_new"):
            (
                self._delta_table.forPath(self.spark, uri)
                .alias("target")
                .merge(df.alias("source"), condition)
                .whenNotMatchedInsertAll()
                .execute()
            )
        return self._result(
            uri, write_id, rows="numTargetRowsInserted", added="numTargetFilesAdded", removed="numTargetFilesRemoved"
        )

    # -- maintenance ----------------------------------------------------------------------------------------
    def compact(
        self,
        uri: str,
        *,
        target_file_bytes: int,
        zorder_by: Sequence[str] = (),
        commit_info: Mapping[str, str] | None = None,
    ) -> WriteResult:
        from replenish.shared import session_conf

        write_id, metadata = self._metadata({**(commit_info or {}), "operation": "compact"})
        settings = {"spark.databricks.delta.optimize.maxFileSize": str(target_file_bytes), USER_METADATA_CONF: metadata}
        with session_conf(self.spark, settings), conflicts_named(uri, "compact"):
            optimize = self._delta_table.forPath(self.spark, uri).optimize()
            if zorder_by:
                optimize.executeZOrderBy(*zorder_by)
            else:
                optimize.executeCompaction()
        return self._result(uri, write_id, rows="numAddedRows", added="numAddedFiles", removed="numRemovedFiles")

    def vacuum(self, uri: str, *, retention_hours: int, dry_run: bool) -> list[str]:
        from replenish.io._embedded import remove_stale_staging
        from replenish.shared import session_conf

        settings = {RETENTION_CHECK_CONF: "false"}
        if self.spark.conf.get(LISTING_PARALLELISM_CONF, "10000") == "10000":
            # VACUUM lists the table in this many tasks (10,000 by default): minutes on a small machine
            settings[LISTING_PARALLELISM_CONF] = str(max(8, 4 * self.spark.sparkContext.defaultParallelism))
        with session_conf(self.spark, settings):
            listed = self.spark.sql(f"VACUUM {_quoted(uri)} RETAIN {retention_hours} HOURS DRY RUN").collect()
            if not dry_run and listed:
                self._delta_table.forPath(self.spark, uri).vacuum(float(retention_hours))
        deleted = [str(row[0]) for row in listed]
        return deleted + remove_stale_staging(self.spark, uri, retention_hours=retention_hours, dry_run=dry_run)
