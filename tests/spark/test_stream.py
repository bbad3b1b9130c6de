"""`replenish stream`: positions from the event contract, reorder-point crossings, and exactly once
across a SIGKILL mid-batch and a restart (real processes, real Delta logs, real checkpoints)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from replenish.ingest.read import read_raw
from replenish.ingest.validate import IngestConfig, validate
from replenish.io.catalog import BRONZE_COLUMNS
from replenish.stream.events import stock_changes
from replenish.stream.position import BatchStamp, apply_changes, crossing_alerts, latest_plan, seed_positions
from replenish.stream.runner import FAILPOINT_ENV, FAILPOINT_FILE_ENV

pytestmark = pytest.mark.spark

SNAPSHOT = dt.date(2026, 12, 1)
DAY = dt.date(2026, 12, 2)
STAMP = BatchStamp("test-stream", 7, dt.datetime(2026, 12, 2, 12, 0))
SALES = "sku string, location string, date date, quantity double, is_return boolean"
MOVEMENTS = "event_id string, sku string, location string, timestamp timestamp, movement string, quantity double"
INVENTORY = BRONZE_COLUMNS["inventory"]
PLAN = (
    "run_id string, run_date date, sku string, location string, policy string, reorder_point double, "
    "order_up_to_level double, lot_size double, moq double, pack_size double"
)


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def test_positions_follow_the_event_contract(spark) -> None:
    """Sales before the snapshot are in it; sales, receipts, adjustments and orders move net stock and on order."""
    inventory = spark.createDataFrame(
        [("A", "L1", SNAPSHOT, 10.0, 5.0, 0.0), ("B", "L1", SNAPSHOT, 3.0, 0.0, 1.0)], INVENTORY
    )
    sales = spark.createDataFrame(
        [
            ("A", "L1", SNAPSHOT, 4.0, False),  # in the snapshot already
            ("A", "L1", DAY, 6.0, False),
            ("A", "L1", DAY + dt.timedelta(days=1), -1.0, True),  # a return puts a unit back
            ("B", "L1", DAY, 5.0, False),  # beyond on hand: backorders
        ],
        SALES,
    )
    movements = spark.createDataFrame(
        [
            ("m1", "A", "L1", _at(DAY), "receipt", 5.0),
            ("m2", "B", "L1", _at(DAY), "order_placed", 10.0),
            ("m3", "B", "L1", _at(DAY, 11), "order_cancelled", 4.0),
            ("m4", "C", "L1", _at(DAY), "adjustment", -1.0),  # no snapshot: starts from zero
            ("m5", "A", "L1", _at(SNAPSHOT), "adjustment", 100.0),  # on the snapshot day: in it
        ],
        MOVEMENTS,
    )
    changed = apply_changes(seed_positions(inventory), stock_changes(sales, movements), STAMP)
    rows = {row["sku"]: row.asDict() for row in changed.collect()}
    assert set(rows) == {"A", "B", "C"}
    expected = {
        # sku: net_stock, on_hand, on_order, backorders, position, events, previous position
        "A": (10 - 6 + 1 + 5, 10.0, 0.0, 0.0, 10.0, 3, 15.0),
        "B": (3 - 1 - 5, 0.0, 6.0, 3.0, 3.0, 3, 2.0),
        "C": (-1, 0.0, 0.0, 1.0, -1.0, 1, 0.0),
    }
    for sku, (net, on_hand, on_order, backorders, position, events, previous) in expected.items():
        row = rows[sku]
        got = (row["net_stock"], row["on_hand"], row["on_order"], row["backorders"], row["inventory_position"])
        assert got == (net, on_hand, on_order, backorders, position), sku
        assert (row["events_applied"], row["previous_position"], row["batch_id"]) == (events, previous, 7), sku
    assert rows["C"]["snapshot_date"] is None and rows["A"]["snapshot_date"] == SNAPSHOT
    assert rows["A"]["last_event_date"] == DAY + dt.timedelta(days=1)


def test_an_alert_only_when_the_position_crosses_the_reorder_point(spark) -> None:
    """Above → at or below alerts once, with the order the plan's policy would place; already below does not."""
    changed = spark.createDataFrame(
        [
            # sku, previous position, new position
            ("CROSS_Q", 12.0, 4.0),
            ("CROSS_S", 8.0, -2.0),
            ("STAYS_BELOW", 3.0, 1.0),
            ("STAYS_ABOVE", 30.0, 11.0),
            ("NO_PLAN", 30.0, 0.0),
        ],
        "sku string, previous_position double, inventory_position double",
    ).selectExpr(
        "sku",
        "'L1' AS location",
        "previous_position",
        "inventory_position",
        "greatest(inventory_position, 0D) AS on_hand",
        "0D AS on_order",
        "greatest(-inventory_position, 0D) AS backorders",
    )
    old = [("r1", dt.date(2026, 11, 30), sku, "L1", "continuous", 100.0, 200.0, 10.0, 0.0, 1.0) for sku in ("CROSS_Q",)]
    latest = [
        ("r2", dt.date(2026, 12, 1), "CROSS_Q", "L1", "continuous", 10.0, 40.0, 15.0, 20.0, 5.0),
        ("r2", dt.date(2026, 12, 1), "CROSS_S", "L1", "periodic", 5.0, 20.0, 10.0, 0.0, 4.0),
        ("r2", dt.date(2026, 12, 1), "STAYS_BELOW", "L1", "continuous", 5.0, 20.0, 10.0, 0.0, 1.0),
        ("r2", dt.date(2026, 12, 1), "STAYS_ABOVE", "L1", "continuous", 10.0, 20.0, 10.0, 0.0, 1.0),
    ]
    plan = latest_plan(spark.createDataFrame(old + latest, PLAN))
    alerts = {row["sku"]: row.asDict() for row in crossing_alerts(changed, plan, STAMP).collect()}
    assert set(alerts) == {"CROSS_Q", "CROSS_S"}
    # (s, Q): one lot of 15 lifts 4 above 10, raised to the MOQ of 20: 20. (R, S): 20 − (−2) = 22 → 24 in packs of 4.
    assert alerts["CROSS_Q"]["order_quantity"] == 20.0 and alerts["CROSS_Q"]["plan_run_id"] == "r2"
    assert alerts["CROSS_S"]["order_quantity"] == 24.0 and alerts["CROSS_S"]["reorder_point"] == 5.0
    assert alerts["CROSS_S"]["backorders"] == 2.0 and alerts["CROSS_S"]["stream_id"] == "test-stream"


