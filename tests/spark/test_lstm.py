"""The LSTM's Spark side: windows, the Petastorm path, bad input, and `forecast --model lstm` end to end."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.forecast import TABLE_COLUMNS, ForecastConfig
from replenish.forecast.synthetic import synthetic_demand
from replenish.io.lake import Lake
from replenish.neural import pipeline
from replenish.neural.settings import LstmSettings
from replenish.neural.windows import COVARIATES, HISTORY_CHANNELS, WindowSpec, training_windows

pytestmark = pytest.mark.spark

LSTM_SETTINGS = [
    "--set",
    "forecast.horizon=7",
    "--set",
    "forecast.backtest.folds=2",
    "--set",
    "forecast.lstm.history=14",
    "--set",
    "forecast.lstm.epochs=2",
    "--set",
    "forecast.lstm.stride=3",
    "--set",
    "forecast.lstm.batch_size=32",
    "--set",
    "forecast.lstm.row_group_bytes=4096",
]


def _panel(n_series: int = 4, periods: int = 80, seed: int = 3) -> pd.DataFrame:
    panel = synthetic_demand(n_series, periods, seed=seed, intermittent_share=0.25, zero_share=0.0)
    return panel.drop(columns=["true_demand", "kind"]).assign(category=lambda f: "cat" + f["sku"].str[-1])


def test_windows_slice_the_demand_spark_wrote(spark) -> None:
    panel = _panel()
    demand = spark.createDataFrame(panel)
    spec = WindowSpec(freq="D", history=14, horizon=7, projection_dim=2)
    train_end = panel["date"].max() - dt.timedelta(days=10)
    windows = training_windows(demand, spec, train_end=train_end, stride=5, max_origins=3).toPandas()

    assert set(windows["split"]) == {"train", "valid"}
    assert windows.groupby(["sku", "location"])["split"].apply(lambda s: (s == "valid").sum()).eq(1).all()
    assert (windows["history"].map(len) == 14 * HISTORY_CHANNELS).all()
    assert (windows["future"].map(len) == 7 * len(COVARIATES)).all()
    assert (windows["projection"].map(len) == 2).all()
    # every target ends by train_end; validation comes after every training target of the series
    last_target = pd.to_datetime(windows["origin"]) + pd.Timedelta(days=6)
    assert (last_target.dt.date <= train_end).all()
    for _, series in windows.groupby(["sku", "location"]):
        valid = pd.Timestamp(series.loc[series["split"] == "valid", "origin"].iloc[0])
        assert (pd.to_datetime(series.loc[series["split"] == "train", "origin"]) + pd.Timedelta(days=6) < valid).all()
    # values: one window against the panel
    row = windows.iloc[0]
    rows = panel[(panel["sku"] == row["sku"]) & (panel["location"] == row["location"])].set_index("date")
    rows.index = pd.to_datetime(rows.index)
    origin = pd.Timestamp(row["origin"])
    past = rows.loc[origin - pd.Timedelta(days=14) : origin - pd.Timedelta(days=1)]
    history = np.asarray(row["history"]).reshape(14, HISTORY_CHANNELS)
    observed = ~past["censored"].to_numpy()
    np.testing.assert_allclose(history[:, 0], np.where(observed, past["demand"], 0.0), rtol=1e-6)
    np.testing.assert_allclose(history[:, 1], observed.astype(float))
    np.testing.assert_allclose(history[:, 2], past["promo"].clip(0, 1), rtol=1e-6)
    future = rows.loc[origin : origin + pd.Timedelta(days=6)]
    np.testing.assert_allclose(row["target"], np.where(~future["censored"], future["demand"], 0.0), rtol=1e-6)
    np.testing.assert_allclose(row["scale"], 1 + history[:, 0].sum() / max(history[:, 1].sum(), 1), rtol=1e-5)


def test_short_series_are_padded_and_nan_covariates_neutral(spark) -> None:
    panel = _panel(n_series=2, periods=40)
    panel.loc[panel.index[:5], "promo"] = np.nan
    panel.loc[panel.index[5:10], "price_ratio"] = np.nan
    demand = spark.createDataFrame(panel)
    spec = WindowSpec(freq="D", history=30, horizon=7)
    train_end = panel["date"].max()
    windows = training_windows(demand, spec, train_end=train_end, stride=3, max_origins=5, min_history=4).toPandas()
    assert len(windows) > 0
    history = np.stack(windows["history"].map(np.asarray))
    assert np.isfinite(history).all()
    first = windows.sort_values("origin").iloc[0]
    pad = np.asarray(first["history"]).reshape(30, HISTORY_CHANNELS)
    assert pad[0, 1] == 0.0  # a padded period is not observed


def test_short_history_cuts_are_what_a_new_series_looks_like(spark) -> None:
    """A window cut to k periods equals the window of the same series had it started k periods before the origin."""
    panel = _panel(n_series=3, periods=60).assign(censored=False)
    spec = WindowSpec(freq="D", history=14, horizon=7)
    train_end = panel["date"].max()
    options = {"train_end": train_end, "stride": 5, "max_origins": 4, "min_history": 4}
    plain = training_windows(spark.createDataFrame(panel), spec, **options).toPandas()
    all_cut = training_windows(spark.createDataFrame(panel), spec, short_history_share=1.0, **options).toPandas()
    assert len(all_cut) == len(plain) and (all_cut["split"] == "train_cut").sum() == (plain["split"] == "train").sum()
    assert (all_cut["split"] != "train").all()  # share 1: every train window is cut, valid ones never

    def valid_histories(frame: pd.DataFrame) -> list[list[float]]:
        return frame[frame["split"] == "valid"].sort_values(["sku", "location"])["history"].map(list).tolist()

    assert valid_histories(all_cut) == valid_histories(plain)

    def kept(history: np.ndarray) -> int:
        return int(np.asarray(history).reshape(14, HISTORY_CHANNELS)[:, 1].sum())

    cuts = all_cut[all_cut["split"] == "train_cut"].assign(k=lambda f: f["history"].map(kept))
    assert (plain["history"].map(kept) == 14).all()
    assert cuts["k"].between(4, 13).all()
    assert cuts["k"].nunique() > 3  # lengths are drawn, not one
    again = training_windows(spark.createDataFrame(panel), spec, short_history_share=1.0, **options).toPandas()
    assert sorted(again["history"].map(kept)) == sorted(all_cut["history"].map(kept))  # seeded
    for _, cut in cuts.head(4).iterrows():
        start = pd.Timestamp(cut["origin"]) - pd.Timedelta(days=int(cut["k"]))
        series = (panel["sku"] == cut["sku"]) & (panel["location"] == cut["location"])
        launched = panel[~series | (pd.to_datetime(panel["date"]) >= start)]
        real = training_windows(spark.createDataFrame(launched), spec, **options).toPandas()
        real = real[(real["sku"] == cut["sku"]) & (real["location"] == cut["location"])]
        real = real[real["origin_idx"] == cut["origin_idx"]].iloc[0]
        np.testing.assert_array_equal(np.asarray(cut["history"]), np.asarray(real["history"]))
        np.testing.assert_allclose(cut["scale"], real["scale"], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(cut["target"]), np.asarray(real["target"]))


def test_a_series_with_missing_periods_is_named(spark) -> None:
    panel = _panel(n_series=1, periods=40)
    gap = panel.drop(index=panel.index[20])
    spec = WindowSpec(freq="D", history=7, horizon=3)
    windows = training_windows(spark.createDataFrame(gap), spec, train_end=gap["date"].max())
    with pytest.raises(Exception, match="has missing periods"):
        windows.collect()


def test_no_series_long_enough_is_a_clear_error(spark, tmp_path) -> None:
    panel = _panel(n_series=2, periods=12)
    demand = spark.createDataFrame(panel)
    plan = pipeline.lstm_plan(demand, ForecastConfig(horizon=7).plan("D"), LstmSettings(history=14))
    windows = pipeline.training_windows(demand, plan)
    with pytest.raises(ValidationError, match="long enough for an LSTM window"):
        pipeline.train_lstm(
            spark, windows, plan, model_dir=str(tmp_path / "m"), work_dir=str(tmp_path / "w"), cache_dir=str(tmp_path)
        )


def test_default_training_origins_cover_a_year(spark) -> None:
    """With `stride: null` the origins spread over a year, so every season's day-of-year is trained."""
    demand = spark.createDataFrame(_panel(n_series=2, periods=500))
    settings = LstmSettings(history=14, max_origins=6)
    plan = pipeline.lstm_plan(demand, ForecastConfig(horizon=7).plan("D"), settings)
    windows = pipeline.training_windows(demand, plan).where(F.col("split") != "valid")
    origins = sorted(row["origin"] for row in windows.select("origin").distinct().collect())
    assert settings.stride_for("D") == 61 and len(origins) == 6
    assert (origins[-1] - origins[0]).days == 5 * 61  # targets in every month of the year


