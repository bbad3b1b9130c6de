"""The lake layer against real Delta logs: Spark, delta-rs and DuckDB must all read what it writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import functions as F

from replenish.errors import LakeError
from replenish.io import _embedded
from replenish.io.bi import duckdb_connect
from replenish.io.catalog import TableSpec
from replenish.io.lake import Lake

pytestmark = pytest.mark.spark

EVENTS = TableSpec("test.events", partition_by=("day",), keys=("id",))
FLAT = TableSpec("test.flat", keys=("id",))


def _events(spark, ids: range, day_of: str = "id % 3"):
    return spark.range(ids.start, ids.stop).select(
        F.col("id"),
        F.expr(f"date_add(date'2024-01-01', cast({day_of} as int))").alias("day"),
        (F.col("id") * 1.5).alias("amount"),
        F.when(F.col("id") % 4 == 0, None).otherwise(F.concat(F.lit("sku:"), F.col("id"))).alias("sku"),
        (F.col("id") % 2 == 0).alias("flag"),
        F.expr("timestamp'2024-01-01 10:00:00' + make_interval(0, 0, 0, 0, 0, 0, id)").alias("ts"),
    )


def _log_actions(uri: str, version: int) -> list[dict]:
    path = Path(uri) / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_round_trip_is_read_alike_by_spark_delta_rs_and_duckdb(lake: Lake, spark) -> None:
    version = lake.write(_events(spark, range(0, 30)), EVENTS, mode="append")
    assert version == 0
    uri = lake.path(EVENTS)

    back = lake.read(EVENTS)
    assert back.columns == ["id", "day", "amount", "sku", "flag", "ts"]
    assert back.count() == 30
    assert back.where("sku IS NULL").count() == 8
    assert back.agg(F.sum("amount")).first()[0] == pytest.approx(1.5 * sum(range(30)))

    table = DeltaTable(uri)
    assert table.metadata().partition_columns == ["day"]
    result = pa.table(QueryBuilder().register("t", table).execute("SELECT count(*) AS n, sum(id) AS s FROM t"))
    assert result.to_pylist() == [{"n": 30, "s": sum(range(30))}]

    con = duckdb_connect(lake.root, tables=[EVENTS])
    assert con.sql("SELECT count(*), count(DISTINCT day), sum(amount) FROM test_events").fetchone() == (
        30,
        3,
        pytest.approx(1.5 * sum(range(30))),
    )


def test_every_file_carries_footer_statistics(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 12)), EVENTS)
    adds = [a["add"] for a in _log_actions(lake.path(EVENTS), 0) if "add" in a]
    assert adds and sum(json.loads(a["stats"])["numRecords"] for a in adds) == 12
    assert sum(json.loads(a["stats"])["nullCount"]["sku"] for a in adds) == 3  # ids 0, 4 and 8
    for add in adds:
        stats = json.loads(add["stats"])
        assert set(stats["minValues"]) >= {"id", "amount"}
        # sku is NULL on every fourth id: the file's own count, as its Parquet footer gives it.
        written = pq.read_table(Path(lake.path(EVENTS)) / add["path"])
        assert stats["numRecords"] == written.num_rows
        assert stats["nullCount"]["sku"] == written.column("sku").null_count
        assert add["partitionValues"]["day"] in {"2024-01-01", "2024-01-02", "2024-01-03"}
        assert add["path"].startswith(f"day={add['partitionValues']['day']}/")


def test_overwrite_partitions_replaces_only_the_partitions_written(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 30)), EVENTS)
    replacement = _events(spark, range(100, 104), day_of="0")  # only 2024-01-01
    lake.write(replacement, EVENTS, mode="overwrite_partitions")
    counts = {r["day"]: r["count"] for r in lake.read(EVENTS).groupBy("day").count().collect()}
    assert counts == {dt.date(2024, 1, 1): 4, dt.date(2024, 1, 2): 10, dt.date(2024, 1, 3): 10}
    assert lake.read(EVENTS, version=0).count() == 30  # time travel


def test_overwrite_replaces_everything_and_may_change_the_schema(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 10)), FLAT)
    lake.write(spark.range(3).withColumn("extra", F.lit("x")), FLAT, mode="overwrite")
    back = lake.read(FLAT)
    assert back.columns == ["id", "extra"] and back.count() == 3
    assert [h["operation"] for h in lake.history(FLAT)][:1] == ["WRITE"]


def test_append_with_a_different_schema_is_refused_and_changes_nothing(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 10)), EVENTS)
    with pytest.raises(LakeError, match="amount: table double, data string"):
        lake.write(_events(spark, range(10, 12)).withColumn("amount", F.lit("x")), EVENTS)
    with pytest.raises(LakeError, match="missing"):
        lake.write(_events(spark, range(10, 12)).drop("flag"), EVENTS)
    assert lake.version(EVENTS) == 0 and lake.read(EVENTS).count() == 10


def test_append_reorders_columns_by_name(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 5)), EVENTS)
    shuffled = _events(spark, range(5, 8)).select("ts", "flag", "sku", "amount", "day", "id")
    lake.write(shuffled, EVENTS)
    assert lake.read(EVENTS).agg(F.sum("id")).first()[0] == sum(range(8))


def test_insert_new_is_idempotent(lake: Lake, spark) -> None:
    first = lake.insert_new(_events(spark, range(0, 20)), EVENTS)
    again = lake.insert_new(_events(spark, range(0, 20)), EVENTS)
    more = lake.insert_new(_events(spark, range(15, 25)), EVENTS)
    assert (first.rows_written, again.rows_written, more.rows_written) == (20, 0, 5)
    assert lake.read(EVENTS).count() == 25
    assert lake.version(EVENTS) == 1  # the no-op insert committed nothing


def test_empty_write_creates_a_readable_empty_table(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 0)), EVENTS)
    assert lake.exists(EVENTS) and lake.read(EVENTS).count() == 0
    assert lake.read(EVENTS).columns == ["id", "day", "amount", "sku", "flag", "ts"]


def test_statistics_on_the_executors_match_the_driver_path(spark, tmp_path: Path) -> None:
    lake = Lake(spark, str(tmp_path / "lake"))
    lake._engine.describe_on_executors_above = 0
    lake.write(_events(spark, range(0, 40)).repartition(4), EVENTS)
    adds = [a["add"] for a in _log_actions(lake.path(EVENTS), 0) if "add" in a]
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == 40


def test_compact_rewrites_small_files_without_changing_data(lake: Lake, spark) -> None:
    for start in range(0, 40, 10):
        lake.write(_events(spark, range(start, start + 10)).repartition(3), EVENTS)
    before = len(DeltaTable(lake.path(EVENTS)).file_uris())
    result = lake.compact(EVENTS)
    after = DeltaTable(lake.path(EVENTS)).file_uris()
    assert result.files_removed == before and len(after) == 3  # one file per day
    assert lake.read(EVENTS).count() == 40 and lake.read(EVENTS).agg(F.sum("id")).first()[0] == sum(range(40))
    commit = _log_actions(lake.path(EVENTS), result.version)
    assert all(not a[k]["dataChange"] for a in commit for k in ("add", "remove") if k in a)


def test_a_failure_before_the_commit_leaves_the_previous_version(lake: Lake, spark, monkeypatch) -> None:
    lake.write(_events(spark, range(0, 10)), EVENTS)

    def explode(uri: str) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(_embedded, "before_commit", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        lake.write(_events(spark, range(10, 20)), EVENTS, mode="overwrite")
    assert lake.version(EVENTS) == 0 and lake.read(EVENTS).count() == 10
    leftovers = [p for p in Path(lake.path(EVENTS)).rglob("*.parquet")]
    assert len(leftovers) == len(DeltaTable(lake.path(EVENTS)).file_uris())  # the failed write cleaned up


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import SPARK_TEST_CONF
    from pyspark.sql import functions as F
    from replenish.session import build_spark
    from replenish.io import _embedded
    from replenish.io.catalog import TableSpec
    from replenish.io.lake import Lake

    spark = build_spark({{"master": "local[1]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"}})
    lake = Lake(spark, {root!r})
    table = TableSpec("test.events", partition_by=("day",), keys=("id",))

    def hang(uri):
        Path({marker!r}).write_text(uri)
        time.sleep(600)

    _embedded.before_commit = hang
    day = F.expr("date_add(date'2024-01-01', cast(id % 3 as int))").alias("day")
    rows = spark.range(1000, 1500).select(F.col("id"), day)
    lake.write(rows, table, mode="overwrite")
    """
)


