"""The streaming query: Delta sources, a checkpoint, and a micro-batch writer that commits exactly once.

Every micro-batch writes two Delta tables with delta-spark's idempotent transactions, keyed by the
query's id (kept in the checkpoint, so it survives restarts) and the batch number:

1. `gold.reorder_alerts`: an append with the writer options `txnAppId` / `txnVersion`;
2. `gold.inventory_position`: a MERGE under the SQL settings `spark.databricks.delta.write.txnAppId`
   / `txnVersion`.

Delta skips a write whose (app id, version) it has already committed. A batch that is replayed after
a crash (Structured Streaming re-runs the batch whose commit is not in the checkpoint, with the same
offsets) therefore adds nothing that is already there. The alerts are written first and computed from
the positions before the batch; the positions are written last, so a replay that still has to write
the alerts finds the positions as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from replenish.errors import LakeError, ValidationError
from replenish.io.catalog import table
from replenish.io.lake import table_uri
from replenish.stream.events import stock_changes
from replenish.stream.position import (
    KEYS,
    BatchStamp,
    apply_changes,
    crossing_alerts,
    latest_plan,
    seed_positions,
)
from replenish.stream.settings import StreamConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from replenish.io.lake import Lake

log = logging.getLogger(__name__)

QUERY_NAME = "inventory_position"
POSITIONS = "gold.inventory_position"
ALERTS = "gold.reorder_alerts"
SOURCES = ("bronze.sales", "bronze.inventory_movements")

# A fault-injection seam for the exactly-once tests: "<point>@<batch_id>" stops the batch at that
# point (after_alerts: alerts committed, positions not; after_positions: both committed, the
# checkpoint not), touches the file named by FAILPOINT_FILE_ENV and waits to be killed.
FAILPOINT_ENV = "REPLENISH_STREAM_FAILPOINT"
FAILPOINT_FILE_ENV = "REPLENISH_STREAM_FAILPOINT_FILE"
FAILPOINTS = ("after_alerts", "after_positions")

_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"


def default_checkpoint(lake_root: str) -> str:
    """`<lake>/_checkpoints/inventory_position`: beside the tables it belongs to."""
    return table_uri(lake_root, table(POSITIONS)).rsplit("/", 2)[0] + f"/_checkpoints/{QUERY_NAME}"


def _hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm: Any = spark._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path  # type: ignore[attr-defined]


def checkpoint_stream_id(spark: SparkSession, checkpoint: str) -> str | None:
    """The query id a checkpoint belongs to (its `metadata` file), or None for a new checkpoint."""
    fs, path = _hadoop_path(spark, f"{checkpoint.rstrip('/')}/metadata")
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        jvm: Any = spark._jvm
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    return str(json.loads(text.splitlines()[0])["id"])


def delete_checkpoint(spark: SparkSession, checkpoint: str) -> bool:
    """Remove a checkpoint folder; True when there was one."""
    fs, path = _hadoop_path(spark, checkpoint)
    return bool(fs.exists(path) and fs.delete(path, True))


def prepare_tables(lake: Lake, *, checkpoint: str, reset: bool = False) -> dict[str, Any]:
    """Create what the stream reads and writes, and check that the checkpoint and the positions agree.

    * `bronze.sales` must exist; `bronze.inventory_movements` is created empty when missing (a lake
      without movements still streams its sales).
    * `gold.inventory_position` is created from the latest `bronze.inventory` snapshots, and series
      that got a snapshot since are added (series the stream already keeps are not touched).
    * `gold.reorder_alerts` is created empty.
    * `reset`: the checkpoint is deleted and the positions are seeded again; the next run replays every
      event after the snapshots (alerts already written stay).

    Raises:
        ValidationError: `bronze.sales` does not exist.
        LakeError: the positions were kept by another checkpoint than this one (or the checkpoint has
            run without them): replaying would count events twice or lose them; `--reset` rebuilds.
    """
    spark = lake.spark
    if not lake.exists("bronze.sales"):
        raise ValidationError("bronze.sales does not exist: run `replenish ingest sales FILE` first")
    if not lake.exists("bronze.inventory_movements"):
        lake.write(lake.empty("bronze.inventory_movements"), "bronze.inventory_movements")
    if reset:
        deleted = delete_checkpoint(spark, checkpoint)
        log.info("reset: checkpoint %s %s; positions seeded again", checkpoint, "deleted" if deleted else "absent")
    seeds = seed_positions(lake.read("bronze.inventory")) if lake.exists("bronze.inventory") else lake.empty(POSITIONS)
    stream_id = checkpoint_stream_id(spark, checkpoint)
    if reset or not lake.exists(POSITIONS):
        if stream_id is not None:
            raise LakeError(
                f"{POSITIONS} does not exist but the checkpoint {checkpoint} has already run: the events it "
                "consumed would be lost; rerun with --reset to rebuild the positions from the snapshots"
            )
        seeded = lake.write_with_result(seeds, POSITIONS, mode="overwrite").rows_written
    else:
        kept_by = {
            row[0]
            for row in lake.read(POSITIONS)
            .where(F.col("stream_id").isNotNull())
            .select("stream_id")
            .distinct()
            .collect()
        }
        if kept_by and kept_by != {stream_id}:
            raise LakeError(
                f"{POSITIONS} was kept by stream {', '.join(sorted(kept_by))} but the checkpoint {checkpoint} "
                f"{'is new' if stream_id is None else f'belongs to stream {stream_id}'}: events would be counted "
                "twice or lost; rerun with --reset to rebuild the positions from the snapshots"
            )
        seeded = lake.insert_new(seeds, POSITIONS, keys=list(KEYS)).rows_written
    if not lake.exists(ALERTS):
        lake.write(lake.empty(ALERTS), ALERTS)
    return {"seeded_positions": seeded, "stream_id": stream_id}


def _failpoint(point: str, batch_id: int) -> None:
    if os.environ.get(FAILPOINT_ENV) != f"{point}@{batch_id}":
        return
    marker = os.environ.get(FAILPOINT_FILE_ENV)
    log.warning("failpoint %s reached in batch %d: waiting to be killed", point, batch_id)
    if marker:
        with open(marker, "w") as handle:
            handle.write(f"{point}@{batch_id}\n")
    while True:
        time.sleep(60)


class PositionWriter:
    """The `foreachBatch` function: one micro-batch of stock changes into the positions and the alerts.

    Args:
        lake_root: the lake the tables live in.
    """

    def __init__(self, lake_root: str) -> None:
        self.lake_root = lake_root
        self._stream_id: str | None = None
        self._known = threading.Event()

    def bind(self, stream_id: str) -> None:
        """Give the writer its query's id, once the query has started (batches wait for it)."""
        self._stream_id = stream_id
        self._known.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from delta.tables import DeltaTable

        from replenish.io.lake import Lake

        self._known.wait()
        assert self._stream_id is not None
        spark = batch.sparkSession
        lake = Lake(spark, self.lake_root, engine="delta-spark")
        stamp = BatchStamp(self._stream_id, batch_id, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        positions_path = lake.path(POSITIONS)
        changed = apply_changes(lake.read(POSITIONS), batch, stamp).persist()
        try:
            plan = latest_plan(lake.read("gold.replenishment_plan")) if lake.exists("gold.replenishment_plan") else None
            alerts = crossing_alerts(changed, plan, stamp) if plan is not None else lake.empty(ALERTS)
            # Written even when empty: the commit records this batch's transaction, so that a replay
            # after the positions moved cannot add alerts computed from the wrong starting point.
            (
                alerts.write.format("delta")
                .mode("append")
                .option("txnAppId", stamp.stream_id)
                .option("txnVersion", batch_id)
                .save(lake.path(ALERTS))
            )
            _failpoint("after_alerts", batch_id)
            spark.conf.set(_TXN_APP_ID, stamp.stream_id)
            spark.conf.set(_TXN_VERSION, str(batch_id))
            try:
                condition = " AND ".join(f"target.`{key}` = source.`{key}`" for key in KEYS)
                (
                    DeltaTable.forPath(spark, positions_path)
                    .alias("target")
                    .merge(changed.drop("previous_position").alias("source"), condition)
                    .whenMatchedUpdateAll()
                    .whenNotMatchedInsertAll()
                    .execute()
                )
            finally:
                spark.conf.unset(_TXN_APP_ID)
                spark.conf.unset(_TXN_VERSION)
            _failpoint("after_positions", batch_id)
        finally:
            changed.unpersist()
        log.info("batch %d of stream %s committed", batch_id, stamp.stream_id)


def _source(spark: SparkSession, lake: Lake, name: str, cfg: StreamConfig) -> DataFrame:
    reader = spark.readStream.format("delta")
    if cfg.max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", cfg.max_files_per_trigger)
    return reader.load(lake.path(name))


def start_stream(lake: Lake, cfg: StreamConfig, *, checkpoint: str, available_now: bool = False) -> StreamingQuery:
    """Start the query over `bronze.sales` and `bronze.inventory_movements` (`prepare_tables` first).

    Args:
        lake: the lake; its session must have delta-spark.
        cfg: trigger interval and batch size.
        checkpoint: the query's checkpoint folder.
        available_now: process what has landed (in as many batches as `max_files_per_trigger`
            makes) and stop; otherwise run every `processing_time` until stopped.
    """
    spark = lake.spark
    changes = stock_changes(
        _source(spark, lake, "bronze.sales", cfg), _source(spark, lake, "bronze.inventory_movements", cfg)
    )
    writer = PositionWriter(lake.root)
    stream = changes.writeStream.queryName(QUERY_NAME).option("checkpointLocation", checkpoint).foreachBatch(writer)
    stream = stream.trigger(availableNow=True) if available_now else stream.trigger(processingTime=cfg.processing_time)
    query = stream.start()
    writer.bind(str(query.id))
    return query
