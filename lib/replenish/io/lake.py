"""The lake: read, write, history, compact and vacuum Delta tables by their catalog name.

Two engines sit behind this one API (docs/lake.md):

* **delta-spark** (the default): Spark does everything through delta-spark's public API, commit
  included: `replaceWhere`-style dynamic partition overwrites, `MERGE` for idempotent inserts,
  `OPTIMIZE … ZORDER BY`, `VACUUM`, time travel. Sessions from `replenish_jobs.harness.build_spark` get its
  JARs; Databricks has it built in.
* **embedded**, the fallback where delta-spark's JARs cannot be had (air-gapped machines), built on
  delta-rs: executors write the Parquet files with Spark's own writer into a staging folder, per-file
  statistics are read from the Parquet footers on the executors, and the driver moves the files into
  place and commits all of them in ONE Delta transaction.

On both, a job killed before the commit leaves the table at its previous version; its files are
invisible to readers and `vacuum` removes them. Both write the same Delta protocol (reader 1, writer 2),
so either engine, delta-rs and DuckDB read what the other wrote.

Example:
    ```python
    lake = Lake(spark, "./lakehouse")
    lake.write(forecasts, "gold.forecast", mode="overwrite_partitions")
    lake.read("gold.forecast", version=3).where("sku = 'SKU-0001'")
    ```
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from replenish.errors import ConcurrentWriteError, LakeError
from replenish.io.catalog import TABLES, TableSpec, table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite", "overwrite_partitions"]
EngineName = Literal["auto", "delta-spark", "embedded"]
WRITE_MODES: tuple[str, ...] = ("append", "overwrite", "overwrite_partitions")
# insert_new is idempotent, so a conflict with a concurrent commit is retried this many times in all.
INSERT_NEW_ATTEMPTS = 3


@dataclass(frozen=True)
class WriteResult:
    """What a write committed.

    Attributes:
        version: the table version the commit created (the current version when nothing was committed).
        rows_written: rows in the added files.
        files_added: data files the commit added.
        files_removed: data files the commit removed (overwrites).
    """

    version: int
    rows_written: int
    files_added: int = 0
    files_removed: int = 0


def table_uri(root: str, spec: TableSpec) -> str:
    """The URI of a table: `<root>/<layer>/<table>`; a local root becomes an absolute path."""
    if "://" not in root and not root.startswith("dbfs:"):
        root = os.path.abspath(root)
    return f"{root.rstrip('/')}/{spec.relative_path}"


def delta_spark_available(spark: SparkSession) -> bool:
    """True when `spark` can run delta-spark: its classes load and its SQL extension is on."""
    from replenish.io.engines import session_has_delta

    return session_has_delta(spark)


def align_to_schema(df: DataFrame, schema: StructType, uri: str) -> DataFrame:
    """Order `df`'s columns like the table's and refuse a schema that differs (appends must not change it).

    Raises:
        LakeError: naming the missing, unexpected and retyped columns.
    """
    expected = {f.name: f.dataType for f in schema.fields}
    actual = {f.name: f.dataType for f in df.schema.fields}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(n for n in set(expected) & set(actual) if expected[n] != actual[n])
    if missing or extra or changed:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {extra}" if extra else "",
                ", ".join(f"{n}: table {expected[n].simpleString()}, data {actual[n].simpleString()}" for n in changed),
            )
            if part
        )
        raise LakeError(f"data does not match the schema of {uri}: {detail}; overwrite the table to change it")
    return df.select(*schema.fieldNames())


class Lake:
    """Delta tables under one root folder, addressed by catalog name.

    Args:
        spark: the session that reads and writes.
        root: the lake root, a local folder or a URI (`s3a://bucket/lake`, `dbfs:/lake`).
        engine: `auto` (delta-spark when the session has it, else embedded), or force one.
        commit_info: recorded in every commit this lake makes (with the engine's name), e.g. the run id:
            `history()` shows which run and engine wrote each version.
        register_catalog: register the catalog's tables in Spark's catalog (`<layer>.<table>`) as they
            are written, so Spark SQL can name them (delta-spark only; `replenish.io.metastore`).
    """

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        *,
        engine: EngineName = "auto",
        commit_info: Mapping[str, str] | None = None,
        register_catalog: bool = False,
    ) -> None:
        if engine not in ("auto", "delta-spark", "embedded"):
            raise ValueError(f"engine must be auto, delta-spark or embedded, got {engine!r}")
        self.spark = spark
        self.root = root
        if engine == "auto":
            engine = "delta-spark" if delta_spark_available(spark) else "embedded"
        elif engine == "delta-spark" and not delta_spark_available(spark):
            raise LakeError(
                "lake.engine is delta-spark but this Spark session has no Delta support: build it with "
                "replenish_jobs.harness.build_spark, or spark-submit with --packages io.delta:delta-spark_2.12:3.2.1"
            )
        self.engine_name: str = engine
        self.commit_info: dict[str, str] = {"engine": engine, **dict(commit_info or {})}
        self.register_catalog = register_catalog and engine == "delta-spark"
        self._registered: set[str] = set()
        if engine == "delta-spark":
            from replenish.io._delta_spark import DeltaSparkEngine

            self._engine: Any = DeltaSparkEngine(spark)
        else:
            from replenish.io._embedded import EmbeddedEngine

            self._engine = EmbeddedEngine(spark)
        log.debug("lake at %s, engine %s", root, engine)

    def __repr__(self) -> str:
        return f"Lake(root={self.root!r}, engine={self.engine_name!r})"

    def path(self, name: str | TableSpec) -> str:
        """The URI of table `name`."""
        return table_uri(self.root, table(name))

    def exists(self, name: str | TableSpec) -> bool:
        """True when `name` is a Delta table (has a commit)."""
        return self._engine.exists(self.path(name))

    def version(self, name: str | TableSpec) -> int | None:
        """The current version of `name`, or None when the table does not exist yet."""
        uri = self.path(name)
        return self._engine.version(uri) if self._engine.exists(uri) else None

    def versions(self, names: Iterable[str | TableSpec]) -> dict[str, int | None]:
        """Current versions of several tables: the lineage a run records about its inputs."""
        return {table(name).name: self.version(name) for name in names}

    def read(
        self, name: str | TableSpec, *, version: int | None = None, timestamp: dt.datetime | str | None = None
    ) -> DataFrame:
        """Read table `name`, at its current version, at `version`, or as of `timestamp` (time travel).

        Args:
            version: a table version (`history()` lists them).
            timestamp: the version current at this moment (UTC when naive; ISO text accepted).

        Raises:
            LakeError: the table does not exist, or not at that version or time.
        """
        spec = table(name)
        uri = self.path(spec)
        if not self._engine.exists(uri):
            raise LakeError(f"table {spec.name} does not exist at {uri}; run the job that produces it first")
        if version is not None and timestamp is not None:
            raise ValueError("pass version or timestamp, not both")
        if version is not None and version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        if timestamp is not None:
            moment = dt.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return self._engine.read(uri, timestamp=moment)
        return self._engine.read(uri, version=version)

    def empty(self, name: str | TableSpec) -> DataFrame:
        """An empty frame with the catalog's columns of `name`: the stand-in for a table not written yet.

        Raises:
            LakeError: the spec declares no columns (a TableSpec built outside the catalog).
        """
        spec = table(name)
        if not spec.columns:
            raise LakeError(f"table {spec.name} declares no columns, so it has no empty form")
        return self.spark.createDataFrame([], spec.schema)

    def read_or_empty(self, name: str | TableSpec) -> DataFrame:
        """Table `name` at its current version, or `empty(name)` when it does not exist yet.

        For optional inputs, whose absence the caller handles like a table without rows.
        """
        return self.read(name) if self.exists(name) else self.empty(name)

    def write(
        self,
        df: DataFrame,
        name: str | TableSpec,
        *,
        mode: WriteMode = "append",
        partition_by: Sequence[str] | None = None,
    ) -> int:
        """Write `df` to table `name` in one atomic commit and return the new version.

        Args:
            df: the rows to write; its schema becomes the table's on create or overwrite.
            name: catalog name or TableSpec.
            mode: `append`; `overwrite` (replace everything); `overwrite_partitions` (replace only the
                partitions that `df` has rows for, e.g. one `run_date` or one `freq`).
            partition_by: partition columns; defaults to the catalog's.
        """
        return self.write_with_result(df, name, mode=mode, partition_by=partition_by).version

    def write_with_result(
        self,
        df: DataFrame,
        name: str | TableSpec,
        *,
        mode: WriteMode = "append",
        partition_by: Sequence[str] | None = None,
    ) -> WriteResult:
        """Like `write`, returning what the commit added and removed."""
        spec = table(name)
        if mode not in WRITE_MODES:
            raise ValueError(f"mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
        columns = list(partition_by if partition_by is not None else spec.partition_by)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise LakeError(f"{spec.name}: partition column(s) {missing} not in the data ({df.columns})")
        if mode == "overwrite_partitions" and not columns:
            raise LakeError(f"{spec.name} is not partitioned; use mode='overwrite'")
        uri = self.path(spec)
        if mode != "overwrite" and self._engine.exists(uri):
            table_partitions = self._engine.partition_columns(uri)
            if table_partitions != columns:
                raise LakeError(f"{uri} is partitioned by {table_partitions}, the write by {columns}")
            df = align_to_schema(df, self._engine.schema(uri), uri)
        result = self._engine.write(
            df, uri, mode=mode, partition_by=columns, commit_info={**self.commit_info, "mode": mode}
        )
        log.info("%s: %s committed version %d (%d rows)", spec.name, mode, result.version, result.rows_written)
        self._register(spec)
        return result

    def insert_new(self, df: DataFrame, name: str | TableSpec, *, keys: Sequence[str] | None = None) -> WriteResult:
        """Append only the rows of `df` whose keys are not in the table yet (a merge that only inserts).

        This makes re-ingesting the same file a no-op. `df` must not repeat a key itself; ingest
        quarantines in-file duplicates first. On delta-spark this is a `MERGE … WHEN NOT MATCHED INSERT`,
        which conflicts with (rather than duplicates) a concurrent insert of the same keys.
        """
        spec = table(name)
        key_columns = list(keys if keys is not None else spec.keys)
        if not key_columns:
            raise LakeError(f"{spec.name} declares no keys; pass keys=")
        missing = [c for c in key_columns if c not in df.columns]
        if missing:
            raise LakeError(f"{spec.name}: key column(s) {missing} not in the data ({df.columns})")
        uri = self.path(spec)
        for attempt in range(1, INSERT_NEW_ATTEMPTS + 1):
            try:
                if self._engine.exists(uri):
                    df = align_to_schema(df, self._engine.schema(uri), uri)
                result = self._engine.insert_new(
                    df,
                    uri,
                    keys=key_columns,
                    partition_by=list(spec.partition_by),
                    commit_info={**self.commit_info, "mode": "insert_new"},
                )
                break
            except ConcurrentWriteError:
                # Safe to retry: the merge on the keys skips whatever the other writer inserted meanwhile.
                if attempt == INSERT_NEW_ATTEMPTS:
                    raise
                log.warning("%s: insert_new conflicted with a concurrent commit; retry %d", spec.name, attempt)
        self._register(spec)
        return result

    def register_in_catalog(self, names: Iterable[str | TableSpec] | None = None) -> list[str]:
        """Register the existing tables (every catalog table by default) in Spark's catalog as
        `<layer>.<table>`; returns those registered or re-pointed now (`replenish.io.metastore`)."""
        from replenish.io.metastore import register_tables

        changed = register_tables(self, names)
        self._registered.update(table(n).name for n in (names if names is not None else TABLES) if self.exists(n))
        return changed

    def _register(self, spec: TableSpec) -> None:
        if self.register_catalog and spec.name in TABLES and spec.name not in self._registered:
            from replenish.io.metastore import register_table

            register_table(self.spark, spec, self.path(spec))
            self._registered.add(spec.name)

    def describe(self, name: str | TableSpec) -> dict[str, Any]:
        """Name, path, version, rows, files and bytes of a table, from its log."""
        spec = table(name)
        uri = self.path(spec)
        if not self._engine.exists(uri):
            return {"table": spec.name, "path": uri, "version": None, "rows": 0, "files": 0, "bytes": 0}
        return {"table": spec.name, "path": uri, **self._engine.describe(uri)}

    def history(self, name: str | TableSpec, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first: version, timestamp (UTC datetime), operation,
        operationParameters, operationMetrics and userMetadata (the run's commit_info, a JSON text)."""
        return [_normalise_commit(c) for c in self._engine.history(self.path(name), limit=limit)]

    def compact(
        self,
        name: str | TableSpec,
        *,
        target_file_bytes: int = 128 * 1024 * 1024,
        zorder_by: Sequence[str] | None = None,
    ) -> WriteResult:
        """Rewrite small files into larger ones per partition, without changing the data.

        Args:
            zorder_by: columns to cluster the rewritten files by, so that filters on them skip files;
                defaults to the catalog's `ZORDER_BY` entry of the table (`sku` for the large gold tables).
                delta-spark Z-orders (`OPTIMIZE … ZORDER BY`); the embedded engine sorts each partition.
        """
        from replenish.io.catalog import ZORDER_BY

        spec = table(name)
        columns = list(zorder_by if zorder_by is not None else ZORDER_BY.get(spec.name, ()))
        return self._engine.compact(self.path(spec), target_file_bytes=target_file_bytes, zorder_by=columns)

    def vacuum(self, name: str | TableSpec, *, retention_hours: int = 168, dry_run: bool = False) -> list[str]:
        """Delete files no version within `retention_hours` needs, and leftovers of crashed writes."""
        if retention_hours < 0:
            raise ValueError("retention_hours must be >= 0")
        return self._engine.vacuum(self.path(name), retention_hours=retention_hours, dry_run=dry_run)


def _normalise_commit(commit: Mapping[str, Any]) -> dict[str, Any]:
    """One commit as both engines report it: delta-spark's names, a UTC datetime timestamp."""
    out = dict(commit)
    stamp = out.get("timestamp")
    if isinstance(stamp, (int, float)):
        out["timestamp"] = dt.datetime.fromtimestamp(stamp / 1000, tz=dt.UTC)
    elif isinstance(stamp, dt.datetime) and stamp.tzinfo is None:
        out["timestamp"] = stamp.astimezone(dt.UTC)  # PySpark gives naive local times
    if "userMetadata" not in out:
        custom = {k[len("replenish.") :]: v for k, v in out.items() if k.startswith("replenish.")}
        out["userMetadata"] = json.dumps(custom, sort_keys=True) if custom else None
    return out