def test_ingest_takes_inventory_movements(spark, tmp_path: Path) -> None:
    """The new entity goes through ingest's contract: a negative receipt is quarantined with a reason."""
    path = tmp_path / "inventory_movements.csv"
    path.write_text(
        "event_id,sku,timestamp,movement,quantity\n"
        "e1,A,2026-12-02 10:00:00,receipt,5\n"
        "e2,A,2026-12-02 10:05:00,adjustment,-2\n"
        "e3,A,2026-12-02 10:10:00,receipt,-1\n"
        "e4,A,2026-12-02 10:15:00,teleport,1\n"
    )
    validated = validate(read_raw(spark, str(path)), "inventory_movements", IngestConfig(), source=str(path))
    good = {row["event_id"]: row for row in validated.good.collect()}
    assert set(good) == {"e1", "e2"} and good["e1"]["location"] == "ALL"
    reasons = {row["event_id"]: row["reason"] for row in validated.quarantine.collect()}
    assert reasons["e3"].startswith("quantity is not positive (-1) for movement receipt")
    assert reasons["e4"].startswith("movement is not one of receipt, adjustment, order_placed, order_cancelled")


# ---- exactly once across SIGKILL and restart -------------------------------------------------------

# Each list is one commit (one file) of the source table; with --max-files-per-trigger 1 every micro-batch
# takes at most one commit of each source, so batch n reads SALES_COMMITS[n] and MOVEMENT_COMMITS[n].
SALES_COMMITS: list[list[tuple[Any, ...]]] = [
    [("A", "L1", SNAPSHOT, 9.0, False), ("A", "L1", DAY, 5.0, False), ("C", "L1", DAY, 1.0, False)],
    [("A", "L1", DAY + dt.timedelta(days=1), 6.0, False), ("B", "L1", DAY, 3.0, False)],
    [("B", "L1", DAY + dt.timedelta(days=1), 10.0, False), ("A", "L1", DAY + dt.timedelta(days=2), -1.0, True)],
]
MOVEMENT_COMMITS: list[list[tuple[Any, ...]]] = [
    [("m1", "B", "L1", _at(DAY), "order_placed", 10.0), ("m2", "C", "L1", _at(DAY), "adjustment", 4.0)],
    [("m3", "B", "L1", _at(DAY, 12), "receipt", 10.0)],
]
# Lands while the stream is down, after the second kill.
LATE_SALES = [("C", "L1", DAY + dt.timedelta(days=3), 2.0, False), ("A", "L1", DAY + dt.timedelta(days=3), 1.0, False)]
SNAPSHOTS = [("A", "L1", SNAPSHOT, 20.0, 0.0, 0.0), ("B", "L1", SNAPSHOT, 8.0, 0.0, 0.0)]
PLAN_ROWS = [
    ("r1", SNAPSHOT, "A", "L1", "continuous", 10.0, 40.0, 15.0, 0.0, 5.0),
    ("r1", SNAPSHOT, "B", "L1", "periodic", 6.0, 20.0, 10.0, 0.0, 1.0),
]
# A: 20 − 5 = 15 (batch 0), − 6 = 9 ≤ 10 (batch 1: alert), + 1 = 10, − 1 = 9 (late). B: 8 + 10 on order = 18
# (batch 0), − 3 = 15 and the receipt moves 10 from on order to on hand (batch 1), − 10 = 5 ≤ 6 (batch 2: alert).
EXPECTED_ALERTS = {("A", 1), ("B", 2)}


