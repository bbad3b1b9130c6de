"""The forecast job on local Spark: four tables, lineage, warm starts and the shared scoring."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from replenish.forecast import METRICS, TABLE_COLUMNS, backtest_metrics
from replenish.forecast.synthetic import synthetic_demand
from replenish.io.lake import Lake
from replenish_jobs import forecast, forecast_arima

pytestmark = pytest.mark.spark

SEED = 3  # gives two smooth series, one intermittent, one that never sells

SETTINGS = [
    "--set",
    "forecast.horizon=7",
    "--set",
    "forecast.backtest.folds=2",
    "--set",
    "forecast.series_per_partition=2",
    "--set",
    "forecast.daily.train_periods=84",
    "--set",
    "forecast.lstm.enabled=false",  # the LSTM candidate has its own tests (test_lstm.py)
]


def _write_inputs(spark, lake) -> pd.DataFrame:
    """Four daily series: smooth, intermittent, never sold and recently launched, with a profile."""
    panel = synthetic_demand(4, 100, seed=SEED, intermittent_share=0.25, zero_share=0.25).drop(columns="true_demand")
    kinds = panel.groupby(["sku", "location"])["kind"].first()
    smooth = kinds[kinds == "smooth"].index
    assert len(smooth) >= 2, kinds  # one stays smooth, one is declared new
    new_sku, new_location = smooth[-1]
    panel.loc[panel["sku"].eq(new_sku) & panel["location"].eq(new_location), "kind"] = "new"
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


@pytest.fixture(scope="module")
def two_runs(spark, tmp_path_factory):
    """A cold `forecast` run, then the next night's warm `forecast-arima` run with a shorter horizon."""
    lake = Lake(spark, str(tmp_path_factory.mktemp("forecast") / "lakehouse"))
    panel = _write_inputs(spark, lake)
    _run(forecast, lake, "run-1", "2024-05-01")
    _run(forecast_arima, lake, "run-2", "2024-05-02", "--horizon", "3")
    return lake, panel


def _of_run(lake, name: str, run_id: str) -> pd.DataFrame:
    return lake.read(name).where(F.col("run_id") == run_id).toPandas()


def test_forecast_job_writes_the_four_tables(two_runs) -> None:
    lake, panel = two_runs
    n_series = panel.groupby(["sku", "location"]).ngroups
    for name, columns in TABLE_COLUMNS.items():
        assert tuple(lake.read(name).columns) == columns, name

    registry = _of_run(lake, "gold.model_registry", "run-1")
    assert registry["status"].isin(["ok", "fallback"]).all()
    assert registry.groupby(["sku", "location"]).ngroups == n_series
    assert not registry.duplicated(["sku", "location", "model"]).any()
    assert {"seasonal_naive", "arima", "zero", "recent_mean"} <= set(registry["model"])
    lineage = json.loads(registry["input_versions"].iat[0])
    assert lineage["silver.demand"] == 0 and lineage["silver.series_profile"] == 0
    assert lineage["gold.model_registry"] is None
    assert registry["config_hash"].str.len().eq(12).all()

    forecasts = _of_run(lake, "gold.forecast", "run-1")
    assert len(forecasts) == len(registry) * 7
    assert (forecasts["run_date"] == dt.date(2024, 5, 1)).all()
    assert forecasts["date"].min() == panel["date"].max() + dt.timedelta(days=1)
    ordered = forecasts[["yhat_lo_95", "yhat_lo_80", "yhat", "yhat_hi_80", "yhat_hi_95"]].to_numpy()
    assert (ordered[:, 0] >= 0).all() and (np.diff(ordered, axis=1) >= -1e-9).all()

    backtest = _of_run(lake, "gold.forecast_backtest", "run-1")
    assert set(backtest["fold"]) == {1, 2} and (backtest["horizon"] == 7).all()
    assert len(_of_run(lake, "gold.backtest_forecast", "run-1")) == len(backtest) * 7


def test_next_run_reuses_the_stored_arima_orders(two_runs) -> None:
    lake, _ = two_runs
    registry = lake.read("gold.model_registry").select(
        "run_id", "model", "reason", "input_versions", F.get_json_object("params", "$.selection").alias("selection")
    )
    arima = registry.where(F.col("model") == "arima").toPandas().set_index("run_id")
    assert (arima.loc[["run-1"], "selection"] == "search").all()
    assert (arima.loc[["run-2"], "selection"] == "warm").all()
    assert arima.loc[["run-2"], "reason"].str.contains("warm start").all()
    second = registry.where(F.col("run_id") == "run-2").toPandas()
    assert "seasonal_naive" not in set(second["model"])  # forecast-arima: the routed model only
    assert json.loads(second["input_versions"].iat[0])["gold.model_registry"] is not None
    assert _of_run(lake, "gold.forecast", "run-2")["step"].max() == 3


