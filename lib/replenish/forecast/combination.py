"""The equal-weight combination of a series' fitted models: one more candidate, scored like the others.

Why a combination: on real monthly panels the per-series choice among ETS, ARIMA and Theta by
backtest error is worse than any one of them fixed, because short series leave one or two backtest
folds, too little evidence to tell the models apart per series; the plain mean of the three beats
each of them (docs/forecasting.md, "Accuracy on real data"). This is the forecast-combination result
of the M competitions (Makridakis et al.; Petropoulos & Svetunkov's SCUM).

The combination's forecast is the mean of the members' forecasts per step, and its 80% and 95%
interval bounds are the means of the members' bounds: exact when the members' errors move together
(as they mostly do: the same history drives them), wider than needed otherwise. Its backtest folds
combine the members' fold forecasts the same way and are scored by the same `backtest.score`, so
the interval coverage it achieves is measured, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replenish.forecast.backtest import FoldResult, score
from replenish.forecast.models import Prediction

COMBINATION = "combination"
"""The model name of the combination's rows in gold.forecast, gold.backtest_forecast and the registry."""


def combine_predictions(predictions: Sequence[Prediction]) -> Prediction:
    """The per-step mean of each field (`mean`, `lo_80`, ...) over `predictions` of equal length."""
    if not predictions:
        raise ValueError("no predictions to combine")
    fields = predictions[0].keys()
    return {name: np.mean([np.asarray(p[name], dtype=float) for p in predictions], axis=0) for name in fields}


def combine_folds(members: Sequence[Sequence[FoldResult]]) -> list[FoldResult]:
    """The combined forecast of every fold that all `members` forecast (the same origin and window).

    The actuals, scored mask and MASE scale are the fold's, shared by the members; the metrics are
    recomputed on the combined forecast.
    """
    if not members:
        return []
    by_window = [{(r.fold.cutoff, r.fold.end): r for r in results} for results in members]
    combined = []
    for first in members[0]:
        window = (first.fold.cutoff, first.fold.end)
        folds = [results.get(window) for results in by_window]
        if any(f is None for f in folds):
            continue
        prediction = combine_predictions([f.prediction for f in folds if f is not None])
        combined.append(
            FoldResult(
                fold=first.fold,
                prediction=prediction,
                actual=first.actual,
                scored=first.scored,
                scale=first.scale,
                metrics=score(first.actual, prediction, scale=first.scale, scored=first.scored),
            )
        )
    return combined
