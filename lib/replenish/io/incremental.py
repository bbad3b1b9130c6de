"""What changed since the last run: the raw files not ingested yet, and the series a bronze table's
new commits touched.

Both answers come from the lake itself, so nothing else has to be kept in step with it:

* files: every bronze and quarantine row carries its `source_file`; a file whose path is in neither
  table has not been ingested (a file whose every row was a duplicate key is read again next time, which
  adds nothing: ingest is idempotent);
* series: the Delta commit log. Each commit after `since_version` lists the data files it added
  (`add` actions with `dataChange`); bronze tables only ever grow by `insert_new`, so the rows of those
  files are exactly the new rows, and their keys are the changed series. This reads the same on both
  engines (the log is the protocol), where Change Data Feed would need delta-spark and a table property.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from replenish.errors import LakeError
from replenish.io.catalog import TableSpec, table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def ingested_files(lake: Any, entity: str) -> set[str]:
    """The `source_file`s already in `bronze.<entity>` or `quarantine.<entity>`."""
    seen: set[str] = set()
    for name in (f"bronze.{entity}", f"quarantine.{entity}"):
        if lake.exists(name):
            frame = lake.read(name)
            if "source_file" in frame.columns:
                seen.update(r[0] for r in frame.select("source_file").distinct().collect() if r[0])
    return seen


def list_part_files(spark: Any, folder: str) -> list[str]:
    """Full URIs of the data files in `folder` (hidden and `_`-prefixed names left out), sorted."""
    jvm: Any = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    filesystem = path.getFileSystem(spark._jsc.hadoopConfiguration())
    if filesystem.getFileStatus(path).isFile():
        return [filesystem.makeQualified(path).toString()]
    return sorted(
        status.getPath().toString()
        for status in filesystem.listStatus(path)
        if status.isFile() and not status.getPath().getName().startswith((".", "_"))
    )


def new_files(lake: Any, entity: str, source: str) -> list[str]:
    """The files of `source` (a file or a folder of part files) that `entity` has not ingested yet."""
    seen = ingested_files(lake, entity)
    return [uri for uri in list_part_files(lake.spark, source) if uri not in seen]


def added_files(lake: Any, name: str | TableSpec, *, since_version: int) -> list[str]:
    """URIs of the data files the commits after `since_version` added to table `name` (current ones)."""
    spec = table(name)
    current = lake.version(spec)
    if current is None:
        raise LakeError(f"table {spec.name} does not exist")
    uri = lake.path(spec)
    log_dir = f"{uri}/_delta_log"
    jvm: Any = lake.spark._jvm
    filesystem = jvm.org.apache.hadoop.fs.Path(log_dir).getFileSystem(lake.spark._jsc.hadoopConfiguration())
    added: list[str] = []
    for version in range(since_version + 1, current + 1):
        commit = jvm.org.apache.hadoop.fs.Path(f"{log_dir}/{version:020d}.json")
        if not filesystem.exists(commit):
            raise LakeError(
                f"{spec.name}: commit {version} is no longer in the log (log retention); run a full run instead"
            )
        stream = filesystem.open(commit)
        try:
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        for line in str(text).splitlines():
            action = json.loads(line) if line.strip() else {}
            add = action.get("add")
            if add and add.get("dataChange", True):
                added.append(f"{uri}/{unquote(add['path'])}")
    return added


def changed_keys(
    lake: Any, name: str | TableSpec, *, since_version: int, columns: Sequence[str] = ("sku", "location")
) -> DataFrame:
    """Distinct `columns` of the rows the commits after `since_version` added to table `name`.

    Example:
        ```python
        changed = changed_keys(lake, "bronze.sales", since_version=12)   # (sku, location) rows
        ```
    """
    spec = table(name)
    files = added_files(lake, spec, since_version=since_version)
    schema = lake._engine.schema(lake.path(spec))
    fields = [f for f in schema.fields if f.name in columns]
    if not files:
        from pyspark.sql.types import StructType

        return lake.spark.createDataFrame([], StructType(fields))
    reader = lake.spark.read.schema(schema)
    if lake._engine.partition_columns(lake.path(spec)):
        reader = reader.option("basePath", lake.path(spec))
    return reader.parquet(*files).select(*columns).distinct()


def keys_of(rows: Iterable[Any], columns: Sequence[str]) -> set[tuple[Any, ...]]:
    """Collected rows as a set of key tuples (tests and logs)."""
    return {tuple(row[c] for c in columns) for row in rows}
