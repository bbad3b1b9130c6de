"""Shared fixtures: one local Spark session for the whole run, and a fresh lake per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.driver.memory": "2g",
    "spark.sql.adaptive.enabled": "true",
    # delta-spark: a tiny table's snapshot in 2 tasks, not the default 50 (docs/lake.md, test timings)
    "spark.databricks.delta.snapshotPartitions": "2",
}


@pytest.fixture(scope="session")
def spark() -> Iterator:
    """A `local[2]` session shared by every Spark test (starting one costs seconds)."""
    from replenish.session import build_spark

    session = build_spark(
        {"app_name": "replenish-tests", "master": "local[2]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"},
        profile="local",
    )
    yield session
    session.stop()


@pytest.fixture()
def lake(spark, tmp_path: Path):
    """An empty lake under the test's temporary folder."""
    from replenish.io.lake import Lake

    return Lake(spark, str(tmp_path / "lakehouse"))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MLflow store of every job the tests run: a throwaway SQLite file, never ./mlruns."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous
