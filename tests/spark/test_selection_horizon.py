"""The two choices of gold.model_selection: the forecast over the whole horizon, and the one that sizes stock."""

from __future__ import annotations

import datetime as dt

import pytest

from replenish.inventory.selection import choose_forecasts
from replenish.inventory.settings import InventoryConfig, SelectionConfig

pytestmark = pytest.mark.spark

HORIZON = 28
FOLDS = 3
START = dt.date(2024, 3, 1)
FORECAST_SCHEMA = "freq string, sku string, location string, model string, date date, step int, yhat double"
BACKTEST_SCHEMA = (
    "freq string, sku string, location string, model string, fold int, date date, step int, y double, yhat double"
)


def error(model: str, fold: int, step: int) -> float:
    """`steady`: ±2 every other period, no persistent part. `level`: a level error of ±1.5 per fold
    (+ a little noise): a smaller error per period, but one that accumulates over a lead time."""
    if model == "steady":
        return 2.0 if step % 2 else -2.0
    return (1.5 if fold % 2 else -1.5) + (0.1 if step % 2 else -0.1)


def _frames(spark, miss: dict[str, str]):
    """One series' forecasts (10 every day) and backtests (actual 10) of each model in `miss`, whose
    backtest errors are those of the `error` pattern it names."""
    forecast = [("D", "S1", "L1", m, START + dt.timedelta(days=s - 1), s, 10.0) for m in miss for s in range(1, 29)]
    backtest = []
    for model, pattern in miss.items():
        for fold in range(1, FOLDS + 1):
            cutoff = START - dt.timedelta(days=HORIZON * (FOLDS - fold + 1))
            for step in range(1, HORIZON + 1):
                day = cutoff + dt.timedelta(days=step - 1)
                backtest.append(("D", "S1", "L1", model, fold, day, step, 10.0, 10.0 - error(pattern, fold, step)))
    return spark.createDataFrame(forecast, FORECAST_SCHEMA), spark.createDataFrame(backtest, BACKTEST_SCHEMA)


def test_the_whole_horizon_choice_is_published_beside_the_stock_sizing_choice(spark) -> None:
    frames = _frames(spark, {"steady": "steady", "level": "level"})
    (row,) = choose_forecasts(*frames, InventoryConfig(), keep_error_path=False).collect()
    assert row["chosen"]["model"] == "steady"  # the smaller error summed over the protection interval
    assert row["horizon_model"] == "level"  # the smaller error per period over the whole horizon
    assert row["horizon_mae"] == pytest.approx(1.5, abs=0.11)


def test_the_whole_horizon_forecast_is_the_combination_where_a_series_has_one(spark) -> None:
    """`horizon_preferred_model` (combination) wins the whole-horizon choice even with a larger
    backtest error; with the preference off the lowest error wins again."""
    frames = _frames(spark, {"combination": "steady", "level": "level"})
    (preferred,) = choose_forecasts(*frames, InventoryConfig(), keep_error_path=False).collect()
    assert preferred["horizon_model"] == "combination"
    assert preferred["horizon_mae"] == pytest.approx(2.0)
    by_error = InventoryConfig(selection=SelectionConfig(horizon_preferred_model=None))
    (lowest,) = choose_forecasts(*frames, by_error, keep_error_path=False).collect()
    assert lowest["horizon_model"] == "level"
