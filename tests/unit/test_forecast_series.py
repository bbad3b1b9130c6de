"""The per-series procedure: edge series, routing, fallbacks, warm starts and the output records."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from replenish.forecast import series as series_module
from replenish.forecast.models import Arima, FitError
from replenish.forecast.series import (
    RECORD_COLUMNS,
    SeriesHistory,
    WarmStart,
    forecast_batches,
    forecast_frame,
    forecast_series,
    future_dates,
    impute_seasonal,
    prepare_series,
    records_frame,
)
from replenish.forecast.settings import ForecastConfig, RoutingSettings, default_plan
from replenish.forecast.synthetic import synthetic_demand

# Small and quick: a 14-day horizon, two 14-day folds, the default search space.
PLAN = replace(default_plan("D", horizon=14, run_date="2024-06-01"), folds=2, backtest_horizon=14, backtest_step=14)


def history(demand, censored=None, **kwargs) -> SeriesHistory:
    values = np.asarray(demand, dtype=float)
    start = np.datetime64("2024-01-01")
    return SeriesHistory(
        sku=kwargs.pop("sku", "S1"),
        location="L1",
        dates=np.arange(start, start + values.size),
        demand=values,
        censored=np.zeros(values.size, bool) if censored is None else np.asarray(censored, bool),
        **kwargs,
    )


def weekly(n: int, seed: int = 0, level: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(level * np.tile([1.0, 1.1, 1.2, 1.1, 1.4, 1.8, 1.5], n // 7 + 1)[:n] + rng.normal(0, 2, n))


def check_forecasts(result) -> None:
    assert result.error is None, result.error
    assert result.candidates
    for candidate in result.candidates:
        forecast = candidate.prediction
        assert forecast["mean"].size == PLAN.horizon
        assert all(np.all(np.isfinite(values)) for values in forecast.values())
        assert np.all(forecast["lo_95"] >= 0)
        assert np.all(forecast["lo_95"] <= forecast["lo_80"])
        assert np.all(forecast["lo_80"] <= forecast["mean"])
        assert np.all(forecast["mean"] <= forecast["hi_80"])
        assert np.all(forecast["hi_80"] <= forecast["hi_95"])
        assert candidate.status in ("ok", "fallback")


# --- edge series: each produces a forecast or a recorded reason --------------------------------


def test_constant_series() -> None:
    result = forecast_series(history(np.full(120, 5.0), demand_class="smooth"), PLAN)
    check_forecasts(result)
    assert np.allclose(result.candidates[-1].prediction["mean"], 5.0)


def test_all_zero_series_forecasts_zero() -> None:
    result = forecast_series(history(np.zeros(120), demand_class="no_demand"), PLAN)
    check_forecasts(result)
    routed = result.candidates[-1]
    assert routed.model == "zero" and routed.reason.startswith("all-zero history")
    assert all(np.all(values == 0) for values in routed.prediction.values())


def test_one_point_series() -> None:
    result = forecast_series(history([4.0]), PLAN)
    check_forecasts(result)
    assert {c.model for c in result.candidates} == {"recent_mean"}
    only = result.candidates[0]
    assert only.status == "fallback" and "seasonal_naive" in only.reason
    assert only.prediction["mean"][0] == 4.0


def test_series_with_missing_values_imputes_them() -> None:
    demand = weekly(120)
    demand[[10, 50, 51, 90]] = np.nan
    result = forecast_series(history(demand, demand_class="smooth"), PLAN)
    check_forecasts(result)
    assert "4 missing periods imputed" in result.candidates[0].reason
    assert np.all(np.isfinite(result.prepared.y))


def test_negative_values_are_set_to_zero() -> None:
    demand = weekly(120)
    demand[[5, 6]] = -3.0
    result = forecast_series(history(demand, demand_class="smooth"), PLAN)
    check_forecasts(result)
    assert "2 negative values set to 0" in result.candidates[0].reason
    assert result.prepared.y.min() >= 0


def test_huge_outlier_is_capped() -> None:
    demand = weekly(120)
    demand[40] = 1e9
    result = forecast_series(history(demand, demand_class="smooth"), PLAN)
    check_forecasts(result)
    assert "1 outliers capped" in result.candidates[0].reason
    assert result.prepared.y.max() < 1e4
    assert result.candidates[-1].prediction["mean"].max() < 200


def test_a_series_that_grows_a_hundredfold_is_not_capped_but_a_spike_in_it_is() -> None:
    """The cap trails each period: a cap set by the oldest periods clipped the recent level of a
    trending series (Tourism's quarterly series lost their last years to it)."""
    growth = np.round(weekly(150) * np.geomspace(1.0, 100.0, 150))
    plan = replace(PLAN, folds=6)  # the first origin leaves the oldest 66 periods
    result = forecast_series(history(growth, demand_class="smooth"), plan)
    check_forecasts(result)
    assert "capped" not in result.candidates[0].reason
    np.testing.assert_array_equal(result.prepared.y, growth)
    spiked = growth.copy()
    spiked[120] = 1e6
    capped = forecast_series(history(spiked, demand_class="smooth"), plan)
    assert "1 outliers capped" in capped.candidates[0].reason
    assert capped.prepared.y[120] < 10 * growth[90:120].max()


def test_all_censored_history_uses_sales_as_a_lower_bound() -> None:
    result = forecast_series(history(np.full(60, 2.0), censored=np.ones(60, bool), demand_class="smooth"), PLAN)
    check_forecasts(result)
    routed = result.candidates[-1]
    assert routed.status == "fallback"
    assert "no uncensored period" in routed.reason and "lower bound" in routed.reason
    # nothing was observed, so nothing is scored
    assert all(fold.metrics["n_scored"] == 0 for c in result.candidates for fold in c.folds)


def test_empty_series_records_a_reason() -> None:
    result = forecast_series(history([]), PLAN)
    assert result.error is not None and "no periods" in result.error
    frame = records_frame([result])
    assert frame["record"].tolist() == ["registry"]
    assert frame["status"].iat[0] == "failed"


# --- censoring --------------------------------------------------------------------------------


def test_censored_periods_are_not_treated_as_zero_demand() -> None:
    demand = weekly(84, level=30.0)
    censored = np.zeros(84, bool)
    censored[70:77] = True
    demand[70:77] = 0.0  # stocked out: nothing sold
    prepared = prepare_series(history(demand, censored), PLAN)
    assert prepared.y[70:77].min() > 20  # imputed from the same weekdays of earlier weeks
    assert np.isnan(prepared.actual[70:77]).all() and not prepared.scored[70:77].any()


def test_imputation_uses_earlier_cycles_only() -> None:
    values = np.array([1.0, 2.0, 10.0, 20.0, 99.0, 99.0])
    missing = np.array([False, False, False, False, True, True])
    assert impute_seasonal(values, missing, season_length=2).tolist() == [1.0, 2.0, 10.0, 20.0, 5.5, 11.0]
    first_missing = impute_seasonal(np.array([3.0, 5.0]), np.array([True, False]), season_length=7)
    assert first_missing.tolist() == [3.0, 5.0]  # nothing earlier: its own observed value


# --- routing and fallbacks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("demand_class", "is_new", "expected"),
    [
        ("intermittent", False, "croston_sba"),
        ("lumpy", False, "tsb"),
        ("smooth", True, "recent_mean"),
    ],
)
def test_routing_by_demand_class(demand_class: str, is_new: bool, expected: str) -> None:
    rng = np.random.default_rng(2)
    demand = np.where(rng.random(120) < 0.3, 1 + rng.poisson(2, 120), 0).astype(float)
    result = forecast_series(history(demand, demand_class=demand_class, is_new=is_new), PLAN)
    check_forecasts(result)
    assert [c.model for c in result.candidates] == ["seasonal_naive", expected]
    assert [c.role for c in result.candidates] == ["baseline", "routed"]


