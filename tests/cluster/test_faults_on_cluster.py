"""Faults on the standalone cluster: an executor killed mid-forecast, the driver killed mid-run.

Every forecast is sent as the README tells users: the wheel of `make dist` on `--py-files`, run by an
interpreter that does not have replenish installed. One small lake is prepared once (generate, ingest,
features, on the local session), and the clean forecast every faulted run must equal is run on the
local session too: the per-series fits do not depend on where they run (the cluster profile differs
from the local one in Spark settings only), so a faulted cluster run must give the same rows as a
clean local one. Each test works on its own copy of the lake, with the clean run's run id, so the gold
tables can be compared row for row.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from replenish.io.catalog import table

if TYPE_CHECKING:
    from tests.cluster.conftest import Shipped, StandaloneCluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.faults]

JOBS = Path(__file__).resolve().parents[2] / "jobs"
RUN_ID = "20250601T000000-faults"
FORECAST_TABLES = ("gold.forecast", "gold.backtest_forecast", "gold.forecast_backtest", "gold.model_registry")
# Columns that legitimately differ between two runs of the same data: wall-clock fit time, the hash of
# the settings, which include the lake path (each run here has its own copy of the lake), and the MLflow
# run that recorded the attempt (each submission is a run of its own).
RUN_DEPENDENT_COLUMNS = ("fit_seconds", "config_hash", "mlflow_run_id")
# Plan nodes only the forecast stage has: the fits over series, and the writes of their cached records.
FORECAST_NODES = ("MapInPandas", "InMemoryTableScan")
WAIT_SECONDS = 900  # bound on every wait for a job to reach a point or to end (slow, shared machines)


def _common(lake: Path, *, profile: str = "cluster") -> list[str]:
    return [
        "--lake",
        str(lake),
        "--profile",
        profile,
        "--run-date",
        "2025-06-01",
        "--run-id",
        RUN_ID,
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=4",
        "--set",
        "forecast.backtest.folds=2",
        "--set",
        "forecast.series_per_partition=2",  # several forecast tasks, so a kill lands mid-stage
        # The LSTM candidate off: its multi-worker training is not bit-reproducible from run to run, and
        # these tests compare every value with a clean run's (the per-series fits are deterministic).
        "--set",
        "forecast.lstm.enabled=false",
    ]


def _forecast_args(lake: Path, *, profile: str = "cluster") -> list[str]:
    return ["--freq", "W", "--horizon", "4", *_common(lake, profile=profile)]


@dataclass(frozen=True)
class Prepared:
    """The lake after generate, ingest and features, and the clean forecast run's copy of it."""

    base: Path
    clean: Path


@pytest.fixture(scope="module")
def prepared(spark, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """Generate, ingest, features and the clean forecast on the local session.

    In-process they cost a fraction of four applications on the cluster, and the pipeline test
    already sends every job with spark-submit.
    """
    from replenish_jobs import features, forecast, generate, ingest

    root = tmp_path_factory.mktemp("faults")
    base, raw = root / "base", root / "raw"
    common = _common(base, profile="local")
    data = ["--skus", "8", "--locations", "2", "--days", "240", "--users", "20", "--out", str(raw)]
    assert generate.main([*data, *common], spark=spark) == 0
    assert ingest.main(["--all", str(raw), *common], spark=spark) == 0
    assert features.main(["--freq", "W", *common], spark=spark) == 0
    clean = root / "clean"
    shutil.copytree(base, clean)
    assert forecast.main(_forecast_args(clean, profile="local"), spark=spark) == 0
    return Prepared(base=base, clean=clean)


def _rows(spark, lake: Path, name: str) -> pd.DataFrame:
    """All rows of a table, run-dependent columns dropped, sorted by the table's keys.

    Read with Spark: delta-rs' SQL returns string views, which pyarrow 14 cannot import.
    """
    from replenish.io.lake import Lake

    frame = Lake(spark, str(lake)).read(name).toPandas()
    frame = frame.drop(columns=[c for c in RUN_DEPENDENT_COLUMNS if c in frame.columns])
    return frame.sort_values(_keys(name)).reset_index(drop=True)


def _keys(name: str) -> list[str]:
    return list(table(name).keys)


def assert_same_gold(spark, lake: Path, clean: Path) -> None:
    for name in FORECAST_TABLES:
        got, expected = _rows(spark, lake, name), _rows(spark, clean, name)
        keys = _keys(name)
        assert not got.duplicated(keys).any(), f"{name} has duplicate rows"
        assert len(got) == len(expected), f"{name}: {len(got)} rows, the clean run wrote {len(expected)}"
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _executor_pid(app_id: str, executor_id: str) -> int | None:
    """The process id of an executor JVM, from its command line (`CoarseGrainedExecutorBackend`)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if "org.apache.spark.executor.CoarseGrainedExecutorBackend" not in words:
            continue
        pairs = dict(itertools.pairwise(words))
        if pairs.get("--executor-id") == executor_id and pairs.get("--app-id") == app_id:
            return int(proc.name)
    return None


def _kill_executor_in_forecast_stage(ui: str, job: subprocess.Popen) -> tuple[str, str]:
    """SIGKILL an executor while it runs a task of the forecast stage.

    Polls the application's REST API: a running SQL execution whose plan fits the series (or writes
    their cached records), and an executor with an active task. Returns (application id, killed executor id).
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if job.poll() is not None:
            pytest.fail(f"the forecast job ended ({job.returncode}) before a forecast task was seen running")
        try:
            apps = _get(f"{ui}/api/v1/applications")
            app_id = apps[0]["id"]
            executions = _get(f"{ui}/api/v1/applications/{app_id}/sql?details=true&planDescription=true&length=1000")
            fitting = [
                e
                for e in executions
                if e["status"] == "RUNNING" and any(node in e.get("planDescription", "") for node in FORECAST_NODES)
            ]
            busy = [
                e["id"]
                for e in _get(f"{ui}/api/v1/applications/{app_id}/executors")
                if e["id"] != "driver" and e["activeTasks"] > 0
            ]
        except (OSError, ValueError, IndexError, KeyError):
            time.sleep(0.2)
            continue
        if fitting and busy:
            pid = _executor_pid(app_id, busy[0])
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                return app_id, busy[0]
        time.sleep(0.2)
    pytest.fail(f"no forecast task was seen running within {WAIT_SECONDS} s")


