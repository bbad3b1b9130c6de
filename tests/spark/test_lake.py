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

ENGINES = ("delta-spark", "embedded")


@pytest.fixture(params=ENGINES)
def lake(request, spark, tmp_path: Path) -> Lake:
    """An empty lake on each engine: every Lake operation must behave alike on both."""
    return Lake(spark, str(tmp_path / "lakehouse"), engine=request.param)


@pytest.fixture()
def embedded_lake(spark, tmp_path: Path) -> Lake:
    """The embedded engine alone: its staging, footer statistics and commit phase."""
    return Lake(spark, str(tmp_path / "lakehouse"), engine="embedded")


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
    lake = Lake(spark, str(tmp_path / "lake"), engine="embedded")
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


def test_a_failure_before_the_commit_leaves_the_previous_version(embedded_lake: Lake, spark, monkeypatch) -> None:
    lake = embedded_lake
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
    from replenish_jobs.harness import build_spark
    from replenish.io import _embedded
    from replenish.io.catalog import TableSpec
    from replenish.io.lake import Lake

    spark = build_spark({{"master": "local[1]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"}}, lake_engine="embedded")
    lake = Lake(spark, {root!r}, engine="embedded")
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
    embedded_lake: Lake, spark, tmp_path: Path
) -> None:
    lake = embedded_lake
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


def test_sessions_get_delta_spark_by_default_and_the_lake_uses_it(spark, tmp_path: Path) -> None:
    assert "io.delta.sql.DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    assert spark.conf.get("spark.sql.catalog.spark_catalog").endswith("DeltaCatalog")
    lake = Lake(spark, str(tmp_path / "lake"), commit_info={"run_id": "r-1"})
    assert lake.engine_name == "delta-spark"
    lake.write(spark.range(3), FLAT)
    assert json.loads(lake.history(FLAT)[0]["userMetadata"]) | {"write_id": None} == {
        "engine": "delta-spark",
        "run_id": "r-1",
        "mode": "append",
        "write_id": None,
    }


def test_every_commit_records_the_engine_and_run(lake: Lake, spark) -> None:
    lake.commit_info["run_id"] = "r-2"
    lake.write(_events(spark, range(0, 5)), EVENTS)
    lake.insert_new(_events(spark, range(3, 8)), EVENTS)
    for commit in lake.history(EVENTS):
        info = json.loads(commit["userMetadata"])
        assert (info["engine"], info["run_id"]) == (lake.engine_name, "r-2")
        assert isinstance(commit["timestamp"], dt.datetime) and commit["timestamp"].tzinfo is not None


def test_time_travel_by_version_and_by_timestamp(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 10)), EVENTS)
    time.sleep(1.1)  # commit timestamps have millisecond resolution; keep the two versions apart
    lake.write(_events(spark, range(10, 15)), EVENTS)
    first, second = sorted(lake.history(EVENTS), key=lambda c: c["version"])
    assert lake.read(EVENTS, version=0).count() == 10
    assert lake.read(EVENTS, timestamp=first["timestamp"]).count() == 10
    assert lake.read(EVENTS, timestamp=second["timestamp"].isoformat()).count() == 15
    with pytest.raises(LakeError, match="version 7"):
        lake.read(EVENTS, version=7).count()


def test_compact_zorders_the_gold_tables_bi_filters_by_sku(lake: Lake, spark) -> None:
    from replenish.io.catalog import ZORDER_BY

    assert ZORDER_BY["gold.replenishment_plan"] == ("sku",)
    plan = TableSpec("gold.replenishment_plan", keys=("sku",))
    rows = spark.range(0, 400).select(F.format_string("SKU-%04d", (F.col("id") * 7919) % 400).alias("sku"), "id")
    for start in range(4):
        lake.write(rows.where(f"id % 4 = {start}").repartition(2), plan)
    lake.compact(plan, zorder_by=["sku"])
    last = lake.history(plan)[0]
    if lake.engine_name == "delta-spark":
        assert last["operation"] == "OPTIMIZE" and json.loads(last["operationParameters"]["zOrderBy"]) == ["sku"]
    assert lake.read(plan).count() == 400
    assert sorted(r["sku"] for r in lake.read(plan).collect()) == sorted(r["sku"] for r in rows.collect())


