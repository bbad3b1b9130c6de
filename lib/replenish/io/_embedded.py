"""The embedded Delta engine: Spark writes Parquet, delta-rs commits.

A write goes through four steps, and only the last one is visible to readers:

1. stage: Spark's Parquet writer (on the executors) writes `df` under `<table>/_staging/<write id>/`,
   hive-style partition folders included;
2. describe: a small Spark job reads each staged file's Parquet footer on the executors and returns its
   row count and per-column min / max / null counts (Delta's data-skipping statistics);
3. publish: the driver moves each file into its partition folder of the table (a metadata operation);
4. commit: delta-rs writes ONE commit with every `add` (and, for overwrites, `remove`) action.

A crash before step 4 leaves the table at its previous version; the moved or staged files are not in the
log, so no reader sees them, and `vacuum` deletes them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import pyarrow as pa

from replenish.errors import ConcurrentWriteError, LakeError
from replenish.io.lake import WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

STAGING_DIR = "_staging"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# Delta truncates string statistics; longer values get no min/max rather than a wrong one.
MAX_STRING_STAT_LENGTH = 32
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}

# Fault injection for tests: called with the table URI after the files are in place, just before the commit.
before_commit: Callable[[str], None] | None = None


@dataclass(frozen=True)
class DataFile:
    """A Parquet file written for a commit, with what its `add` action needs."""

    relative_path: str  # as on disk, relative to the table root
    size: int
    modification_time: int  # milliseconds since the epoch
    partition_values: dict[str, str | None]
    num_records: int
    stats: str


def _to_pyarrow_uri(uri: str) -> str:
    if uri.startswith("file:") and not uri.startswith("file://"):
        return "file://" + uri[len("file:") :]
    if "://" not in uri:
        return "file://" + uri
    return uri


def _stat_value(value: Any) -> Any:
    """A footer statistic as Delta's JSON stats want it, or None when it cannot be stated safely."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return None  # timestamp statistics are millisecond-truncated in Delta; skip rather than mislead
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_STAT_LENGTH else None
    return None