def test_auto_mode_keeps_arima_for_the_top_revenue_series() -> None:
    plan = replace(PLAN, routing=RoutingSettings(arima_revenue_share=0.4), folds=1)
    low_value = history(weekly(120), demand_class="smooth", top_revenue=False)
    auto = forecast_series(low_value, plan)
    check_forecasts(auto)
    assert [c.model for c in auto.candidates] == ["seasonal_naive", "ets", "theta", "combination"]
    assert "outside the top 40% of revenue" in auto.candidates[1].reason
    explicit = forecast_series(low_value, replace(plan, mode="arima"))
    assert [c.model for c in explicit.candidates] == ["arima"]


def test_auto_mode_adds_the_equal_weight_combination_with_its_own_backtest() -> None:
    result = forecast_series(history(weekly(150), demand_class="smooth", top_revenue=True), PLAN)
    check_forecasts(result)
    by_model = {c.model: c for c in result.candidates}
    assert list(by_model) == ["seasonal_naive", "arima", "ets", "theta", "combination"]
    members = [by_model[name] for name in ("arima", "ets", "theta")]
    combined = by_model["combination"]
    assert combined.params == {"members": ["arima", "ets", "theta"]}
    for field_name in ("mean", "lo_80", "hi_95"):
        expected = np.mean([m.prediction[field_name] for m in members], axis=0)
        np.testing.assert_allclose(combined.prediction[field_name], expected)
    assert len(combined.folds) == PLAN.folds
    for fold, *member_folds in zip(combined.folds, *(m.folds for m in members), strict=True):
        expected = np.mean([f.prediction["mean"] for f in member_folds], axis=0)
        np.testing.assert_allclose(fold.prediction["mean"], expected)
        scored = fold.scored & np.isfinite(fold.actual)
        mae = np.mean(np.abs(expected[scored] - fold.actual[scored]))
        assert fold.metrics["mase"] == pytest.approx(mae / fold.scale)
    arima_only = forecast_series(history(weekly(150)), replace(PLAN, mode="arima"))
    assert "combination" not in {c.model for c in arima_only.candidates}
    one_member = replace(PLAN, combination=("arima", "croston_sba"))
    single = forecast_series(history(weekly(150), demand_class="smooth"), one_member)
    assert "combination" not in {c.model for c in single.candidates}  # one member fitted: nothing to combine


