"""Accuracy fixes of the per-series procedure: orders searched on the whole window, regressors with signal."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from replenish.forecast.models import Arima
from replenish.forecast.series import SeriesHistory, forecast_series
from replenish.forecast.settings import ArimaSettings, default_plan, resolve_freq


def monthly_history(values: np.ndarray, **kwargs) -> SeriesHistory:
    start = np.datetime64("2020-01", "M")
    return SeriesHistory(
        sku="S1",
        location="L1",
        dates=(start + np.arange(values.size)).astype("datetime64[D]"),
        demand=values.astype(float),
        censored=np.zeros(values.size, bool),
        **kwargs,
    )


def seasonal_monthly(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    season = np.array([0.6, 0.7, 0.9, 1.0, 1.2, 1.5, 1.7, 1.6, 1.2, 1.0, 0.8, 0.7])
    return np.round(200 * np.tile(season, n // 12 + 1)[:n] + rng.normal(0, 6, n))


def test_short_seasonal_series_with_a_long_backtest_gets_a_seasonal_forecast_model() -> None:
    """50 months, 6 folds x 18 steps: the first origin leaves a handful of periods, the whole window four years."""
    plan = replace(default_plan("M", model="arima", horizon=18, run_date="2024-06-01"), folds=6, backtest_horizon=18)
    plan = replace(plan, backtest_step=18)
    result = forecast_series(monthly_history(seasonal_monthly(50), demand_class="smooth"), plan)
    assert result.error is None, result.error
    (arima,) = [c for c in result.candidates if c.model == "arima"]
    assert arima.params["season_length"] == 12, arima.params
    assert any(arima.params["seasonal_order"]), arima.params
    assert arima.params["selection_end"] == str(result.prepared.dates[-1])
    assert arima.folds  # the backtest still ran, each fold on its own training periods
    # the forecast follows the season: the peak month is forecast above the trough month
    mean = arima.prediction["mean"]
    dates = result.forecast_dates.astype("datetime64[M]").astype(int) % 12
    assert mean[dates == 6].mean() > 1.5 * mean[dates == 0].mean()


def test_regressors_without_signal_are_dropped_and_those_with_signal_kept() -> None:
    rng = np.random.default_rng(7)
    n = 120
    promo = (rng.random(n) < 0.25).astype(float)
    noise_flag = (rng.random(n) < 0.3).astype(float)  # a calendar flag demand does not react to
    y = 100 + 40 * promo + rng.normal(0, 5, n)
    X = np.column_stack([promo, noise_flag])
    model = Arima(season_length=1, regressor_names=("promo", "is_holiday")).fit(y, X)
    assert model.used_regressors_ == ("promo",)
    assert "is_holiday" in model.params()["dropped_regressors"]
    assert model.orders_.regressors == ("promo",)
    forecast = model.predict(4, np.column_stack([np.ones(4), np.zeros(4)]))
    assert np.all(forecast["mean"] > 125)
    # with the test off, both are kept
    kept = Arima(
        season_length=1, settings=ArimaSettings(prune_regressors=False), regressor_names=("promo", "is_holiday")
    )
    assert kept.fit(y, X).used_regressors_ == ("promo", "is_holiday")


def test_forecast_frequency_defaults_to_the_one_in_silver_demand() -> None:
    assert resolve_freq(requested=None, configured="D", present=("M",)) == ("M", "the only frequency in silver.demand")
    assert resolve_freq(requested="W", configured="D", present=("M",))[0] == "W"
    assert resolve_freq(requested=None, configured="D", present=("D", "M"))[0] == "D"
    assert resolve_freq(requested=None, configured="W", present=())[0] == "W"


def test_auto_mode_backtests_ets_with_trend_theta_and_the_combination_beside_arima() -> None:
    plan = replace(default_plan("M", horizon=6, run_date="2024-06-01"), folds=2, backtest_horizon=6, backtest_step=6)
    trend = seasonal_monthly(60) + 3.0 * np.arange(60)
    result = forecast_series(monthly_history(trend, demand_class="smooth"), plan)
    assert [c.model for c in result.candidates] == ["seasonal_naive", "arima", "ets", "theta", "combination"]
    assert all(len(c.folds) == 2 for c in result.candidates)
    (ets,) = [c for c in result.candidates if c.model == "ets"]
    assert ets.params["method"].split(",")[1] != "N"  # a trend was selected: ETS(A,A,A), ETS(M,Ad,M), ...
    only_arima = forecast_series(monthly_history(trend, demand_class="smooth"), replace(plan, mode="arima"))
    assert [c.model for c in only_arima.candidates] == ["arima"]


def test_a_short_quarterly_series_is_forecast_by_every_candidate_or_its_fallback() -> None:
    """30 quarters, 6 folds of 8: the earliest folds train on a handful of quarters, which statsforecast's
    ETS refuses ("tiny datasets"); the model falls back there instead of failing the series."""
    rng = np.random.default_rng(5)
    values = np.round(np.tile([100.0, 130, 160, 90], 8)[:30] * np.linspace(1, 1.6, 30) + rng.normal(0, 8, 30))
    start = np.datetime64("2017-01", "M")
    history = SeriesHistory(
        sku="Q1",
        location="L1",
        dates=(start + 3 * np.arange(values.size)).astype("datetime64[D]"),
        demand=values,
        censored=np.zeros(values.size, bool),
        demand_class="smooth",
        top_revenue=True,
    )
    result = forecast_series(history, default_plan("Q", horizon=8, run_date="2019-10-01"))
    assert result.error is None, result.error
    assert result.candidates and all(c.prediction is not None for c in result.candidates)
    assert all(c.prediction["mean"].size == 8 for c in result.candidates if c.prediction is not None)
    assert [str(d) for d in result.forecast_dates[:2]] == ["2024-07-01", "2024-10-01"]
