"""The rolling-origin backtest: one protocol and one set of error measures for every model.

Protocol: `rolling_origin` places `folds` forecast origins (cutoffs) at the end of the history,
`step` periods apart, each followed by a test window of `horizon` periods. `run_backtest` hands the
model, at each origin, only the periods before it (and the known-in-advance regressors of the test
window), so no fold can see its own future; the model refits from scratch at each origin.

Measures (`score`), per series, model and fold, over the test periods that are not censored (a
stockout period's sales are not its demand):

* MASE: mean absolute error / `mase_scale` of the fold's training data (the in-sample mean absolute
  seasonal-naive error; lag 1 when the history is shorter than a season). NaN when that is 0.
* WAPE: sum |error| / sum actual. NaN when the actuals sum to 0.
* bias: sum (forecast - actual) / sum actual; positive means over-forecasting. NaN as WAPE.
* RMSE: root mean squared error, in units.
* coverage_80, coverage_95: share of actuals inside the 80% / 95% interval.

Later models (an LSTM, ensembles) produce rows shaped like `gold.backtest_forecast` from the same
folds and score them with `score_frame`, so every model is compared on the same footing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from replenish.errors import ValidationError

METRICS: tuple[str, ...] = ("mase", "wape", "bias", "rmse", "coverage_80", "coverage_95")

FitPredict = Callable[[np.ndarray, "np.ndarray | None", "np.ndarray | None", int], dict[str, np.ndarray]]
"""`fit_predict(train_y, train_X, future_X, h) -> prediction`: fit on the training periods only."""


@dataclass(frozen=True)
class Fold:
    """One forecast origin.

    Attributes:
        fold: 1 for the earliest origin, counting up.
        cutoff: index of the first test period, which is also the number of training periods.
        end: index one past the last test period.
    """

    fold: int
    cutoff: int
    end: int

    @property
    def horizon(self) -> int:
        return self.end - self.cutoff


def rolling_origin(
    n_periods: int, *, folds: int, horizon: int, step: int | None = None, min_train: int = 1
) -> list[Fold]:
    """The backtest folds of a series of `n_periods`, earliest first.

    The last fold's test window ends at the last period; each earlier origin lies `step` periods
    before the next. Origins with fewer than `min_train` training periods are left out, so a short
    series gets fewer folds (possibly none).

    Example:
        ```python
        rolling_origin(100, folds=3, horizon=10)
        # [Fold(fold=1, cutoff=70, end=80), Fold(2, 80, 90), Fold(3, 90, 100)]
        ```
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    step = step or horizon
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    cutoffs = [n_periods - horizon - k * step for k in range(folds)]
    cutoffs = sorted(c for c in cutoffs if c >= max(min_train, 1))
    return [Fold(fold=i + 1, cutoff=c, end=min(c + horizon, n_periods)) for i, c in enumerate(cutoffs)]


def mase_scale(train: np.ndarray, season_length: int) -> float:
    """In-sample mean absolute error of the seasonal naive forecast: the MASE denominator.

    Uses lag `season_length` when the history is longer than a season, else lag 1; NaN when the
    history is too short or perfectly repeating (a zero scale makes MASE meaningless).
    """
    values = np.asarray(train, dtype=float)
    lag = season_length if values.size > season_length else 1
    if values.size <= lag:
        return float("nan")
    scale = float(np.nanmean(np.abs(values[lag:] - values[:-lag])))
    return scale if scale > 0 else float("nan")


def score(
    actual: np.ndarray,
    prediction: dict[str, np.ndarray],
    *,
    scale: float,
    scored: np.ndarray | None = None,
) -> dict[str, float]:
    """The error measures of one fold (module docstring), over the `scored` periods.

    Args:
        actual: the test-window actuals.
        prediction: `mean`, `lo_80`, `hi_80`, `lo_95`, `hi_95` over the same periods.
        scale: the fold's `mase_scale`.
        scored: mask of the periods to score (False for censored ones); all when None.

    Returns:
        The `METRICS` plus `n_scored`, the number of periods scored; measures are NaN when no period is.
    """
    actual = np.asarray(actual, dtype=float)
    mask = np.isfinite(actual) if scored is None else (np.asarray(scored, dtype=bool) & np.isfinite(actual))
    count = int(mask.sum())
    if count == 0:
        return {**dict.fromkeys(METRICS, float("nan")), "n_scored": 0}
    y = actual[mask]
    yhat = np.asarray(prediction["mean"], dtype=float)[mask]
    error = yhat - y
    total = float(y.sum())
    absolute = float(np.abs(error).sum())

    def covered(level: int) -> float:
        low = np.asarray(prediction[f"lo_{level}"], dtype=float)[mask]
        high = np.asarray(prediction[f"hi_{level}"], dtype=float)[mask]
        return float(np.mean((y >= low) & (y <= high)))

    return {
        "mase": absolute / count / scale if np.isfinite(scale) and scale > 0 else float("nan"),
        "wape": absolute / total if total > 0 else float("nan"),
        "bias": float(error.sum()) / total if total > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "coverage_80": covered(80),
        "coverage_95": covered(95),
        "n_scored": count,
    }


