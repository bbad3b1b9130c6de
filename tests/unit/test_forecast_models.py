"""The non-ARIMA per-series models, their intervals and the model registry (name -> class)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from replenish.forecast.models import (
    ETS,
    FALLBACKS,
    MODELS,
    TSB,
    CrostonSBA,
    FitError,
    RecentMean,
    SeasonalNaive,
    SeriesModel,
    Zero,
    fallback_chain,
    finalize,
    poisson_intervals,
    residual_intervals,
)


def _nested(forecast: dict[str, np.ndarray]) -> bool:
    order = ("lo_95", "lo_80", "mean", "hi_80", "hi_95")
    return bool(
        np.all(forecast["lo_95"] >= 0)
        and all(np.all(forecast[a] <= forecast[b] + 1e-12) for a, b in itertools.pairwise(order))
    )


def test_every_model_is_registered_and_every_fallback_is_a_model() -> None:
    assert set(MODELS) == {"seasonal_naive", "arima", "ets", "theta", "croston_sba", "tsb", "recent_mean", "zero"}
    assert all(issubclass(cls, SeriesModel) for cls in MODELS.values())
    assert all(name in MODELS for name in FALLBACKS)
    assert all(target is None or target in MODELS for target in FALLBACKS.values())
    assert fallback_chain("arima") == ["arima", "ets", "seasonal_naive", "recent_mean", "zero"]
    assert fallback_chain("tsb") == ["tsb", "recent_mean", "zero"]


def test_seasonal_naive_repeats_the_last_season() -> None:
    y = np.tile([1.0, 2, 3, 4, 5, 6, 7], 6) + np.repeat(np.arange(6), 7) * 0.0
    forecast = SeasonalNaive(season_length=7).fit(y).predict(10)
    assert forecast["mean"].tolist() == [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]
    assert _nested(forecast)


def test_seasonal_naive_intervals_cover_a_seasonal_random_walk() -> None:
    """On y_t = y_{t-7} + e_t the seasonal naive is the true model: intervals cover at the nominal rate."""
    rng = np.random.default_rng(0)
    hits = {80: [], 95: []}
    for _ in range(300):
        series = np.empty(84 + 7)
        series[:7] = 100 + rng.normal(0, 5, 7)
        for t in range(7, series.size):
            series[t] = series[t - 7] + rng.normal(0, 2)
        forecast = SeasonalNaive(7).fit(series[:-7]).predict(7)
        truth = series[-7:]
        for level in hits:
            hits[level].append((truth >= forecast[f"lo_{level}"]) & (truth <= forecast[f"hi_{level}"]))
    assert np.mean(hits[80]) == pytest.approx(0.80, abs=0.04)
    assert np.mean(hits[95]) == pytest.approx(0.95, abs=0.03)


def test_seasonal_naive_on_short_history_drops_to_naive_and_rejects_too_short() -> None:
    model = SeasonalNaive(7).fit(np.array([3.0, 4.0, 5.0]))
    assert model.params()["season_length"] == 1
    assert model.predict(2)["mean"].tolist() == [5.0, 5.0]
    with pytest.raises(FitError, match="at least 3"):
        SeasonalNaive(7).fit(np.array([1.0]))


@pytest.mark.parametrize("model", [CrostonSBA(), TSB(alpha_demand=0.1, alpha_probability=0.1)])
def test_croston_family_on_intermittent_demand(model: SeriesModel) -> None:
    rng = np.random.default_rng(1)
    occurs = rng.random(400) < 0.2
    sizes = 1 + rng.poisson(2.0, 400)
    y = np.where(occurs, sizes, 0).astype(float)
    train, test = y[:-100], y[-100:]
    forecast = model.fit(train).predict(100)
    assert np.allclose(forecast["mean"], forecast["mean"][0])  # flat
    assert 0.5 * train.mean() < forecast["mean"][0] < 2 * train.mean()
    assert _nested(forecast)
    for level in (80, 95):
        coverage = np.mean((test >= forecast[f"lo_{level}"]) & (test <= forecast[f"hi_{level}"]))
        assert coverage >= level / 100 - 0.08


def test_croston_on_an_all_zero_window_forecasts_zero() -> None:
    forecast = CrostonSBA().fit(np.zeros(30)).predict(5)
    assert np.all(forecast["mean"] == 0) and np.all(forecast["hi_95"] == 0)


def test_recent_mean_uses_its_window_and_poisson_intervals_when_short() -> None:
    model = RecentMean(window=3).fit(np.array([100.0, 1.0, 2.0, 3.0]))
    forecast = model.predict(2)
    assert forecast["mean"].tolist() == [2.0, 2.0]
    assert forecast["hi_95"][0] == pytest.approx(poisson_intervals(np.array([2.0]))["hi_95"][0])
    assert _nested(forecast)


def test_zero_model() -> None:
    forecast = Zero().fit(np.zeros(5)).predict(3)
    assert all(np.all(values == 0) for values in forecast.values())


def test_residual_intervals_follow_the_empirical_quantiles() -> None:
    residuals = np.linspace(-1.0, 1.0, 101)
    intervals = residual_intervals(np.full(2, 10.0), residuals)
    assert intervals["lo_80"][0] == pytest.approx(9.2)
    assert intervals["hi_95"][0] == pytest.approx(10.95)


def test_finalize_clips_negative_demand_and_nests_bounds() -> None:
    raw = {
        "mean": np.array([-1.0, 5.0]),
        "lo_80": np.array([-3.0, 6.0]),
        "hi_80": np.array([1.0, 4.0]),
        "lo_95": np.array([-4.0, 1.0]),
        "hi_95": np.array([2.0, 3.0]),
    }
    result = finalize(raw)
    assert result["mean"].tolist() == [0.0, 5.0]
    assert _nested(result)
    with pytest.raises(FitError, match="not finite"):
        finalize({**raw, "mean": np.array([np.nan, 1.0])})


def test_ets_drops_seasons_longer_than_the_library_supports() -> None:
    rng = np.random.default_rng(4)
    weekly = 50 + 10 * np.sin(np.arange(160) * 2 * np.pi / 52) + rng.normal(0, 2, 160)
    model = ETS(season_length=52).fit(weekly)
    assert model.params()["season_length"] == 1
    forecast = model.predict(13)
    assert _nested(forecast) and np.all(np.isfinite(forecast["mean"]))
    daily = ETS(season_length=7).fit(np.tile([5.0, 6, 7, 8, 9, 20, 25], 10) + rng.normal(0, 1, 70))
    assert daily.params()["season_length"] == 7