def test_vacuum_removes_files_no_version_needs(lake: Lake, spark) -> None:
    lake.write(_events(spark, range(0, 10)), EVENTS)
    lake.write(_events(spark, range(0, 4)), EVENTS, mode="overwrite")
    on_disk = lambda: {p.name for p in Path(lake.path(EVENTS)).rglob("*.parquet")}  # noqa: E731
    before = on_disk()
    listed = lake.vacuum(EVENTS, retention_hours=0, dry_run=True)
    assert listed and on_disk() == before
    removed = lake.vacuum(EVENTS, retention_hours=0)
    assert len(removed) == len(listed) and len(on_disk()) < len(before)
    assert lake.read(EVENTS).count() == 4


def test_the_engine_can_be_forced_and_is_refused_where_it_cannot_run(spark, tmp_path: Path) -> None:
    assert Lake(spark, str(tmp_path), engine="embedded").engine_name == "embedded"
    with pytest.raises(ValueError, match="engine must be"):
        Lake(spark, str(tmp_path), engine="parquet")  # type: ignore[arg-type]


AIR_GAPPED_SESSION = textwrap.dedent(
    """
    import json, logging, sys
    sys.path.insert(0, {tests!r})
    from conftest import SPARK_TEST_CONF
    from replenish_jobs.harness import build_spark
    from replenish.io.lake import Lake

    logging.basicConfig(level=logging.WARNING)
    conf = {{**SPARK_TEST_CONF, "spark.jars.ivy": {ivy!r}, "spark.jars.ivySettings": {settings!r}}}
    spark = build_spark({{"master": "local[1]", "conf": conf, "log_level": "ERROR"}}, lake_engine={engine!r})
    lake = Lake(spark, {root!r})
    lake.write(spark.range(5), "bronze.products")
    print(json.dumps({{"engine": lake.engine_name, "rows": lake.read("bronze.products").count()}}))
    spark.stop()
    """
)
NO_REPOSITORY = """<ivysettings><settings defaultResolver="nowhere"/><resolvers>
<filesystem name="nowhere"><artifact pattern="/nonexistent/[organisation]/[artifact]-[revision].[ext]"/></filesystem>
</resolvers></ivysettings>"""


@pytest.mark.parametrize("engine", ["auto", "delta-spark"])
def test_without_a_maven_repository_auto_falls_back_to_embedded_and_delta_spark_fails(
    engine: str, tmp_path: Path
) -> None:
    """An air-gapped machine: an empty Ivy cache and no repository that has delta-spark."""
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(NO_REPOSITORY)
    script = tmp_path / "session.py"
    script.write_text(
        AIR_GAPPED_SESSION.format(
            tests=str(Path(__file__).parents[1]),
            ivy=str(tmp_path / "ivy"),
            settings=str(settings),
            engine=engine,
            root=str(tmp_path / "lake"),
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    if engine == "auto":
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"engine": "embedded", "rows": 5}
        assert "could not be resolved" in done.stderr and "lake.engine=embedded" in done.stderr
    else:
        assert done.returncode != 0
        assert "lake.engine is delta-spark but Spark did not start with io.delta:delta-spark_2.12" in done.stderr


def test_reading_a_missing_table_names_it(lake: Lake) -> None:
    with pytest.raises(LakeError, match=r"test.flat does not exist"):
        lake.read(FLAT)
    assert lake.version(FLAT) is None and not lake.exists(FLAT)


def test_overwrite_partitions_needs_a_partitioned_table(lake: Lake, spark) -> None:
    with pytest.raises(LakeError, match="not partitioned"):
        lake.write(spark.range(3), FLAT, mode="overwrite_partitions")


def test_read_or_empty_gives_a_missing_table_as_its_catalog_columns(lake: Lake) -> None:
    from replenish.io.catalog import table

    empty = lake.read_or_empty("bronze.suppliers")
    assert empty.count() == 0
    assert empty.schema == table("bronze.suppliers").schema
    assert not lake.exists("bronze.suppliers")  # reading does not create it
    rows = lake.empty("silver.sku_index").union(lake.spark.createDataFrame([("SKU-1", 0)], "sku string, sku_index int"))
    lake.write(rows, "silver.sku_index")
    assert [tuple(row) for row in lake.read_or_empty("silver.sku_index").collect()] == [("SKU-1", 0)]
    with pytest.raises(LakeError, match="declares no columns"):
        lake.empty(FLAT)