def test_short_history_gets_the_documented_fallback() -> None:
    result = forecast_series(history(weekly(30), demand_class="smooth"), PLAN)
    check_forecasts(result)
    routed = result.candidates[-1]
    assert routed.model == "recent_mean" and routed.status == "fallback"
    assert "fewer than the 56 arima needs" in routed.reason


def test_series_without_a_profile_is_classified_from_its_window() -> None:
    rng = np.random.default_rng(3)
    demand = np.where(rng.random(120) < 0.2, 1 + rng.poisson(2, 120), 0).astype(float)
    result = forecast_series(history(demand), replace(PLAN, mode="arima"))
    assert result.demand_class in ("intermittent", "lumpy")
    assert [c.model for c in result.candidates] == [RoutingSettings().model_for(result.demand_class)]


def test_failed_arima_falls_back_to_the_next_model_with_the_reason(monkeypatch) -> None:
    def refuse(self, y, X=None):
        raise FitError("arima: the likelihood optimizer did not converge (iteration limit reached)")

    monkeypatch.setattr(Arima, "fit", refuse)
    result = forecast_series(history(weekly(120), demand_class="smooth"), replace(PLAN, mode="arima"))
    check_forecasts(result)
    routed = result.candidates[0]
    assert routed.model == "ets" and routed.status == "fallback"
    assert "did not converge" in routed.reason and "fell back to ets" in routed.reason


def test_one_bad_series_does_not_stop_the_others(monkeypatch) -> None:
    real = series_module.route_series

    def explode_on_bad(history, prepared, plan):
        if history.sku == "BAD":
            raise RuntimeError("corrupt series")
        return real(history, prepared, plan)

    monkeypatch.setattr(series_module, "route_series", explode_on_bad)
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "sku": sku,
                    "location": "L",
                    "date": pd.date_range("2024-01-01", periods=60).date,
                    "demand": weekly(60, seed=i),
                    "censored": False,
                }
            )
            for i, sku in enumerate(["A", "BAD", "C"])
        ]
    )
    out = forecast_frame(frame, replace(PLAN, mode="baseline"))
    registry = out[out["record"] == "registry"].set_index("sku")
    assert registry.loc["BAD", "status"] == "failed" and "corrupt series" in registry.loc["BAD", "reason"]
    assert set(out.loc[out["record"] == "forecast", "sku"]) == {"A", "C"}


# --- warm start -------------------------------------------------------------------------------


