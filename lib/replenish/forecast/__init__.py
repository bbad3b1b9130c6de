"""The forecast stage: per-series models, the rolling-origin backtest and their Spark orchestration.

* `models`: per-series model classes (`MODELS`, name -> class; `FALLBACKS`).
* `backtest`: the rolling-origin protocol and error measures every model shares.
* `series`: the per-series procedure (clean, route, fit with fallbacks, backtest, forecast).
* `distributed`: `forecast_tables`, the Spark job's one transform (mapInPandas over series).
* `registry`: stored ARIMA orders for warm starts.
"""

from replenish.forecast.backtest import METRICS, Fold, mase_scale, rolling_origin, run_backtest, score, score_frame
from replenish.forecast.distributed import TABLE_COLUMNS, ForecastTables, backtest_metrics, forecast_tables
from replenish.forecast.models import FALLBACKS, MODELS, ArimaOrders, FitError, SeriesModel, fallback_chain
from replenish.forecast.registry import latest_arima_orders
from replenish.forecast.series import (
    SeriesHistory,
    forecast_frame,
    forecast_series,
    prepare_series,
    route_series,
)
from replenish.forecast.settings import FORECAST_MODES, ForecastConfig, ForecastPlan, default_plan

__all__ = [
    "FALLBACKS",
    "FORECAST_MODES",
    "METRICS",
    "MODELS",
    "TABLE_COLUMNS",
    "ArimaOrders",
    "FitError",
    "Fold",
    "ForecastConfig",
    "ForecastPlan",
    "ForecastTables",
    "SeriesHistory",
    "SeriesModel",
    "backtest_metrics",
    "default_plan",
    "fallback_chain",
    "forecast_frame",
    "forecast_series",
    "forecast_tables",
    "latest_arima_orders",
    "mase_scale",
    "prepare_series",
    "rolling_origin",
    "route_series",
    "run_backtest",
    "score",
    "score_frame",
]