@pytest.fixture()
def lake_copy(prepared: Prepared, tmp_path: Path) -> Iterator[Path]:
    lake = tmp_path / "lakehouse"
    shutil.copytree(prepared.base, lake)
    yield lake


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(job: subprocess.Popen) -> None:
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)


def test_an_executor_killed_mid_forecast_is_retried_to_the_clean_output(
    spark,
    standalone_cluster: StandaloneCluster,
    shipped_package: Shipped,
    prepared: Prepared,
    lake_copy: Path,
    tmp_path: Path,
) -> None:
    ui_port = _free_port()
    command, env = standalone_cluster.submit_command(
        JOBS / "forecast.py",
        _forecast_args(lake_copy),
        shipped=shipped_package,
        conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui_port), "spark.ui.showConsoleProgress": "false"},
    )
    log = tmp_path / "forecast.log"
    job = _start(command, env, log)
    try:
        app_id, executor_id = _kill_executor_in_forecast_stage(f"http://127.0.0.1:{ui_port}", job)
        code = job.wait(timeout=WAIT_SECONDS)
    finally:
        _stop(job)
    assert code == 0, log.read_text()[-6000:]
    # the worker whose executor died started a new one for the application: the retry ran there
    executors = {p.name for p in standalone_cluster.log_dir.glob(f"work-*/{app_id}/*") if p.is_dir()}
    assert executor_id in executors and len(executors) > 2, executors
    assert_same_gold(spark, lake_copy, prepared.clean)


def _committed(lake: Path, name: str) -> bool:
    return (lake / table(name).relative_path / "_delta_log" / f"{0:020d}.json").exists()


def test_a_driver_killed_mid_run_and_resubmitted_with_its_run_id_writes_each_row_once(
    spark,
    standalone_cluster: StandaloneCluster,
    shipped_package: Shipped,
    prepared: Prepared,
    lake_copy: Path,
    tmp_path: Path,
) -> None:
    command, env = standalone_cluster.submit_command(
        JOBS / "forecast.py", _forecast_args(lake_copy), shipped=shipped_package
    )
    log = tmp_path / "first-attempt.log"
    job = _start(command, env, log)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        # the driver dies right after the job's first commit, with the other tables still to write
        while not any(_committed(lake_copy, name) for name in FORECAST_TABLES):
            if job.poll() is not None:
                pytest.fail(f"the job ended ({job.returncode}) before its first commit:\n{log.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no gold table was committed within {WAIT_SECONDS} s")
            time.sleep(0.05)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    finally:
        _stop(job)
    committed = [name for name in FORECAST_TABLES if _committed(lake_copy, name)]
    assert 0 < len(committed) < len(FORECAST_TABLES), f"the kill should land between commits: {committed}"

    resubmitted = standalone_cluster.submit(
        JOBS / "forecast.py", _forecast_args(lake_copy), shipped=shipped_package, timeout=WAIT_SECONDS
    )
    summary = json.loads([line for line in resubmitted.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["run_id"] == RUN_ID
    assert all(summary["rows"][name] == 0 for name in committed), summary["rows"]
    assert_same_gold(spark, lake_copy, prepared.clean)