def test_warm_start_reuses_orders_and_searches_again_when_degraded() -> None:
    demand = weekly(150, seed=4)
    plan = replace(PLAN, mode="arima")
    cold = forecast_series(history(demand, demand_class="smooth"), plan).candidates[0]
    assert cold.model == "arima" and cold.params["selection"] == "search"
    stored = json.dumps(cold.params)
    warm_start = WarmStart.from_params(stored)
    assert warm_start is not None and warm_start.selected_on == "2024-06-01"

    tomorrow = np.append(demand, demand[-7])
    warm = forecast_series(history(tomorrow, demand_class="smooth", warm=warm_start), plan).candidates[0]
    assert warm.params["selection"] == "warm"
    assert warm.params["order"] == cold.params["order"]
    assert warm.params["seasonal_order"] == cold.params["seasonal_order"]
    assert warm.params["reference_mase"] == cold.params["reference_mase"]
    assert "warm start: reused" in warm.reason

    strict = replace(warm_start, reference_mase=1e-6)  # any backtest error is a degradation now
    searched = forecast_series(history(tomorrow, demand_class="smooth", warm=strict), plan).candidates[0]
    assert searched.params["selection"] == "search" and "degraded" in searched.reason

    old = replace(warm_start, selected_on="2024-01-01")  # older than max_order_age_days
    aged = forecast_series(history(tomorrow, demand_class="smooth", warm=old), plan).candidates[0]
    assert aged.params["selection"] == "search" and "days old" in aged.reason

    forced = forecast_series(history(tomorrow, demand_class="smooth", warm=warm_start), replace(plan, warm_start=False))
    assert forced.candidates[0].params["selection"] == "search"


def test_a_failed_arima_search_is_not_repeated_until_it_is_old(monkeypatch) -> None:
    demand = weekly(150, seed=4)
    plan = replace(PLAN, mode="arima")
    searches: list[int] = []

    def failing(self, y, X=None):
        searches.append(len(y))
        raise FitError("arima: the likelihood optimizer did not converge (iteration limit reached)")

    monkeypatch.setattr(Arima, "fit", failing)
    cold = forecast_series(history(demand, demand_class="smooth"), plan).candidates[0]
    assert cold.model == "ets" and cold.status == "fallback" and searches
    assert cold.params["arima_failed_on"] == "2024-06-01"
    failure = WarmStart.from_params(json.dumps(cold.params, sort_keys=True))
    assert failure is not None and failure.orders is None and failure.selected_on == "2024-06-01"

    searches.clear()
    tomorrow = np.append(demand, demand[-7])
    nightly = replace(plan, run_date="2024-06-02")
    warm = forecast_series(history(tomorrow, demand_class="smooth", warm=failure), nightly).candidates[0]
    assert searches == []
    assert warm.model == "ets" and "search failed on 2024-06-01; not retried" in warm.reason
    assert warm.params["arima_failed_on"] == "2024-06-01"  # the date of the search, so it ages

    later = replace(plan, run_date="2024-07-15")  # older than max_order_age_days (28)
    retried = forecast_series(history(tomorrow, demand_class="smooth", warm=failure), later).candidates[0]
    assert searches and "searched again" in retried.reason
    assert retried.params["arima_failed_on"] == "2024-07-15"
    forced = forecast_series(history(tomorrow, demand_class="smooth", warm=failure), replace(nightly, warm_start=False))
    assert "not retried" not in forced.candidates[0].reason


def test_warm_start_reads_the_coefficients_in_estimation_order() -> None:
    stored = {"order": [1, 0, 1], "coef": {"ex_1": 3.0, "intercept": 2.0, "ma1": 0.4, "ar1": 0.5}}
    warm_start = WarmStart.from_params(json.dumps(stored, sort_keys=True))
    assert warm_start is not None and warm_start.coefficients == (0.5, 0.4, 2.0, 3.0)


def test_malformed_stored_params_mean_a_cold_start() -> None:
    assert WarmStart.from_params('{"order": "x"}') is None
    assert WarmStart.from_params(None) is None


# --- records and streaming --------------------------------------------------------------------


def test_records_have_the_declared_columns_and_one_registry_row_per_model() -> None:
    panel = synthetic_demand(6, 90, seed=8, intermittent_share=0.8, zero_share=0.2)  # cheap models
    out = forecast_frame(panel, replace(PLAN, mode="auto"))
    assert list(out.columns) == [name for name, _ in RECORD_COLUMNS]
    registry = out[out["record"] == "registry"]
    assert not registry.duplicated(["sku", "location", "model"]).any()
    forecasts = out[out["record"] == "forecast"]
    assert len(forecasts) == len(registry) * PLAN.horizon
    assert forecasts["step"].min() == 1 and forecasts["step"].max() == PLAN.horizon
    metrics = out[out["record"] == "metric"]
    assert set(metrics["fold"]) == {1, 2}
    json.loads(registry["params"].iat[0])


