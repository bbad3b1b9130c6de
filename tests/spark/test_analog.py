"""The `analog` cold-start model: new SKUs forecast from similar established SKUs."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from replenish.forecast.analog import AnalogModel, ColdStartConfig, analog_tables
from replenish.forecast.settings import BacktestSettings, ForecastConfig

pytestmark = [pytest.mark.spark]

FIRST = dt.date(2025, 1, 1)


def test_level_shrinks_from_the_analogs_to_the_own_mean() -> None:
    analogs = [np.full(20, 10.0), np.full(20, 20.0)]
    none_yet = AnalogModel(prior_periods=14).fit(np.array([]), analogs, np.array([1.0, 1.0]))
    assert none_yet.level_ == pytest.approx(15.0)
    some = AnalogModel(prior_periods=14).fit(np.full(14, 5.0), analogs, np.array([1.0, 1.0]))
    assert some.level_ == pytest.approx(10.0)
    weighted = AnalogModel(prior_periods=14).fit(np.array([]), analogs, np.array([3.0, 1.0]))
    assert weighted.level_ == pytest.approx(12.5)
    p = AnalogModel(prior_periods=0).fit(np.array([2.0, 4.0]), analogs, np.array([1.0, 1.0])).predict(3)
    assert (p["lo-95"] <= p["lo-80"]).all() and (p["lo-80"] <= p["mean"]).all() and (p["hi-80"] <= p["hi-95"]).all()


def _frames(spark):
    rng = np.random.default_rng(0)
    demand, profile = [], []
    for sku, level, days in (
        ("A", 10.0, 120),
        ("B", 12.0, 120),
        ("Z", 1.0, 120),
        ("N", 11.0, 40),  # new, similar to A and B in the factors
        ("P", 11.0, 40),  # new, no interactions: category and price
    ):
        start = 120 - days
        for d in range(days):
            ramp = min(1.0, (d + 1) / 14) if days < 120 else 1.0
            demand.append(
                ("D", sku, "L1", FIRST + dt.timedelta(days=start + d), float(rng.poisson(level * ramp)), False)
            )
        profile.append(("D", sku, "L1", days < 120, "smooth", days))
    demand_df = spark.createDataFrame(
        demand, "freq string, sku string, location string, date date, demand double, censored boolean"
    )
    profile_df = spark.createDataFrame(
        profile, "freq string, sku string, location string, is_new boolean, demand_class string, n_nonzero long"
    )
    similar = spark.createDataFrame(
        [("N", "A", 1, 0.9), ("N", "B", 2, 0.8), ("N", "Z", 3, -0.5)],
        "sku string, similar_sku string, rank int, similarity double",
    )
    products = spark.createDataFrame(
        [(s, "c1", p) for s, p in (("A", 10.0), ("B", 11.0), ("Z", 500.0), ("N", 10.5), ("P", 10.4))],
        "sku string, category string, unit_price double",
    )
    return demand_df, profile_df, similar, products


def test_new_series_get_analog_forecasts_backtests_and_a_reason(spark) -> None:
    demand, profile, similar, products = _frames(spark)
    cfg = ForecastConfig(horizon=7, backtest=BacktestSettings(folds=2, horizon=7, step=None))
    plan = cfg.plan("D", horizon=7, run_date="2025-05-01")
    analog = analog_tables(
        demand, profile, similar, products, plan, ColdStartConfig(analogs=2),
        run_id="r", run_date=dt.date(2025, 5, 1), config_hash="h",
    )  # fmt: skip
    tables = analog.by_table()
    forecast = tables["gold.forecast"].collect()
    assert {row["sku"] for row in forecast} == {"N", "P"}
    assert all(row["model"] == "analog" and row["step"] in range(1, 8) for row in forecast)
    ordered = ("yhat_lo_95", "yhat_lo_80", "yhat", "yhat_hi_80", "yhat_hi_95")
    assert all(all(row[a] <= row[b] for a, b in itertools.pairwise(ordered)) for row in forecast)
    assert all(8.0 < row["yhat"] < 13.0 for row in forecast)  # the level of A and B, not Z's 1.0
    reasons = {row["sku"]: row["reason"] for row in tables["gold.model_registry"].collect()}
    assert "similar_items" in reasons["N"] and "category_price" in reasons["P"]
    backtest = tables["gold.forecast_backtest"].collect()
    assert {row["sku"] for row in backtest} == {"N", "P"} and all(row["fold"] in (1, 2) for row in backtest)
    # Only data before each cutoff: the backtest rows of fold 1 end before fold 2's cutoff.
    rows = tables["gold.backtest_forecast"].where("sku = 'N'").collect()
    assert all(row["date"] >= row["cutoff"] for row in rows)
    # the four tables share one cached fit, released by the caller once they are written
    (fit,) = analog.cached
    assert fit.is_cached
    analog.release()
    assert not fit.is_cached


def test_disabled_or_without_a_profile_nothing_is_added(spark) -> None:
    demand, profile, similar, products = _frames(spark)
    plan = ForecastConfig().plan("D", horizon=7)
    stamp = {"run_id": "r", "run_date": FIRST, "config_hash": "h"}
    assert analog_tables(demand, None, similar, products, plan, ColdStartConfig(), **stamp).by_table() == {}
    off = analog_tables(demand, profile, similar, products, plan, ColdStartConfig(enabled=False), **stamp)
    assert off.by_table() == {} and off.cached == ()