def _expected_positions() -> dict[str, tuple[float, float, float, float, int]]:
    """Per sku: on hand, on order, backorders, position and events, summed by hand from the event contract."""
    snapshot = {sku: (on_hand - backorders, on_order) for sku, _, _, on_hand, on_order, backorders in SNAPSHOTS}
    state = {sku: [net, on_order, 0] for sku, (net, on_order) in snapshot.items()}
    for sku, _, day, quantity, _ in [row for commit in SALES_COMMITS for row in commit] + LATE_SALES:
        if sku not in snapshot or day > SNAPSHOT:
            entry = state.setdefault(sku, [0.0, 0.0, 0])
            entry[0] -= quantity
            entry[2] += 1
    moves = {"receipt": (1, -1), "adjustment": (1, 0), "order_placed": (0, 1), "order_cancelled": (0, -1)}
    for _, sku, _, at, movement, quantity in [row for commit in MOVEMENT_COMMITS for row in commit]:
        if sku not in snapshot or at.date() > SNAPSHOT:
            entry = state.setdefault(sku, [0.0, 0.0, 0])
            entry[0] += moves[movement][0] * quantity
            entry[1] += moves[movement][1] * quantity
            entry[2] += 1
    return {
        sku: (max(net, 0.0), on_order, max(-net, 0.0), net + on_order, events)
        for sku, (net, on_order, events) in state.items()
    }


def _append(lake, rows: list[tuple[Any, ...]], schema: str, name: str) -> None:
    lake.write(lake.spark.createDataFrame(rows, schema).coalesce(1), name)