def test_warm_start_reads_the_newest_arima_row_or_arima_failure(spark) -> None:
    from replenish.forecast.registry import latest_arima_orders

    rows = [
        ("r1", dt.date(2024, 6, 1), "D", "A", "L", "arima", '{"order": [1, 0, 0]}'),
        ("r2", dt.date(2024, 6, 2), "D", "A", "L", "ets", '{"arima_failed_on": "2024-06-02"}'),
        ("r1", dt.date(2024, 6, 1), "D", "B", "L", "arima", '{"order": [0, 1, 1]}'),
        ("r2", dt.date(2024, 6, 2), "D", "B", "L", "seasonal_naive", '{"season_length": 7}'),
        ("r2", dt.date(2024, 6, 2), "W", "B", "L", "arima", '{"order": [2, 0, 0]}'),
        ("r2", dt.date(2024, 6, 2), "D", "C", "L", "croston_sba", '{"alpha": 0.1}'),
    ]
    columns = ["run_id", "run_date", "freq", "sku", "location", "model", "params"]
    stored = latest_arima_orders(spark.createDataFrame(rows, columns), "D").toPandas().set_index("sku")
    assert sorted(stored.index) == ["A", "B"]
    assert json.loads(stored.loc["A", "warm_params"]) == {"arima_failed_on": "2024-06-02"}
    assert json.loads(stored.loc["B", "warm_params"]) == {"order": [0, 1, 1]}  # daily, the ARIMA row
    assert stored.loc["B", "warm_run_id"] == "r1"


def test_backtest_metrics_rescore_the_written_rows_identically(two_runs) -> None:
    lake, _ = two_runs
    written = _of_run(lake, "gold.forecast_backtest", "run-1")
    rescored = backtest_metrics(lake.read("gold.backtest_forecast").where(F.col("run_id") == "run-1")).toPandas()
    keys = ["sku", "location", "model", "fold"]
    merged = written.merge(rescored, on=keys, suffixes=("", "_again"))
    assert len(merged) == len(written) > 0
    for metric in ("mase", "wape", "bias", "rmse", "coverage_80", "coverage_95"):
        np.testing.assert_allclose(merged[metric], merged[f"{metric}_again"], equal_nan=True)


def test_backtest_metrics_equal_the_pandas_scores_at_the_edges(spark) -> None:
    """Censored and missing actuals, a zero scale, zero demand, a fold with nothing scored, a NaN bound."""
    from replenish.forecast import score_frame

    def fold(name: str, y: list, censored: list, scale: float | None, hi_95: float = 9.0) -> list[dict]:
        return [
            {"run_id": "r", "sku": name, "location": "L", "model": "lstm", "fold": 1, "cutoff": dt.date(2024, 1, 1),
             "y": value, "censored": flag, "yhat": 2.0, "yhat_lo_80": 1.0, "yhat_hi_80": 3.0, "yhat_lo_95": 0.0,
             "yhat_hi_95": hi_95, "mase_scale": scale}
            for value, flag in zip(y, censored, strict=True)
        ]  # fmt: skip

    rows = [
        *fold("plain", [1.0, 2.0, 5.0, 0.0], [False] * 4, 1.5),
        *fold("censored", [1.0, None, 4.0, 3.0], [False, False, True, False], 2.0),
        *fold("zero_scale", [2.0, 2.0], [False, False], 0.0),
        *fold("no_scale", [2.0, 3.0], [False, False], None),
        *fold("no_demand", [0.0, 0.0, 0.0], [False] * 3, 1.0),
        *fold("all_censored", [1.0, 2.0], [True, True], 1.0),
        *fold("nan_bound", [1.0, 4.0], [False, False], 1.0, hi_95=float("nan")),
    ]
    frame = pd.DataFrame(rows)
    expected = score_frame(frame, ("run_id", "sku", "location", "model", "fold")).set_index("sku").sort_index()
    scores = backtest_metrics(spark.createDataFrame(frame))
    # undefined measures are null, as Arrow stores the per-series path's NaN: averages skip them
    assert scores.where(" OR ".join(f"isnan({metric})" for metric in METRICS)).count() == 0
    got = scores.toPandas().set_index("sku").sort_index()
    assert list(got.index) == list(expected.index)
    assert (got["n_scored"] == expected["n_scored"]).all() and (got["horizon"] == expected["horizon"]).all()
    for metric in METRICS:
        np.testing.assert_allclose(got[metric].astype(float), expected[metric].astype(float), equal_nan=True)
    assert np.isnan(got.loc["all_censored", "mase"]) and got.loc["all_censored", "n_scored"] == 0


def test_full_search_option_turns_the_warm_start_off() -> None:
    from replenish import config
    from replenish.forecast import ForecastConfig
    from replenish_jobs.harness import build_parser

    args = build_parser("forecast", "", forecast.add_arguments).parse_args(["--full-search", "--model", "arima"])
    cfg = config.section(config.load("local"), "forecast", ForecastConfig)
    assert cfg.plan("D", model=args.model, full_search=args.full_search).warm_start is False
    assert cfg.plan("D").warm_start is True