def test_streaming_over_batches_gives_the_same_records_as_one_frame() -> None:
    panel = synthetic_demand(5, 60, seed=9).sort_values(["sku", "location", "date"], ignore_index=True)
    plan = replace(PLAN, mode="baseline")
    whole = forecast_frame(panel, plan)
    batches = [panel.iloc[i : i + 37] for i in range(0, len(panel), 37)]  # series straddle batches
    streamed = pd.concat(list(forecast_batches(iter(batches), plan)), ignore_index=True)
    columns = [c for c in whole.columns if c != "fit_seconds"]
    pd.testing.assert_frame_equal(whole[columns], streamed[columns])


def test_future_dates_per_frequency() -> None:
    assert future_dates(np.datetime64("2024-01-31"), "D", 2).tolist() == [
        np.datetime64("2024-02-01"),
        np.datetime64("2024-02-02"),
    ]
    assert str(future_dates(np.datetime64("2024-01-29"), "W", 1)[0]) == "2024-02-05"
    assert [str(d) for d in future_dates(np.datetime64("2024-11-01"), "M", 3)] == [
        "2024-12-01",
        "2025-01-01",
        "2025-02-01",
    ]
    assert [str(d) for d in future_dates(np.datetime64("2024-10-01"), "Q", 3)] == [
        "2025-01-01",
        "2025-04-01",
        "2025-07-01",
    ]


def test_config_resolves_a_plan_and_rejects_bad_settings() -> None:
    from replenish import config
    from replenish.errors import ConfigError

    settings = config.load("local")
    cfg = config.section(settings, "forecast", ForecastConfig)
    plan = cfg.plan("W", model="arima", horizon=8)
    assert plan.windows.season_length == 52 and plan.backtest_horizon == 8 and plan.candidates == ("routed",)
    with pytest.raises(ConfigError, match=r"routing\.smooth"):
        config.section({"forecast": {"routing": {"smooth": "prophet"}}}, "forecast", ForecastConfig)
    monthly = cfg.plan("M")
    assert (monthly.arima.max_p, monthly.arima.max_order, monthly.windows.train_periods) == (5, 5, 400)
    assert cfg.plan("D").arima.max_p == 2  # the daily search keeps forecast.arima's space
    narrower = config.section(config.load("local", ["forecast.monthly.arima.max_p=3"]), "forecast", ForecastConfig)
    assert (narrower.plan("M").arima.max_p, narrower.plan("M").arima.max_q) == (3, 5)
    with pytest.raises(ConfigError, match=r"forecast\.monthly\.arima: unknown setting\(s\) \['maxp'\]"):
        config.section(config.load("local", ["forecast.monthly.arima.maxp=3"]), "forecast", ForecastConfig)
    with pytest.raises(ConfigError, match="--model"):
        cfg.plan("D", model="prophet")  # lstm became a mode (issue 19)
    # daily ETS selects no trend; the other frequencies keep forecast.ets_model
    assert [cfg.plan(freq).ets_spec for freq in ("D", "W", "M", "Q")] == ["ZNZ", "ZZZ", "ZZZ", "ZZZ"]
    trended = config.section(config.load("local", ["forecast.daily.ets_model=null"]), "forecast", ForecastConfig)
    assert trended.plan("D").ets_spec == "ZZZ"
    with pytest.raises(ConfigError, match=r"forecast\.daily\.ets_model must be three of"):
        config.section(config.load("local", ["forecast.daily.ets_model=ZQZ"]), "forecast", ForecastConfig)


def test_each_arima_search_starts_where_the_previous_fold_ended(monkeypatch) -> None:
    """Fold k's stepwise search starts from fold k-1's orders, the forecast's from the last fold's."""
    searches: list[tuple[object, object]] = []  # (where the search started, the orders it chose)
    original = Arima.fit

    def recording(self, y, X=None):
        fitted = original(self, y, X)
        if fitted.selection_ == "search":
            searches.append((self.options.get("search_from"), fitted.orders_))
        return fitted

    monkeypatch.setattr(Arima, "fit", recording)
    plan = replace(PLAN, mode="arima", folds=3)
    result = forecast_series(history(weekly(150, seed=3), demand_class="smooth"), plan)
    assert result.candidates[0].model == "arima"
    assert len(searches) == 4  # three folds, then the forecast
    assert searches[0][0] is None  # Hyndman-Khandakar's start
    for (_, chosen), (start, _) in itertools.pairwise(searches):
        assert start == chosen
