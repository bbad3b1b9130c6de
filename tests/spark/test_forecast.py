"""The forecast job on local Spark: four tables, lineage, warm starts and the shared scoring."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from replenish.forecast import TABLE_COLUMNS, backtest_metrics
from replenish.forecast.synthetic import synthetic_demand
from replenish_jobs import forecast, forecast_arima

pytestmark = pytest.mark.spark

SETTINGS = [
    "--set",
    "forecast.horizon=7",
    "--set",
    "forecast.backtest.folds=2",
    "--set",
    "forecast.series_per_partition=2",
    "--set",
    "forecast.daily.train_periods=84",
]


def _write_inputs(spark, lake) -> pd.DataFrame:
    """Six daily series: smooth, intermittent, never sold and recently launched, with a profile."""
    panel = synthetic_demand(6, 100, seed=11, intermittent_share=0.34, zero_share=0.17).drop(columns="true_demand")
    panel.loc[panel["sku"].eq("SKU00001") & panel["location"].eq("L01"), "kind"] = "new"
    lake.write(spark.createDataFrame(panel.drop(columns="kind")), "silver.demand", mode="overwrite")
    classes = {"smooth": "smooth", "intermittent": "intermittent", "zero": "no_demand", "new": "smooth"}
    profile = (
        panel.groupby(["freq", "sku", "location"], as_index=False)["kind"]
        .first()
        .assign(demand_class=lambda f: f["kind"].map(classes), is_new=lambda f: f["kind"].eq("new"))
        .drop(columns="kind")
    )
    lake.write(spark.createDataFrame(profile), "silver.series_profile", mode="overwrite")
    return panel


def _run(job, lake, run_id: str, day: str, *extra: str) -> None:
    argv = ["--lake", lake.root, "--run-id", run_id, "--run-date", day, *SETTINGS, *extra]
    assert job.main(argv, spark=lake.spark) == 0


def test_forecast_job_writes_the_four_tables_and_warm_starts(spark, lake) -> None:
    panel = _write_inputs(spark, lake)
    n_series = panel.groupby(["sku", "location"]).ngroups
    _run(forecast, lake, "run-1", "2024-05-01")

    tables = {name: lake.read(name) for name in TABLE_COLUMNS}
    for name, columns in TABLE_COLUMNS.items():
        assert tuple(tables[name].columns) == columns, name

    registry = tables["gold.model_registry"].toPandas()
    assert registry["run_id"].eq("run-1").all() and registry["status"].isin(["ok", "fallback"]).all()
    assert set(registry.groupby(["sku", "location"]).size()) <= {1, 2}
    assert registry.groupby(["sku", "location"]).ngroups == n_series
    assert {"seasonal_naive", "arima", "zero", "recent_mean"} <= set(registry["model"])
    lineage = json.loads(registry["input_versions"].iat[0])
    assert lineage["silver.demand"] == lake.version("silver.demand")
    assert lineage["gold.model_registry"] is None
    assert registry["config_hash"].str.len().eq(12).all()

    forecasts = tables["gold.forecast"].toPandas()
    assert len(forecasts) == len(registry) * 7
    assert (forecasts["run_date"] == dt.date(2024, 5, 1)).all()
    assert forecasts["date"].min() == panel["date"].max() + dt.timedelta(days=1)
    ordered = forecasts[["yhat_lo_95", "yhat_lo_80", "yhat", "yhat_hi_80", "yhat_hi_95"]].to_numpy()
    assert (ordered[:, 0] >= 0).all() and (np.diff(ordered, axis=1) >= -1e-9).all()

    backtest = tables["gold.forecast_backtest"].toPandas()
    assert set(backtest["fold"]) == {1, 2} and (backtest["horizon"] == 7).all()
    assert len(tables["gold.backtest_forecast"].toPandas()) == len(backtest) * 7

    # the next night: stored ARIMA orders are reused, then a forced full search
    _run(forecast, lake, "run-2", "2024-05-02")
    _run(forecast, lake, "run-3", "2024-05-02", "--full-search")
    arima = (
        lake.read("gold.model_registry")
        .where(F.col("model") == "arima")
        .select("run_id", "params", "reason", F.get_json_object("params", "$.selection").alias("selection"))
        .toPandas()
        .set_index("run_id")
    )
    assert (arima.loc[["run-1"], "selection"] == "search").all()
    assert (arima.loc[["run-2"], "selection"] == "warm").all()
    assert arima.loc[["run-2"], "reason"].str.contains("warm start").all()
    assert (arima.loc[["run-3"], "selection"] == "search").all()
    run_2 = lake.read("gold.model_registry").where(F.col("run_id") == "run-2").select("input_versions").first()[0]
    assert json.loads(run_2)["gold.model_registry"] is not None


def test_backtest_metrics_rescore_the_written_rows_identically(spark, lake) -> None:
    _write_inputs(spark, lake)
    _run(forecast, lake, "run-1", "2024-05-01", "--model", "baseline")
    written = lake.read("gold.forecast_backtest").toPandas()
    rescored = backtest_metrics(lake.read("gold.backtest_forecast")).toPandas()
    keys = ["sku", "location", "model", "fold"]
    merged = written.merge(rescored, on=keys, suffixes=("", "_again"))
    assert len(merged) == len(written) > 0
    for metric in ("mase", "wape", "bias", "rmse", "coverage_80", "coverage_95"):
        np.testing.assert_allclose(merged[metric], merged[f"{metric}_again"], equal_nan=True)
    assert set(written["model"]) == {"seasonal_naive"}


def test_arima_entry_point_fits_only_the_routed_model(spark, lake) -> None:
    _write_inputs(spark, lake)
    _run(forecast_arima, lake, "run-a", "2024-05-01", "--horizon", "3")
    models = lake.read("gold.model_registry").select("model").distinct().toPandas()["model"]
    assert "seasonal_naive" not in set(models) and "arima" in set(models)
    assert lake.read("gold.forecast").agg(F.max("step")).first()[0] == 3
