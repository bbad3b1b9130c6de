"""Distributed inference: `mapInPandas` over window partitions, the model loaded once per Python worker.

Each output row is one (series, origin, step) with the five quantiles in units.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

QUANTILE_COLUMNS: tuple[str, ...] = ("q025", "q10", "q50", "q90", "q975")
_LOADED: dict[str, Any] = {}


def prediction_schema() -> StructType:
    """sku, location string; origin date; origin_idx, step int; y double (NaN: not observed); the quantiles."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("sku", T.StringType()),
            T.StructField("location", T.StringType()),
            T.StructField("origin", T.DateType()),
            T.StructField("origin_idx", T.IntegerType()),
            T.StructField("step", T.IntegerType()),
            T.StructField("y", T.DoubleType()),
            *[T.StructField(name, T.DoubleType()) for name in QUANTILE_COLUMNS],
        ]
    )


def load_model(path: str) -> Any:
    """The forecaster saved at `path`, loaded once per process and reused by every later batch."""
    if path not in _LOADED:
        from replenish.neural.model import LstmForecaster

        _LOADED[path] = LstmForecaster.load(path)
    return _LOADED[path]


def predict_frame(frame: pd.DataFrame, forecaster: Any) -> pd.DataFrame:
    """Forecast the windows of `frame` (window columns) into one row per window and step."""
    from replenish.neural.model import window_columns

    if frame.empty:
        return pd.DataFrame(columns=[field.name for field in prediction_schema().fields])
    columns = window_columns(frame)
    quantiles = forecaster.predict(columns)  # (n, horizon, 5)
    n, horizon = quantiles.shape[:2]
    observed = columns["target_mask"] > 0
    actual = np.where(observed, columns["target"], np.nan)
    out = pd.DataFrame(
        {
            "sku": np.repeat(frame["sku"].to_numpy(), horizon),
            "location": np.repeat(frame["location"].to_numpy(), horizon),
            "origin": np.repeat(frame["origin"].to_numpy(), horizon),
            "origin_idx": np.repeat(frame["origin_idx"].to_numpy(), horizon).astype("int32"),
            "step": np.tile(np.arange(1, horizon + 1, dtype="int32"), n),
            "y": actual.reshape(-1).astype(float),
        }
    )
    for index, name in enumerate(QUANTILE_COLUMNS):
        out[name] = quantiles[:, :, index].reshape(-1).astype(float)
    return out


def _predict_batches(batches: Iterator[pd.DataFrame], model_path: str) -> Iterator[pd.DataFrame]:
    forecaster = load_model(model_path)
    for frame in batches:
        yield predict_frame(frame, forecaster)


def predict_windows(windows: DataFrame, model_path: str, *, partitions: int | None = None) -> DataFrame:
    """Forecast every window of `windows` (`windows.WINDOW_COLUMNS`) with the model at `model_path`."""
    rows = windows.repartition(partitions, "sku", "location") if partitions else windows
    task = functools.partial(_predict_batches, model_path=model_path)
    return rows.mapInPandas(task, schema=prediction_schema())