def test_a_writer_killed_during_the_commit_phase_leaves_the_table_at_its_previous_version(
    lake: Lake, spark, tmp_path: Path
) -> None:
    events = TableSpec("test.events", partition_by=("day",), keys=("id",))
    rows = spark.range(0, 100).select(
        F.col("id"), F.expr("date_add(date'2024-01-01', cast(id % 3 as int))").alias("day")
    )
    lake.write(rows, events)
    marker = tmp_path / "committing"
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER.format(tests=str(Path(__file__).parents[1]), root=lake.root, marker=str(marker)))
    writer = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert writer.poll() is None, "the writer exited before reaching the commit"
            assert time.monotonic() < deadline, "the writer never reached the commit"
            time.sleep(0.5)
        # the new files are in place: the write is as far as it gets before the commit
        assert len(list(Path(lake.path(events)).rglob("*.parquet"))) > len(DeltaTable(lake.path(events)).file_uris())
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
    assert writer.returncode == -signal.SIGKILL
    assert lake.version(events) == 0
    assert lake.read(events).count() == 100 and lake.read(events).agg(F.max("id")).first()[0] == 99
    # the orphaned files are invisible to every reader and vacuum removes them
    removed = lake.vacuum(events, retention_hours=0)
    assert removed
    assert len(list(Path(lake.path(events)).rglob("*.parquet"))) == len(DeltaTable(lake.path(events)).file_uris())
    assert lake.read(events).count() == 100
    # and the table takes the next write normally
    version = lake.write(rows.where("id < 10"), events, mode="overwrite")
    assert version == lake.version(events) > 0 and lake.read(events).count() == 10


def test_the_embedded_engine_is_chosen_without_delta_jars(lake: Lake) -> None:
    assert lake.engine_name == "embedded"


def test_reading_a_missing_table_names_it(lake: Lake) -> None:
    with pytest.raises(LakeError, match=r"test.flat does not exist"):
        lake.read(FLAT)
    assert lake.version(FLAT) is None and not lake.exists(FLAT)


def test_overwrite_partitions_needs_a_partitioned_table(lake: Lake, spark) -> None:
    with pytest.raises(LakeError, match="not partitioned"):
        lake.write(spark.range(3), FLAT, mode="overwrite_partitions")
