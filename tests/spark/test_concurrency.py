"""Two jobs writing one table at once, and a job killed mid-write: Delta's promises, in real processes.

The two writers are two JVMs, as two spark-submit jobs would be: the test's own Spark session, and a
Python process with its own session. The interleaving is forced, not left to timing: the second writer's
Spark job blocks in a task until the first writer has committed, so it commits against a table that
moved since it read it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from replenish.io.catalog import TableSpec
from replenish.io.lake import Lake

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EVENTS = TableSpec("test.events", partition_by=("day",), keys=("id",))

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import SPARK_TEST_CONF
    from pyspark.sql import functions as F
    from replenish.errors import ConcurrentWriteError
    from replenish_jobs.harness import build_spark
    from replenish.io.catalog import TableSpec
    from replenish.io.lake import Lake

    engine, mode, first, last, day, wait_for, started, hold = sys.argv[1:9]
    spark = build_spark({{"master": "local[2]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"}}, lake_engine=engine)
    lake = Lake(spark, {root!r}, engine=engine)
    table = TableSpec("test.events", partition_by=("day",), keys=("id",))

    def gate(batches):
        # in the write's tasks: tell the test the write runs, then wait for the other writer's commit;
        # or (hold) let the first task finish its file and keep the second one's open for ever
        from pyspark import TaskContext

        for batch in batches:
            if wait_for != "-":
                Path(started).write_text("writing")
            while wait_for != "-" and not Path(wait_for).exists():
                time.sleep(0.2)
            yield batch
            if hold == "hold" and TaskContext.get().partitionId() == 1:
                Path(started).write_text("writing")
                while True:
                    time.sleep(1)

    rows = spark.range(int(first), int(last), numPartitions=2).select(
        F.col("id"), F.lit(day).cast("date").alias("day"), (F.col("id") * 1.5).alias("amount")
    )
    rows = rows.mapInPandas(gate, rows.schema)
    try:
        if mode == "insert_new":
            result = lake.insert_new(rows, table)
        else:
            result = lake.write_with_result(rows, table, mode=mode)
        print(json.dumps({{"version": result.version, "rows": result.rows_written}}))
    except ConcurrentWriteError as exc:
        print(json.dumps({{"conflict": str(exc)}}))
    """
)


def _start(
    script: Path,
    engine: str,
    mode: str,
    ids: range,
    day: str,
    *,
    wait_for: str = "-",
    started: Path,
    hold: bool = False,
) -> subprocess.Popen:
    args = [engine, mode, str(ids.start), str(ids.stop), day, wait_for, str(started), "hold" if hold else "-"]
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _result(process: subprocess.Popen, timeout: float = 400) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


def _events(spark, ids: range, day: str):
    return spark.range(ids.start, ids.stop).select(
        F.col("id"), F.lit(day).cast("date").alias("day"), (F.col("id") * 1.5).alias("amount")
    )


def _script(tmp_path: Path, root: str) -> Path:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parents[1]), root=root))
    return script


def _write(lake: Lake, mode: str, ids: range, day: str) -> dict:
    """Writer A: the test's own Spark session, a JVM apart from writer B's."""
    rows = _events(lake.spark, ids, day)
    result = lake.insert_new(rows, EVENTS) if mode == "insert_new" else lake.write_with_result(rows, EVENTS, mode=mode)
    return {"version": result.version, "rows": result.rows_written}


def _race(spark, tmp_path: Path, engine: str, mode: str, first: tuple[range, str], second: tuple[range, str]):
    """Writer B (its own process) starts its transaction and blocks in its tasks until writer A (this
    process) has committed, then commits against a table that moved since it read it."""
    lake = Lake(spark, str(tmp_path / "lakehouse"), engine=engine)
    lake.write(_events(spark, range(0, 10), "2024-01-01"), EVENTS)
    lake.write(_events(spark, range(10, 20), "2024-01-02"), EVENTS)
    script = _script(tmp_path, lake.root)
    a_done, b_started = tmp_path / "a-done", tmp_path / "b-started"
    b = _start(script, engine, mode, second[0], second[1], wait_for=str(a_done), started=b_started)
    try:
        deadline = time.monotonic() + 300
        while not b_started.exists():
            assert b.poll() is None, b.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "writer B never started writing"
            time.sleep(0.5)
        result_a = _write(lake, mode, first[0], first[1])
        a_done.write_text("committed")
        result_b = _result(b)
    finally:
        for process in (b,):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return lake, result_a, result_b