def footer_statistics(uri: str) -> tuple[int, str]:
    """Row count and Delta statistics JSON of one Parquet file, from its footer alone."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    filesystem, path = pafs.FileSystem.from_uri(_to_pyarrow_uri(uri))
    with filesystem.open_input_file(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    null_count: dict[str, int] = {}
    for column in range(metadata.num_columns):
        name = metadata.schema.column(column).path
        if "." in name:  # nested fields: no statistics
            continue
        mins, maxs, nulls, complete = [], [], 0, True
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(column).statistics
            if stats is None:
                complete = False
                break
            if stats.has_null_count:
                nulls += stats.null_count
            else:
                complete = False
            if stats.has_min_max:
                mins.append(_stat_value(stats.min))
                maxs.append(_stat_value(stats.max))
            elif metadata.row_group(group).num_rows > (stats.null_count if stats.has_null_count else 0):
                mins.append(None)
        if complete:
            null_count[name] = nulls
        if mins and all(v is not None for v in mins) and all(v is not None for v in maxs):
            minimum[name] = min(mins)
            maximum[name] = max(maxs)
    stats_json = json.dumps(
        {"numRecords": metadata.num_rows, "minValues": minimum, "maxValues": maximum, "nullCount": null_count}
    )
    return metadata.num_rows, stats_json


def _describe_partition(rows: Iterable[tuple[str, str]]) -> Iterable[tuple[str, int, str]]:
    for relative_path, uri in rows:
        num_records, stats = footer_statistics(uri)
        yield relative_path, num_records, stats


def partition_values_from_path(relative_path: str, partition_by: Sequence[str]) -> dict[str, str | None]:
    """Partition values of a hive-style path `k1=v1/k2=v2/part-….parquet`, unescaped as Spark escapes them."""
    values: dict[str, str | None] = {}
    for segment in relative_path.split("/")[:-1]:
        if "=" not in segment:
            continue
        key, raw = segment.split("=", 1)
        key = unquote(key)
        values[key] = None if raw == HIVE_NULL else unquote(raw)
    missing = [c for c in partition_by if c not in values]
    if missing:
        raise LakeError(f"staged file {relative_path} lacks partition folder(s) for {missing}")
    return {c: values[c] for c in partition_by}


class EmbeddedEngine:
    """Delta tables through Spark's Parquet reader and writer, committed with delta-rs."""

    def __init__(self, spark: SparkSession, *, describe_on_executors_above: int = 64) -> None:
        self.spark = spark
        self.describe_on_executors_above = describe_on_executors_above
        conf = spark.conf
        # INT96 timestamps are legacy; Delta readers expect INT64 microseconds.
        if conf.get("spark.sql.parquet.outputTimestampType", "INT96") == "INT96":
            conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")

    # -- metadata -------------------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(uri)

    def _table(self, uri: str, version: int | None = None, *, without_files: bool = False) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        try:
            return DeltaTable(uri, version=version, without_files=without_files)
        except DeltaError as exc:
            where = f" at version {version}" if version is not None else ""
            raise LakeError(f"cannot open Delta table {uri}{where}: {exc}") from exc

    def version(self, uri: str) -> int:
        return int(self._table(uri, without_files=True).version())

    @staticmethod
    def _version_at(table: Any, uri: str, moment: dt.datetime) -> int:
        """The latest version of the open `table` committed at or before `moment`, by its history's timestamps.

        delta-rs's `load_as_version(datetime)` goes by the log files' modification times, which can be a
        millisecond or more after a commit's recorded timestamp: as of that timestamp it found the version
        before (a flaky test).
        """
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
        limit = int(aware.timestamp() * 1000)
        commits = table.history()
        versions = [int(c["version"]) for c in commits if c.get("timestamp") is not None and c["timestamp"] <= limit]
        if not versions:
            raise LakeError(f"cannot read {uri} at timestamp {moment}: it is before the table's first commit")
        return max(versions)

    def history(self, uri: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self._table(uri, without_files=True).history(limit))

    def partition_columns(self, uri: str) -> list[str]:
        return list(self._table(uri, without_files=True).metadata().partition_columns)

    def schema(self, uri: str) -> Any:
        from pyspark.sql.types import StructType

        return StructType.fromJson(json.loads(self._table(uri, without_files=True).schema().to_json()))

    def describe(self, uri: str) -> dict[str, Any]:
        table = self._table(uri)
        actions = pa.table(table.get_add_actions(flatten=True))
        columns = set(actions.column_names)
        return {
            "version": int(table.version()),
            "rows": sum(v or 0 for v in actions.column("num_records").to_pylist())
            if "num_records" in columns
            else None,
            "files": actions.num_rows,
            "bytes": sum(actions.column("size_bytes").to_pylist()) if actions.num_rows else 0,
        }

    # -- read -----------------------------------------------------------------------------------------------
    def read(self, uri: str, *, version: int | None = None, timestamp: dt.datetime | None = None) -> DataFrame:
        from pyspark.sql.types import StructType

        table = self._table(uri, version)
        if timestamp is not None:
            table.load_as_version(self._version_at(table, uri, timestamp))
        protocol = table.protocol()
        unsupported = UNSUPPORTED_READER_FEATURES & set(protocol.reader_features or [])
        if unsupported or (protocol.min_reader_version == 2):
            raise LakeError(
                f"{uri} uses Delta reader features {sorted(unsupported) or ['columnMapping']} that the embedded "
                "engine cannot read; read it with delta-spark"
            )
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        files = table.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        reader = self.spark.read.schema(schema)
        if table.metadata().partition_columns:
            reader = reader.option("basePath", uri)
        return reader.parquet(*files).select(*schema.fieldNames())

    # -- write ----------------------------------------------------------------------------------------------
    def _filesystem(self, uri: str) -> tuple[Any, Any]:
        return hadoop_filesystem(self.spark, uri)

    def _stage(self, df: DataFrame, uri: str, partition_by: Sequence[str]) -> tuple[str, list[DataFile]]:
        """Write `df` under a staging folder and describe every file; nothing is visible yet."""
        staging = f"{uri}/{STAGING_DIR}/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        writer = df.write.mode("error").option("compression", "snappy")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(staging)

        jvm, filesystem = self._filesystem(staging)
        staging_path = jvm.org.apache.hadoop.fs.Path(staging)
        root = filesystem.makeQualified(staging_path).toString().rstrip("/") + "/"
        listing = filesystem.listFiles(staging_path, True)
        found: list[tuple[str, str, int, int]] = []
        while listing.hasNext():
            status = listing.next()
            full = status.getPath().toString()
            name = status.getPath().getName()
            if not name.endswith(".parquet") or name.startswith((".", "_")):
                continue
            found.append((full[len(root) :], full, int(status.getLen()), int(status.getModificationTime())))
        if not found:
            return staging, []
        by_path = {relative: (full, size, mtime) for relative, full, size, mtime in found}
        described = self._describe([(relative, full) for relative, full, _, _ in found])
        files = []
        for relative, num_records, stats in described:
            _, size, mtime = by_path[relative]
            files.append(
                DataFile(
                    relative_path=relative,
                    size=size,
                    modification_time=mtime,
                    partition_values=partition_values_from_path(relative, partition_by),
                    num_records=num_records,
                    stats=stats,
                )
            )
        return staging, files

    def _describe(self, files: list[tuple[str, str]]) -> list[tuple[str, int, str]]:
        """Footer statistics of staged files: on the executors for many files, on the driver for a few.

        Only footers are read, never rows; a Spark job costs seconds, which a few footers do not justify.
        """
        if len(files) > self.describe_on_executors_above:
            slices = max(1, min(len(files), self.spark.sparkContext.defaultParallelism * 2))
            return self.spark.sparkContext.parallelize(files, slices).mapPartitions(_describe_partition).collect()
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda item: next(iter(_describe_partition([item]))), files))

    def _publish(self, staging: str, uri: str, files: list[DataFile]) -> list[DataFile]:
        """Move staged files into their partition folders; empty files are deleted, not published."""
        jvm, filesystem = self._filesystem(uri)
        published = []
        for data_file in files:
            source = jvm.org.apache.hadoop.fs.Path(f"{staging}/{data_file.relative_path}")
            if data_file.num_records == 0:
                filesystem.delete(source, False)
                continue
            target = jvm.org.apache.hadoop.fs.Path(f"{uri}/{data_file.relative_path}")
            filesystem.mkdirs(target.getParent())
            if not filesystem.rename(source, target):
                raise LakeError(f"could not move {source} to {target}")
            published.append(data_file)
        return published

    def _discard(self, staging: str, uri: str, published: Sequence[DataFile]) -> None:
        try:
            jvm, filesystem = self._filesystem(uri)
            for data_file in published:
                filesystem.delete(jvm.org.apache.hadoop.fs.Path(f"{uri}/{data_file.relative_path}"), False)
            filesystem.delete(jvm.org.apache.hadoop.fs.Path(staging), True)
        except Exception:  # best effort: vacuum removes whatever is left
            log.warning("could not clean up after a failed write to %s", uri, exc_info=True)

    @staticmethod
    def _add_actions(files: Sequence[DataFile], *, data_change: bool = True) -> list[Any]:
        from deltalake.transaction import AddAction

        return [
            AddAction(
                path=quote(f.relative_path, safe="/="),
                size=f.size,
                partition_values=f.partition_values,
                modification_time=f.modification_time,
                data_change=data_change,
                stats=f.stats,
            )
            for f in files
        ]

    @staticmethod
    def _current_files(table: Any) -> list[dict[str, Any]]:
        actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
        return actions

    @staticmethod
    def _remove_actions(
        actions: Iterable[dict[str, Any]], partition_by: Sequence[str], *, data_change: bool = True
    ) -> list[Any]:
        from deltalake.transaction import RemoveAction

        now = int(time.time() * 1000)
        return [
            RemoveAction(
                path=action["path"],
                data_change=data_change,
                deletion_timestamp=now,
                size=action["size_bytes"],
                partition_values={c: _partition_string(action.get(f"partition.{c}")) for c in partition_by},
            )
            for action in actions
        ]

    def write(
        self,
        df: DataFrame,
        uri: str,
        *,
        mode: str,
        partition_by: Sequence[str],
        commit_info: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Write `df` in one commit; the caller (`Lake`) has checked its schema against the table's."""
        from deltalake import Schema as DeltaSchema
        from deltalake.transaction import create_table_with_add_actions

        exists = self.exists(uri)
        table = self._table(uri) if exists else None
        staging, files = self._stage(df, uri, partition_by)
        published: list[DataFile] = []
        try:
            published = self._publish(staging, uri, files)
            schema = DeltaSchema.from_json(df.schema.json())
            adds = self._add_actions(published)
            commit = _commit_properties(commit_info, mode=mode)
            if before_commit is not None:
                before_commit(uri)
            removed = 0
            if table is None:
                create_table_with_add_actions(
                    uri, schema, adds, mode="error", partition_by=list(partition_by) or None, commit_properties=commit
                )
            elif mode == "append":
                if not adds:
                    return WriteResult(int(table.version()), 0)
                table.create_write_transaction(adds, "append", schema, list(partition_by), commit_properties=commit)
            elif mode == "overwrite":
                removed = pa.table(table.get_add_actions(flatten=False)).num_rows
                table.create_write_transaction(adds, "overwrite", schema, list(partition_by), commit_properties=commit)
            else:  # overwrite_partitions: replace exactly the partitions the new data has rows for
                replaced = {tuple(f.partition_values[c] for c in partition_by) for f in published}
                if not replaced:
                    return WriteResult(int(table.version()), 0)
                old = [
                    action
                    for action in self._current_files(table)
                    if tuple(_partition_string(action.get(f"partition.{c}")) for c in partition_by) in replaced
                ]
                removes = self._remove_actions(old, partition_by)
                removed = len(removes)
                table.create_write_transaction(
                    [*adds, *removes], "append", schema, list(partition_by), commit_properties=commit
                )
        except BaseException as exc:
            self._discard(staging, uri, published)
            _raise_conflict(exc, uri, mode)
            raise
        self._discard(staging, uri, [])
        return WriteResult(
            version=self.version(uri),
            rows_written=sum(f.num_records for f in published),
            files_added=len(published),
            files_removed=removed,
        )

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
        existing = self.read(uri).select(*keys)
        fresh = df.join(existing, on=list(keys), how="left_anti")
        return self.write(fresh, uri, mode="append", partition_by=self.partition_columns(uri), commit_info=commit_info)

    # -- maintenance ----------------------------------------------------------------------------------------
    def compact(
        self,
        uri: str,
        *,
        target_file_bytes: int,
        zorder_by: Sequence[str] = (),
        commit_info: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Bin-pack the small files of each partition into about `target_file_bytes` files, in one commit.

        `zorder_by`: the rewritten rows are sorted by these columns within each file (delta-rs's own
        Z-order runs in the driver process, which a large table cannot afford).
        """
        from pyspark.sql.types import StructType

        table = self._table(uri)
        partition_by = list(table.metadata().partition_columns)
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for action in self._current_files(table):
            key = tuple(_partition_string(action.get(f"partition.{c}")) for c in partition_by)
            groups.setdefault(key, []).append(action)
        chosen = [
            a
            for files in groups.values()
            if len(files) > 1 and sum(f["size_bytes"] for f in files) / len(files) < target_file_bytes / 2
            for a in files
        ]
        if not chosen:
            return WriteResult(int(table.version()), 0)
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        reader = self.spark.read.schema(schema)
        if partition_by:
            reader = reader.option("basePath", uri)
        paths = [f"{uri}/{unquote(a['path'])}" for a in chosen]
        data = reader.parquet(*paths).select(*schema.fieldNames())
        total = sum(a["size_bytes"] for a in chosen)
        if partition_by:
            data = data.repartition(*partition_by)
        else:
            data = data.coalesce(max(1, math.ceil(total / target_file_bytes)))
        if zorder_by:
            data = data.sortWithinPartitions(*zorder_by)
        staging, files = self._stage(data, uri, partition_by)
        published: list[DataFile] = []
        try:
            published = self._publish(staging, uri, files)
            from deltalake import Schema as DeltaSchema

            actions = [
                *self._add_actions(published, data_change=False),
                *self._remove_actions(chosen, partition_by, data_change=False),
            ]
            table.create_write_transaction(
                actions,
                "append",
                DeltaSchema.from_json(schema.json()),
                partition_by,
                commit_properties=_commit_properties(commit_info, mode="compact"),
            )
        except BaseException:
            self._discard(staging, uri, published)
            raise
        self._discard(staging, uri, [])
        return WriteResult(self.version(uri), sum(f.num_records for f in published), len(published), len(chosen))

    def vacuum(self, uri: str, *, retention_hours: int, dry_run: bool) -> list[str]:
        """Delete unreferenced files older than the retention, staged leftovers of crashed writes included."""
        table = self._table(uri)
        deleted = list(
            table.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False, full=True)
        )
        return deleted + remove_stale_staging(self.spark, uri, retention_hours=retention_hours, dry_run=dry_run)


def hadoop_filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """Spark's JVM and the Hadoop filesystem of `uri` (the raw one: no `.crc` side files)."""
    jvm: Any = spark._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(uri)
    filesystem = path.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    checksummed = jvm.java.lang.Class.forName("org.apache.hadoop.fs.ChecksumFileSystem")
    if checksummed.isInstance(filesystem):
        filesystem = filesystem.getRawFileSystem()
    return jvm, filesystem


def remove_stale_staging(spark: SparkSession, uri: str, *, retention_hours: int, dry_run: bool) -> list[str]:
    """Delete the staging folders of embedded writes that crashed, older than the retention."""
    jvm, filesystem = hadoop_filesystem(spark, uri)
    staging = jvm.org.apache.hadoop.fs.Path(f"{uri}/{STAGING_DIR}")
    deleted: list[str] = []
    if filesystem.exists(staging):
        cutoff = (time.time() - retention_hours * 3600) * 1000
        for status in filesystem.listStatus(staging):
            if status.getModificationTime() <= cutoff:
                deleted.append(status.getPath().toString())
                if not dry_run:
                    filesystem.delete(status.getPath(), True)
    return deleted


def _raise_conflict(exc: BaseException, uri: str, operation: str) -> None:
    """Name a delta-rs commit conflict as `ConcurrentWriteError`; other errors pass through."""
    from deltalake.exceptions import CommitFailedError

    if isinstance(exc, CommitFailedError):
        raise ConcurrentWriteError(
            f"{uri}: another writer committed a conflicting change while this {operation} ran "
            f"(CommitFailedError: {exc}); this {operation} committed nothing"
        ) from exc


def _commit_properties(commit_info: Mapping[str, str] | None, *, mode: str) -> Any:
    """The run's commit info as Delta's `userMetadata` (what delta-spark writes too) in commitInfo."""
    from deltalake.transaction import CommitProperties

    metadata = {"engine": "embedded", **dict(commit_info or {}), "mode": mode}
    return CommitProperties(custom_metadata={"userMetadata": json.dumps(metadata, sort_keys=True)})


def _partition_string(value: Any) -> str | None:
    """Partition values as the Delta log stores them (strings; None for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