class StreamProcess:
    """`replenish stream --available-now` in its own process group, so that SIGKILL takes the JVM too."""

    def __init__(self, lake_root: Path, log_dir: Path) -> None:
        self.lake_root = lake_root
        self.log_dir = log_dir
        self.runs = 0

    def arguments(self, *extra: str) -> list[str]:
        """The stream job's arguments of every run here: one commit of each source per micro-batch."""
        return ["--available-now", "--max-files-per-trigger", "1", "--lake", str(self.lake_root), *extra]

    def start(self, failpoint: str | None = None, *extra: str) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        marker = self.log_dir / f"failpoint-{self.runs}"
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        env.pop(FAILPOINT_ENV, None)
        if failpoint:
            env[FAILPOINT_ENV] = failpoint
            env[FAILPOINT_FILE_ENV] = str(marker)
        command = [
            sys.executable,
            "-m",
            "replenish_jobs.cli",
            "stream",
            *self.arguments(),
            "--set",
            "spark.master=local[2]",
            "--set",
            "spark.conf.spark.driver.memory=1g",
            "--set",
            "spark.conf.spark.sql.shuffle.partitions=2",
            "--set",
            "spark.conf.spark.databricks.delta.snapshotPartitions=2",
            *extra,
        ]
        log = open(self.log_dir / f"stream-{self.runs}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return process, marker

    def log(self) -> str:
        return (self.log_dir / f"stream-{self.runs}.log").read_text()[-4000:]

    def kill_at(self, failpoint: str, *, timeout: float = 900) -> None:
        """Run until the batch reaches `failpoint`, then SIGKILL the process group mid-batch."""
        process, marker = self.start(failpoint)
        deadline = time.monotonic() + timeout
        try:
            while not marker.exists():
                if process.poll() is not None:
                    pytest.fail(f"the stream ended (rc {process.returncode}) before {failpoint}:\n{self.log()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the stream did not reach {failpoint} in {timeout} s:\n{self.log()}")
                time.sleep(0.5)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def run_in_process(self, spark, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        """Run to the end in the test's own session (a restart needs no new JVM): exit code and output."""
        from replenish_jobs import stream

        code = stream.main(self.arguments(*extra, "--set", "lake.engine=delta-spark"), spark=spark)
        captured = capsys.readouterr()
        return code, captured.out + captured.err


def _check_positions(lake) -> None:
    positions = {row["sku"]: row for row in lake.read("gold.inventory_position").collect()}
    expected = _expected_positions()
    assert set(positions) == set(expected)
    for sku, (on_hand, on_order, backorders, position, events) in expected.items():
        row = positions[sku]
        got = (row["on_hand"], row["on_order"], row["backorders"], row["inventory_position"], row["events_applied"])
        assert got == (on_hand, on_order, backorders, position, events), sku


def _alerts_by_stream(lake) -> dict[str, Counter]:
    alerts: dict[str, Counter] = {}
    for row in lake.read("gold.reorder_alerts").collect():
        alerts.setdefault(row["stream_id"], Counter())[(row["sku"], row["batch_id"])] += 1
    return alerts


@pytest.mark.slow
def test_exactly_once_across_sigkill_mid_batch_and_restart(
    spark, lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed with the alerts committed and the positions not, restarted, killed with both committed and the
    checkpoint not, restarted with more events landed meanwhile: every event counted once, every alert once.
    Then the checkpoint is lost: the run is refused, and `--reset` rebuilds the same positions.

    The stream is killed in processes of its own (SIGKILL takes their JVM); the restarts after the second
    kill run in the test's session, which changes nothing a restart depends on: the lake and checkpoint."""
    for rows in SALES_COMMITS:
        _append(lake, rows, SALES, "bronze.sales")
    for rows in MOVEMENT_COMMITS:
        _append(lake, rows, MOVEMENTS, "bronze.inventory_movements")
    _append(lake, SNAPSHOTS, INVENTORY, "bronze.inventory")
    _append(lake, PLAN_ROWS, PLAN, "gold.replenishment_plan")
    stream = StreamProcess(Path(lake.root), tmp_path)

    stream.kill_at("after_alerts@1")
    alerts = lake.read("gold.reorder_alerts").collect()
    assert {(row["sku"], row["batch_id"]) for row in alerts} == {("A", 1)}  # committed before the kill
    assert {row["batch_id"] for row in lake.read("gold.inventory_position").collect()} <= {None, 0}

    stream.kill_at("after_positions@2")
    _append(lake, LATE_SALES, SALES, "bronze.sales")
    code, output = stream.run_in_process(spark, capsys)
    assert code == 0, output[-4000:]

    _check_positions(lake)
    alerts = _alerts_by_stream(lake)
    assert len(alerts) == 1
    (counted,) = alerts.values()
    assert set(counted) == EXPECTED_ALERTS and max(counted.values()) == 1, counted

    shutil.rmtree(Path(lake.root) / "_checkpoints")
    code, output = stream.run_in_process(spark, capsys)
    assert code == 2 and "rerun with --reset" in output, output[-4000:]
    code, output = stream.run_in_process(spark, capsys, "--reset")
    assert code == 0, output[-4000:]
    _check_positions(lake)
    alerts = _alerts_by_stream(lake)
    assert len(alerts) == 2 and all(set(c) == EXPECTED_ALERTS and max(c.values()) == 1 for c in alerts.values())
