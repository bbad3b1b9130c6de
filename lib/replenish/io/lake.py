"""The lake: read, write, history, compact and vacuum Delta tables by their catalog name.

Two engines sit behind this one API and are chosen automatically:

* **delta-spark**, when the `io.delta` classes are on the JVM classpath (clusters with the Delta JARs,
  Databricks). Spark does everything, including the commit.
* **embedded** (the default here), built on delta-rs: executors write the Parquet files with Spark's own
  writer into a staging folder, per-file statistics are read from the Parquet footers on the executors,
  and the driver moves the files into place and commits all of them in ONE Delta transaction. No table
  data passes through the driver; a job killed before the commit leaves the table at its previous version
  (the staged files are invisible to readers and `vacuum` removes them).

Example:
    ```python
    lake = Lake(spark, "./lakehouse")
    lake.write(forecasts, "gold.forecast", mode="overwrite_partitions")
    lake.read("gold.forecast", version=3).where("sku = 'SKU-0001'")
    ```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from replenish.errors import LakeError
from replenish.io.catalog import TableSpec, table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite", "overwrite_partitions"]
EngineName = Literal["auto", "delta-spark", "embedded"]
WRITE_MODES: tuple[str, ...] = ("append", "overwrite", "overwrite_partitions")


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
    """True when delta-spark's JVM classes and its Python package are both importable."""
    try:
        spark._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
    except Exception:
        return False
    try:
        import delta.tables  # noqa: F401
    except ImportError:
        log.warning("io.delta classes are on the classpath but the Python package delta-spark is missing")
        return False
    return True


class Lake:
    """Delta tables under one root folder, addressed by catalog name.

    Args:
        spark: the session that reads and writes.
        root: the lake root, a local folder or a URI (`s3a://bucket/lake`, `dbfs:/lake`).
        engine: `auto` (delta-spark when available, else embedded), or force one.
    """

    def __init__(self, spark: SparkSession, root: str, *, engine: EngineName = "auto") -> None:
        if engine not in ("auto", "delta-spark", "embedded"):
            raise ValueError(f"engine must be auto, delta-spark or embedded, got {engine!r}")
        self.spark = spark
        self.root = root
        if engine == "auto":
            engine = "delta-spark" if delta_spark_available(spark) else "embedded"
        self.engine_name: str = engine
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

    def read(self, name: str | TableSpec, *, version: int | None = None) -> DataFrame:
        """Read table `name`, at its current version or at `version` (time travel).

        Raises:
            LakeError: the table does not exist, or not at that version.
        """
        spec = table(name)
        uri = self.path(spec)
        if not self._engine.exists(uri):
            raise LakeError(f"table {spec.name} does not exist at {uri}; run the job that produces it first")
        if version is not None and version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        return self._engine.read(uri, version=version)

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
        result = self._engine.write(df, self.path(spec), mode=mode, partition_by=columns)
        log.info("%s: %s committed version %d (%d rows)", spec.name, mode, result.version, result.rows_written)
        return result

    def insert_new(self, df: DataFrame, name: str | TableSpec, *, keys: Sequence[str] | None = None) -> WriteResult:
        """Append only the rows of `df` whose keys are not in the table yet (a merge that only inserts).

        This makes re-ingesting the same file a no-op. `df` must not repeat a key itself; ingest
        quarantines in-file duplicates first. Assumes a single writer per table.
        """
        spec = table(name)
        key_columns = list(keys if keys is not None else spec.keys)
        if not key_columns:
            raise LakeError(f"{spec.name} declares no keys; pass keys=")
        missing = [c for c in key_columns if c not in df.columns]
        if missing:
            raise LakeError(f"{spec.name}: key column(s) {missing} not in the data ({df.columns})")
        return self._engine.insert_new(df, self.path(spec), keys=key_columns, partition_by=list(spec.partition_by))

    def describe(self, name: str | TableSpec) -> dict[str, Any]:
        """Name, path, version, rows, files and bytes of a table, from its log (no data is scanned)."""
        spec = table(name)
        uri = self.path(spec)
        if not self._engine.exists(uri):
            return {"table": spec.name, "path": uri, "version": None, "rows": 0, "files": 0, "bytes": 0}
        return {"table": spec.name, "path": uri, **self._engine.describe(uri)}

    def history(self, name: str | TableSpec, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first: version, timestamp, operation, parameters, metrics."""
        return self._engine.history(self.path(name), limit=limit)

    def compact(self, name: str | TableSpec, *, target_file_bytes: int = 128 * 1024 * 1024) -> WriteResult:
        """Rewrite small files into larger ones per partition, without changing the data."""
        return self._engine.compact(self.path(name), target_file_bytes=target_file_bytes)

    def vacuum(self, name: str | TableSpec, *, retention_hours: int = 168, dry_run: bool = False) -> list[str]:
        """Delete files no version within `retention_hours` needs, and leftovers of crashed writes."""
        if retention_hours < 0:
            raise ValueError("retention_hours must be >= 0")
        return self._engine.vacuum(self.path(name), retention_hours=retention_hours, dry_run=dry_run)