@pytest.mark.parametrize("engine", ["delta-spark", "embedded"])
def test_concurrent_appends_both_commit(spark, tmp_path: Path, engine: str) -> None:
    lake, a, b = _race(
        spark, tmp_path, engine, "append", (range(100, 110), "2024-01-01"), (range(200, 205), "2024-01-01")
    )
    assert (a["version"], b["version"]) == (2, 3) and (a["rows"], b["rows"]) == (10, 5)
    assert lake.read(EVENTS).count() == 35


def test_concurrent_overwrites_of_other_partitions_both_commit(spark, tmp_path: Path) -> None:
    lake, a, b = _race(
        spark,
        tmp_path,
        "delta-spark",
        "overwrite_partitions",
        (range(100, 103), "2024-01-01"),
        (range(200, 204), "2024-01-02"),
    )
    assert (a["version"], b["version"]) == (2, 3)
    days = {str(r["day"]): r["count"] for r in lake.read(EVENTS).groupBy("day").count().collect()}
    assert days == {"2024-01-01": 3, "2024-01-02": 4}


@pytest.mark.parametrize("engine", ["delta-spark", "embedded"])
def test_concurrent_overwrites_of_one_partition_fail_one_writer_clearly(spark, tmp_path: Path, engine: str) -> None:
    lake, a, b = _race(
        spark,
        tmp_path,
        engine,
        "overwrite_partitions",
        (range(100, 103), "2024-01-01"),
        (range(200, 204), "2024-01-01"),
    )
    assert a["version"] == 2
    assert "another writer committed a conflicting change while this overwrite_partitions ran" in b["conflict"]
    assert lake.version(EVENTS) == 2  # B committed nothing
    days = {
        str(r["day"]): sorted(x["id"] for x in lake.read(EVENTS).where(F.col("day") == r["day"]).collect())
        for r in lake.read(EVENTS).select("day").distinct().collect()
    }
    assert days == {"2024-01-01": [100, 101, 102], "2024-01-02": list(range(10, 20))}


def test_concurrent_inserts_of_the_same_keys_are_retried_without_duplicates(spark, tmp_path: Path) -> None:
    lake, a, b = _race(
        spark, tmp_path, "delta-spark", "insert_new", (range(100, 110), "2024-01-01"), (range(105, 115), "2024-01-01")
    )
    assert a == {"version": 2, "rows": 10}
    assert b == {"version": 3, "rows": 5}  # the retry merged again and skipped A's five keys
    ids = [r["id"] for r in lake.read(EVENTS).collect()]
    assert len(ids) == len(set(ids)) == 35
    info = [json.loads(c["userMetadata"])["mode"] for c in lake.history(EVENTS, limit=2)]
    assert info == ["insert_new", "insert_new"]


@pytest.mark.parametrize("engine", ["delta-spark", "embedded"])
def test_a_writer_killed_mid_write_leaves_the_table_at_its_previous_version(spark, tmp_path: Path, engine: str) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"), engine=engine)
    lake.write(_events(spark, range(0, 10), "2024-01-01"), EVENTS)
    before = {p.name for p in Path(lake.path(EVENTS)).rglob("*.parquet")}
    started = tmp_path / "started"
    writer = _start(
        _script(tmp_path, lake.root), engine, "overwrite", range(100, 200), "2024-01-05", started=started, hold=True
    )
    try:
        deadline = time.monotonic() + 300
        while not started.exists():
            assert writer.poll() is None, writer.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.5)
        while len({p.name for p in Path(lake.path(EVENTS)).rglob("*.parquet")} - before) == 0:
            assert time.monotonic() < deadline, "the first task never wrote its file"
            time.sleep(0.5)  # one task's file is written, the other's is open: the write is under way
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
    assert writer.returncode == -signal.SIGKILL
    assert lake.version(EVENTS) == 0
    assert sorted(r["id"] for r in lake.read(EVENTS).collect()) == list(range(10))
    lake.vacuum(EVENTS, retention_hours=0)
    assert {p.name for p in Path(lake.path(EVENTS)).rglob("*.parquet")} == before
    # the table takes the next write normally (delta-spark's VACUUM logs its own START/END commits)
    version = lake.write(_events(spark, range(0, 3), "2024-01-01"), EVENTS, mode="overwrite")
    assert version == lake.version(EVENTS) >= 1 and lake.read(EVENTS).count() == 3
