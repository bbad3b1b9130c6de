"""The pipeline on a real standalone cluster, each job sent with `spark-submit` like a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def _sql(uri: str, query: str) -> list[dict]:
    return pa.table(QueryBuilder().register("t", DeltaTable(uri)).execute(query)).to_pylist()


def _summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def test_ingest_features_forecast_inventory_on_a_standalone_cluster(
    standalone_cluster, shipped_package, tmp_path: Path
) -> None:
    lake, raw = tmp_path / "lakehouse", tmp_path / "raw"
    common = [
        "--lake",
        str(lake),
        "--profile",
        "cluster",
        "--run-date",
        "2025-06-01",
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=4",
        "--set",
        "forecast.backtest.folds=3",  # the default 6 doubles the forecast's time; 3 test the same paths
        # The LSTM's distributed training, shipped the same way, is test_lstm_on_cluster.py's
        "--set",
        "forecast.lstm.enabled=false",
    ]
    # one application, as a nightly run-all is sent: each executor JVM starts once, not once per job
    completed = standalone_cluster.submit(
        JOBS / "run_all.py",
        [
            "--stages",
            "generate,ingest,features,forecast,inventory",
            "--data",
            str(raw),
            "--freq",
            "W",
            "--horizon",
            "4",
            "--set",
            "generate.skus=16",
            "--set",
            "generate.locations=2",
            "--set",
            "generate.days=240",
            "--set",
            "generate.users=40",
            *common,
        ],
        shipped=shipped_package,  # the wheel on --py-files, as the README tells users
    )
    summary = _summary(completed.stdout)
    assert summary["job"] == "run-all"
    assert list(summary["stage_seconds"]) == ["generate", "ingest", "features", "forecast", "inventory"]
    assert summary["lake_engine"] == "delta-spark"  # the JARs came with spark-submit --packages

    sales = _sql(f"{lake}/bronze/sales", "SELECT count(*) AS n, count(DISTINCT sku) AS skus FROM t")[0]
    assert sales["n"] > 0 and sales["skus"] > 1
    series = _sql(f"{lake}/silver/series_profile", "SELECT count(*) AS n FROM t WHERE freq = 'W'")[0]["n"]
    assert series > 0
    forecast = _sql(
        f"{lake}/gold/forecast",
        "SELECT count(DISTINCT concat(sku, '|', location)) AS series, max(step) AS horizon, "
        "sum(CASE WHEN yhat_lo_95 <= yhat AND yhat <= yhat_hi_95 THEN 0 ELSE 1 END) AS outside FROM t",
    )[0]
    assert forecast == {"series": series, "horizon": 4, "outside": 0}
    plan = _sql(f"{lake}/gold/replenishment_plan", "SELECT count(*) AS n FROM t")[0]["n"]
    assert plan == series
    # the work really ran on the workers' executors, not in the driver
    app_logs = list((standalone_cluster.log_dir).glob("work-*/app-*/*/stderr"))
    assert len({p.parts[-4] for p in app_logs}) == 2, "both workers should have run executors"
