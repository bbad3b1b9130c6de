"""The rolling-origin protocol: fold placement, error measures, and that no fold sees its future."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from replenish.forecast.backtest import (
    METRICS,
    Fold,
    mase_scale,
    mean_mase,
    rolling_origin,
    run_backtest,
    score,
    score_frame,
)
from replenish.forecast.series import SeriesHistory, forecast_series
from replenish.forecast.settings import default_plan


def _flat(value: float, h: int) -> dict[str, np.ndarray]:
    mean = np.full(h, value)
    return {"mean": mean, "lo_80": mean - 1, "hi_80": mean + 1, "lo_95": mean - 2, "hi_95": mean + 2}


def test_folds_tile_the_end_of_the_history() -> None:
    assert rolling_origin(100, folds=3, horizon=10) == [Fold(1, 70, 80), Fold(2, 80, 90), Fold(3, 90, 100)]
    assert rolling_origin(100, folds=2, horizon=10, step=5) == [Fold(1, 85, 95), Fold(2, 90, 100)]
    # origins without enough training data are dropped, earliest first
    assert [f.cutoff for f in rolling_origin(30, folds=3, horizon=10, min_train=15)] == [20]
    assert rolling_origin(5, folds=3, horizon=10) == []
    assert rolling_origin(100, folds=0, horizon=10) == []


def test_mase_scale_is_the_in_sample_seasonal_naive_error() -> None:
    assert mase_scale(np.array([1.0, 2, 3, 5, 6, 7]), 3) == pytest.approx(4.0)
    assert mase_scale(np.array([1.0, 3.0]), 7) == pytest.approx(2.0)  # shorter than a season: lag 1
    assert np.isnan(mase_scale(np.array([4.0, 4.0, 4.0]), 1))  # constant: undefined


def test_score_measures() -> None:
    actual = np.array([10.0, 0.0, 5.0, 100.0])
    prediction = _flat(5.0, 4)
    scored = np.array([True, True, True, False])  # a censored period is not scored
    metrics = score(actual, prediction, scale=2.5, scored=scored)
    assert metrics["n_scored"] == 3
    assert metrics["mase"] == pytest.approx((5 + 5 + 0) / 3 / 2.5)
    assert metrics["wape"] == pytest.approx(10 / 15)
    assert metrics["bias"] == pytest.approx((-5 + 5 + 0) / 15)
    assert metrics["rmse"] == pytest.approx(np.sqrt(50 / 3))
    assert metrics["coverage_80"] == pytest.approx(1 / 3)
    assert metrics["coverage_95"] == pytest.approx(1 / 3)
    nothing = score(actual, prediction, scale=1.0, scored=np.zeros(4, bool))
    assert nothing["n_scored"] == 0 and all(np.isnan(nothing[m]) for m in METRICS)


def test_protocol_hands_each_fold_only_its_past() -> None:
    """A leaking protocol (passing the whole series) would make the forecasts depend on the future."""
    y = np.arange(60, dtype=float)
    folds = rolling_origin(60, folds=3, horizon=5)
    seen: list[int] = []

    def last_value(train: np.ndarray, train_x, future_x, h: int) -> dict[str, np.ndarray]:
        seen.append(train.size)
        return _flat(float(train[-1]), h)

    before = run_backtest(y, folds, last_value, season_length=1)
    assert seen == [fold.cutoff for fold in folds]
    changed = y.copy()
    changed[folds[0].cutoff :] *= 1000  # everything after the first origin
    after = run_backtest(changed, folds, last_value, season_length=1)
    assert np.array_equal(before[0].prediction["mean"], after[0].prediction["mean"])
    assert before[0].prediction["mean"][0] == folds[0].cutoff - 1
    assert mean_mase(before) == pytest.approx(np.mean([r.metrics["mase"] for r in before]))


def test_regressors_of_the_test_window_come_from_the_known_in_advance_values() -> None:
    y = np.ones(40)
    observed = np.arange(40, dtype=float)[:, None]
    known = -np.arange(40, dtype=float)[:, None]
    captured = {}

    def spy(train, train_x, future_x, h):
        captured["train_x"], captured["future_x"] = train_x, future_x
        return _flat(1.0, h)

    run_backtest(y, [Fold(1, 30, 35)], spy, season_length=1, X=observed, X_known=known)
    assert captured["train_x"][:, 0].tolist() == list(range(30))
    assert captured["future_x"][:, 0].tolist() == [-30, -31, -32, -33, -34]


def _history(demand: np.ndarray, censored: np.ndarray | None = None, **kwargs) -> SeriesHistory:
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + demand.size)
    return SeriesHistory(
        sku="S",
        location="L",
        dates=dates,
        demand=demand,
        censored=np.zeros(demand.size, bool) if censored is None else censored,
        **kwargs,
    )


@pytest.mark.parametrize("demand_class", ["smooth", "intermittent"])
def test_whole_procedure_never_leaks_the_future_into_a_fold(demand_class: str) -> None:
    """Cleaning (outlier cap, stockout imputation), order search and fits per fold see only the past.

    The periods after the last fold's origin are rewritten (huge values, stockouts); every fold's
    forecast must stay exactly the same.
    """
    rng = np.random.default_rng(5)
    n = 140
    weekly = np.tile([20.0, 22, 25, 24, 30, 40, 35], n // 7 + 1)[:n]
    if demand_class == "smooth":
        demand = np.round(weekly + rng.normal(0, 3, n))
    else:
        demand = np.where(rng.random(n) < 0.25, 1 + rng.poisson(3, n), 0).astype(float)
    demand[30] = 2000.0  # an outlier, capped by a cap that must not depend on later data
    censored = np.zeros(n, bool)
    censored[[20, 60, 61, 100]] = True
    plan = replace(default_plan("D", horizon=7), folds=3, backtest_horizon=14, backtest_step=14)
    base = forecast_series(_history(demand, censored, demand_class=demand_class), plan)
    last_origin = base.prepared.folds[-1].cutoff
    changed_demand, changed_censored = demand.copy(), censored.copy()
    changed_demand[last_origin:] = demand[last_origin:] * 50 + 1000
    changed_censored[last_origin + 2 :: 3] = True
    changed = forecast_series(_history(changed_demand, changed_censored, demand_class=demand_class), plan)
    assert base.error is None and changed.error is None
    for before, after in zip(base.candidates, changed.candidates, strict=True):
        assert before.model == after.model
        assert len(before.folds) == 3
        for fold_before, fold_after in zip(before.folds, after.folds, strict=True):
            for key in ("mean", "lo_80", "hi_80", "lo_95", "hi_95"):
                np.testing.assert_array_equal(fold_before.prediction[key], fold_after.prediction[key])
        # ...while the final forecast, fitted on everything, does move
        assert not np.array_equal(before.prediction["mean"], after.prediction["mean"])


def test_score_frame_matches_score_and_reads_any_models_rows() -> None:
    rows = pd.DataFrame(
        {
            "sku": "S",
            "location": "L",
            "model": "lstm",
            "fold": [1, 1, 1, 2, 2, 2],
            "cutoff": ["2024-01-01"] * 3 + ["2024-01-04"] * 3,
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "yhat": [1.0, 1.0, 1.0, 5.0, 5.0, 5.0],
            "yhat_lo_80": 0.0,
            "yhat_hi_80": 2.0,
            "yhat_lo_95": 0.0,
            "yhat_hi_95": 10.0,
            "mase_scale": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
            "censored": [False, False, True, False, False, False],
        }
    )
    metrics = score_frame(rows)
    assert metrics["fold"].tolist() == [1, 2]
    first = metrics.iloc[0]
    assert first["n_scored"] == 2 and first["horizon"] == 3
    assert first["mase"] == pytest.approx(0.5)
    assert metrics.iloc[1]["mase"] == pytest.approx((1 + 0 + 1) / 3 / 2)
    with pytest.raises(Exception, match="mase_scale"):
        score_frame(rows.drop(columns="mase_scale"))