def test_petastorm_reads_back_what_spark_wrote_sharded_without_duplicates(spark, tmp_path) -> None:
    from replenish.neural.loader import ArrowLoader, PetastormLoader

    demand = spark.createDataFrame(_panel(n_series=6, periods=70))
    spec = WindowSpec(freq="D", history=14, horizon=7)
    windows = training_windows(demand, spec, train_end=dt.date(2023, 3, 5), stride=4, max_origins=4)
    windows = windows.withColumn("scale", F.monotonically_increasing_id().cast("float"))  # a unique row id
    expected = windows.toPandas().set_index("scale")
    loader = PetastormLoader.from_dataframe(
        windows, cache_dir=f"file://{tmp_path}/cache", row_group_bytes=1024, min_row_groups=4
    )
    assert loader.rows == len(expected) and loader.row_groups >= 2 and loader.bytes > 0
    for memory_cache_bytes in (0, loader.memory_cache_bytes):  # read from Parquet every epoch; held in memory
        loader.memory_cache_bytes = memory_cache_bytes
        seen = []
        for shard in range(2):
            batches = []
            with loader.dataset(cur_shard=shard, shard_count=2, batch_size=16, shuffle=False, seed=0) as dataset:
                per_pass = -(-loader.rows // 16) + 2
                for batch in dataset.take(per_pass):
                    batches.append({k: v.numpy() for k, v in batch.items()})
            ids = np.concatenate([b["scale"] for b in batches])
            # the reader cycles its shard: keep the first pass
            first_pass = ids[: len(np.unique(ids))] if len(np.unique(ids)) < len(ids) else ids
            seen.append(set(first_pass.tolist()))
            history = np.concatenate([b["history"] for b in batches])
            for index, key in enumerate(ids[:20]):
                np.testing.assert_allclose(history[index], np.asarray(expected.loc[key, "history"]), rtol=1e-6)
            assert history.shape[1] == 14 * HISTORY_CHANNELS
        assert not seen[0] & seen[1], f"a window reached both shards (memory_cache_bytes={memory_cache_bytes})"
        assert seen[0] | seen[1] == set(expected.index.tolist())

    # held in memory and shuffled: every epoch is a new order of the whole shard
    with loader.dataset(cur_shard=0, shard_count=2, batch_size=1, shuffle=True, seed=3) as dataset:
        epochs = np.array([b["scale"].numpy()[0] for b in dataset.take(2 * len(seen[0]))]).reshape(2, -1)
    assert [set(epoch.tolist()) for epoch in epochs] == [seen[0], seen[0]]
    assert epochs[0].tolist() != epochs[1].tolist()

    arrow = ArrowLoader.from_files(list(loader.converter.file_urls))
    assert arrow.rows == loader.rows
    with arrow.dataset(cur_shard=0, shard_count=2, batch_size=8, shuffle=False, seed=0) as dataset:
        assert next(iter(dataset))["history"].shape == (8, 14 * HISTORY_CHANNELS)
    loader.delete()


def test_fewer_row_groups_than_shards_is_a_clear_error_not_a_hang(spark, tmp_path) -> None:
    from replenish.neural.loader import PetastormLoader

    demand = spark.createDataFrame(_panel(n_series=2, periods=40))
    windows = training_windows(demand, WindowSpec(freq="D", history=7, horizon=3), train_end=dt.date(2023, 2, 5))
    loader = PetastormLoader.from_dataframe(
        windows.coalesce(1), cache_dir=f"file://{tmp_path}/cache", row_group_bytes=10**8, min_row_groups=1
    )
    assert loader.row_groups == 1
    with (
        pytest.raises(ValidationError, match="1 Parquet row group"),
        loader.dataset(cur_shard=0, shard_count=2, batch_size=4, shuffle=False, seed=0),
    ):
        pass
    repartitioned = PetastormLoader.from_dataframe(
        windows.coalesce(1), cache_dir=f"file://{tmp_path}/cache2", row_group_bytes=10**8, min_row_groups=2
    )
    assert repartitioned.row_groups >= 2
    loader.delete()
    repartitioned.delete()


def test_forecast_model_lstm_on_a_sales_only_lake_then_reuses_the_model(spark, tmp_path) -> None:
    from replenish_jobs import forecast

    lake = Lake(spark, str(tmp_path / "lakehouse"))
    panel = _panel(n_series=3, periods=70).drop(columns=["category"])  # sales only: no product master
    lake.write(spark.createDataFrame(panel), "silver.demand", mode="overwrite")
    argv = ["--lake", lake.root, "--run-date", "2024-05-01", "--model", "lstm", *LSTM_SETTINGS]
    assert forecast.main([*argv, "--run-id", "run-1"], spark=spark) == 0

    rows = lake.read("gold.forecast").toPandas()
    assert list(rows.columns) == list(TABLE_COLUMNS["gold.forecast"])
    assert set(rows["model"]) == {"lstm"} and len(rows) == 3 * 7
    assert (rows["yhat_lo_95"] <= rows["yhat_lo_80"]).all() and (rows["yhat_lo_80"] <= rows["yhat"]).all()
    assert (rows["yhat"] <= rows["yhat_hi_80"]).all() and (rows["yhat_hi_80"] <= rows["yhat_hi_95"]).all()
    assert (rows["yhat_lo_95"] >= 0).all()
    assert rows["date"].min() > panel["date"].max()
    backtest = lake.read("gold.forecast_backtest").toPandas()
    assert set(backtest["fold"]) == {1, 2} and backtest["mase"].notna().any()
    detail = lake.read("gold.backtest_forecast").toPandas()
    assert pd.to_datetime(detail["cutoff"]).min() > pd.Timestamp(panel["date"].max()) - pd.Timedelta(days=14)

    registry = lake.read("gold.model_registry").orderBy("run_id", "status").toPandas()
    assert list(registry["status"]) == ["ok", "trained"]
    params = json.loads(registry["params"].iloc[1])
    assert params["epochs"] >= 1 and len(params["loss"]) == params["epochs"]
    assert dt.date.fromisoformat(params["train_end"]) < min(pd.to_datetime(detail["cutoff"])).date()
    assert "silver.demand" in json.loads(registry["input_versions"].iloc[1])

    assert forecast.main([*argv, "--run-id", "run-2"], spark=spark) == 0
    again = lake.read("gold.model_registry").where(F.col("run_id") == "run-2").toPandas()
    assert list(again["status"]) == ["ok"] and not json.loads(again["params"].iloc[0])["trained_in_run"]

    # another network (the seasonal base switched on) is not the stored model: the run trains its own
    based = ["--set", "forecast.lstm.seasonal_base=true"]
    assert forecast.main([*argv, *based, "--run-id", "run-3"], spark=spark) == 0
    third = lake.read("gold.model_registry").where(F.col("run_id") == "run-3").orderBy("status").toPandas()
    assert list(third["status"]) == ["ok", "trained"]
    assert json.loads(third["params"].iloc[1])["spec"]["seasonal_base"] is True

    # nor is one trained on other origins (as a model from before the default stride spread them over a year)
    sampling = {"stride": 3, "max_origins": 6, "min_history": 4, "short_history_share": 0.25, "seed": 42}
    assert params["window_sampling"] == sampling and params["train_cut_windows"] > 0
    strided = ["--set", "forecast.lstm.stride=7"]
    assert forecast.main([*argv, *based, *strided, "--run-id", "run-4"], spark=spark) == 0
    fourth = lake.read("gold.model_registry").where(F.col("run_id") == "run-4").orderBy("status").toPandas()
    assert list(fourth["status"]) == ["ok", "trained"]
    assert json.loads(fourth["params"].iloc[1])["window_sampling"]["stride"] == 7