@dataclass(frozen=True)
class FoldResult:
    """The forecast of one fold against its actuals, and its scores."""

    fold: Fold
    prediction: dict[str, np.ndarray]
    actual: np.ndarray
    scored: np.ndarray
    scale: float
    metrics: dict[str, float]


def run_backtest(
    y: np.ndarray,
    folds: list[Fold],
    fit_predict: FitPredict,
    *,
    season_length: int,
    X: np.ndarray | None = None,
    X_known: np.ndarray | None = None,
    actual: np.ndarray | None = None,
    scored: np.ndarray | None = None,
) -> list[FoldResult]:
    """Run the protocol: at each fold, fit on the periods before the cutoff and forecast the window.

    Args:
        y: the training series the model sees (cleaned and imputed).
        folds: from `rolling_origin`.
        fit_predict: fits a fresh model on its arguments only and forecasts `h` periods.
        season_length: for the MASE scale.
        X: regressors as observed, aligned with `y` (the training part is passed).
        X_known: regressors as they would have been known at the origin (e.g. the holiday calendar,
            planned prices), aligned with `y`; the test window's rows are passed as future values.
        actual: what is scored against; defaults to `y` (pass the raw demand so imputed values
            are never scored).
        scored: mask of the periods to score (False for censored ones).

    Returns:
        One `FoldResult` per fold. Exceptions of `fit_predict` propagate: the caller decides whether
        a failing fold fails the model.
    """
    values = np.asarray(y, dtype=float)
    truth = values if actual is None else np.asarray(actual, dtype=float)
    if truth.shape != values.shape:
        raise ValidationError(f"actual has shape {truth.shape}, y {values.shape}")
    mask = np.ones(values.size, dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
    results = []
    for fold in folds:
        train = values[: fold.cutoff].copy()
        train_x = None if X is None else X[: fold.cutoff].copy()
        future_x = None if X_known is None else X_known[fold.cutoff : fold.end].copy()
        prediction = fit_predict(train, train_x, future_x, fold.horizon)
        scale = mase_scale(train, season_length)
        window = slice(fold.cutoff, fold.end)
        results.append(
            FoldResult(
                fold=fold,
                prediction=prediction,
                actual=truth[window],
                scored=mask[window],
                scale=scale,
                metrics=score(truth[window], prediction, scale=scale, scored=mask[window]),
            )
        )
    return results


def mean_mase(results: list[FoldResult]) -> float:
    """Average MASE over the folds that have one (NaN when none): the warm-start yardstick."""
    values = [r.metrics["mase"] for r in results if np.isfinite(r.metrics["mase"])]
    return float(np.mean(values)) if values else float("nan")


SCORE_KEYS: tuple[str, ...] = ("sku", "location", "model", "fold")


def score_frame(backtest: pd.DataFrame, keys: tuple[str, ...] = SCORE_KEYS) -> pd.DataFrame:
    """Score rows shaped like `gold.backtest_forecast` (any model's), one row per `keys` group.

    Needs columns `keys`, cutoff, y, yhat, yhat_lo_80, yhat_hi_80, yhat_lo_95, yhat_hi_95,
    mase_scale and censored. Returns `keys`, cutoff, horizon, the `METRICS` and n_scored.
    """
    needed = [*keys, "cutoff", "y", "yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95", "mase_scale"]
    missing = [column for column in needed if column not in backtest.columns]
    if missing:
        raise ValidationError(f"backtest rows lack column(s) {missing}")
    rows = []
    for group, frame in backtest.groupby(list(keys), sort=True):
        censored = frame["censored"].to_numpy(dtype=bool) if "censored" in frame else np.zeros(len(frame), bool)
        prediction = {
            "mean": frame["yhat"].to_numpy(float),
            **{
                f"{side}_{level}": frame[f"yhat_{side}_{level}"].to_numpy(float)
                for side in ("lo", "hi")
                for level in (80, 95)
            },
        }
        metrics = score(
            frame["y"].to_numpy(float), prediction, scale=float(frame["mase_scale"].iloc[0]), scored=~censored
        )
        rows.append(
            {
                **dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True)),
                "cutoff": frame["cutoff"].iloc[0],
                "horizon": len(frame),
                **metrics,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "cutoff", "horizon", *METRICS, "n_scored"])
