"""The per-series procedure: clean, route, fit with fallbacks, backtest, forecast. numpy/pandas only.

For one SKU-location series (`SeriesHistory`) and a `ForecastPlan`, `forecast_series`:

1. prepares the training window (`prepare_series`): the last `train_periods` periods; missing
   demand and stockout (censored) periods are imputed from the same season of neighbouring cycles
   (a stockout's observed sales are a lower bound, so the larger of the two is kept); negative
   demand is set to 0 and extreme outliers are capped, each noted in the recorded reason;
2. routes the series (`route_series`): all-zero history -> `zero`; recently launched -> the
   new-series model; otherwise the model of its demand class (ARIMA for smooth and erratic, Croston
   SBA / TSB for intermittent and lumpy), with the short-history model when ARIMA lacks data;
3. for each candidate (the seasonal-naive baseline and/or the routed model) runs the model along its
   fallback chain (`models.FALLBACKS`) until one fits: rolling-origin backtest, then the final fit on
   the whole window and the forecast. The forecast's ARIMA orders are searched on the whole
   window; each backtest fold searches its own orders on its training periods only (so no fold sees
   the data its orders were chosen on; `arima.backtest_search`), its stepwise search starting from
   the orders the previous fold chose, and the forecast's from the last fold's (fewer steps, each
   search still on its own data). Stored orders are reused from the
   previous run (warm start) unless the backtest error has degraded beyond the threshold;
4. with `--model auto`, adds the equal-weight combination of the fitted ARIMA, ETS and Theta
   (`combination` module) as one more candidate, with its own backtest.

`forecast_frame` runs this over a pandas frame of many series (what each Spark task does);
`records_frame` turns results into the rows of the four output tables.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from replenish.forecast.backtest import Fold, FoldResult, mean_mase, rolling_origin, run_backtest
from replenish.forecast.combination import COMBINATION, combine_folds, combine_predictions
from replenish.forecast.models import (
    ETS,
    MODELS,
    TSB,
    Arima,
    ArimaOrders,
    CrostonSBA,
    FitError,
    Prediction,
    RecentMean,
    SeasonalNaive,
    SeriesModel,
    Theta,
    Zero,
    fallback_chain,
    ordered_coefficients,
)
from replenish.forecast.settings import REGRESSORS, ForecastPlan
from replenish.shared import MONTHS_PER_PERIOD

log = logging.getLogger(__name__)

SERIES_KEYS: tuple[str, str] = ("sku", "location")
MAX_IMPUTATION_CYCLES = 4  # seasonal neighbours on each side used to impute a censored period
MIN_OUTLIER_SAMPLE = 10  # non-zero periods needed before outliers are capped
OUTLIER_REFERENCE_SEASONS = 4  # the outlier cap's trailing reference: this many seasons (at least 20 values)
REGULAR_REGRESSOR_VALUES: dict[str, float] = {
    "price_ratio": 1.0,
    "promo": 0.0,
    "is_holiday": 0.0,
    "views_ratio": 1.0,  # ordinary interest (features/indicators.py)
    "add_to_carts_ratio": 1.0,
}
"""Regressor values where history has none, and the future assumption for price and promotion:
regular price (ratio 1) and no promotion. Holidays come from the calendar."""


@dataclass(frozen=True)
class WarmStart:
    """What the previous run's registry says about a series' ARIMA.

    Attributes:
        orders: the orders to reuse; None when the last ARIMA search of the series failed.
        reference_mase: the backtest MASE when the orders were selected (the degradation yardstick).
        selected_on: ISO date of the run that searched these orders, or whose ARIMA search failed.
        reference_backtest: (folds, horizon, step) of the backtest that measured `reference_mase`.
        coefficients: the previous run's fitted coefficients, where the re-estimation starts.
    """

    orders: ArimaOrders | None
    reference_mase: float | None = None
    selected_on: str | None = None
    reference_backtest: tuple[int, int, int] | None = None
    coefficients: tuple[float, ...] | None = None

    @classmethod
    def from_params(cls, text: str | None) -> WarmStart | None:
        """Parse a `gold.model_registry.params` JSON; None when absent or malformed.

        An ARIMA row gives the orders; the row of the model a series fell back to after its ARIMA
        failed gives `orders=None` and the date of that failure (`params.arima_failed_on`).
        """
        if not text:
            return None
        try:
            data = json.loads(text)
            if ARIMA_FAILED_ON in data and "order" not in data:
                return cls(orders=None, selected_on=str(data[ARIMA_FAILED_ON]))
            reference = data.get("reference_mase")
            protocol = data.get("reference_backtest")
            return cls(
                orders=ArimaOrders.from_dict(data),
                reference_mase=float(reference) if reference is not None else None,
                selected_on=data.get("selected_on"),
                reference_backtest=tuple(int(v) for v in protocol) if protocol else None,  # type: ignore[arg-type]
                coefficients=ordered_coefficients(data["coef"]) if data.get("coef") else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring malformed stored ARIMA params %r: %s", text[:200], exc)
            return None

    def age_days(self, run_date: str | None) -> int | None:
        if not self.selected_on or not run_date:
            return None
        return int((np.datetime64(run_date, "D") - np.datetime64(self.selected_on, "D")).astype(int))


@dataclass
class SeriesHistory:
    """One series as read from `silver.demand` (sorted by date) plus its profile.

    Attributes:
        sku, location: the series key.
        dates: period starts, `datetime64[D]`, ascending.
        demand: units per period; NaN where unknown.
        censored: True where the period was mostly out of stock.
        regressors: name -> values per period (any of `REGRESSORS`); NaN where unknown.
        demand_class: from `silver.series_profile`; None to classify the window here.
        is_new: recently launched (`silver.series_profile.is_new`).
        warm: stored ARIMA orders, or None.
        top_revenue: within `routing.arima_revenue_share` of revenue (True without a profile).
    """

    sku: str
    location: str
    dates: np.ndarray
    demand: np.ndarray
    censored: np.ndarray
    regressors: dict[str, np.ndarray] = field(default_factory=dict)
    demand_class: str | None = None
    is_new: bool = False
    warm: WarmStart | None = None
    top_revenue: bool = True


@dataclass
class PreparedSeries:
    """The training window as the models see it.

    Attributes:
        dates: period starts of the window.
        y: cleaned, imputed demand (no NaN).
        actual: observed demand (NaN where unknown), what backtests are scored against.
        scored: periods whose actual is known demand (neither censored nor missing).
        n_usable: number of `scored` periods.
        X: observed regressors (NaN filled), or None.
        X_known: regressors as known in advance (holidays as observed, regular price, no promotion).
        regressor_names: the columns of X.
        notes: what cleaning did, for the recorded reason.
        folds: the backtest folds of the window.
    """

    dates: np.ndarray
    y: np.ndarray
    actual: np.ndarray
    scored: np.ndarray
    n_usable: int
    X: np.ndarray | None
    X_known: np.ndarray | None
    regressor_names: tuple[str, ...]
    notes: list[str]
    folds: list[Fold] = field(default_factory=list)


@dataclass
class CandidateResult:
    """One model's outcome for a series (a row of `gold.model_registry`)."""

    role: str
    requested: str
    model: str
    status: str
    reason: str
    params: dict[str, Any]
    fit_seconds: float
    prediction: Prediction | None
    folds: list[FoldResult]


@dataclass
class SeriesResult:
    """Everything one series produced."""

    history: SeriesHistory
    prepared: PreparedSeries | None
    demand_class: str | None
    candidates: list[CandidateResult]
    forecast_dates: np.ndarray
    error: str | None = None


def impute_seasonal(values: np.ndarray, missing: np.ndarray, season_length: int) -> np.ndarray:
    """Fill `missing` positions from earlier periods only.

    A missing period gets the mean of the known values at the same season position in up to
    `MAX_IMPUTATION_CYCLES` earlier cycles; without one, the mean of all earlier known values;
    without any, its own value where finite (a stockout's observed sales), else 0. Looking only
    backwards means a backtest fold's training data is imputed identically whether or not the
    periods after its cutoff exist: imputation cannot leak the future into a fold.
    """
    known = np.where(missing, np.nan, values)
    total = np.zeros(values.size)
    count = np.zeros(values.size)
    for cycle in range(1, MAX_IMPUTATION_CYCLES + 1):
        shift = cycle * max(season_length, 1)
        if shift >= values.size:
            break
        earlier = known[:-shift]  # the value `cycle` seasons before, for positions shift..n-1
        ok = np.isfinite(earlier)
        total[shift:][ok] += earlier[ok]
        count[shift:][ok] += 1
    estimate = np.divide(total, count, out=np.full(values.size, np.nan), where=count > 0)
    finite = np.isfinite(known)
    prior_total = np.concatenate([[0.0], np.cumsum(np.where(finite, known, 0.0))[:-1]])
    prior_count = np.concatenate([[0], np.cumsum(finite)[:-1]])
    expanding = np.divide(prior_total, prior_count, out=np.full(values.size, np.nan), where=prior_count > 0)
    estimate = np.where(np.isfinite(estimate), estimate, expanding)
    estimate = np.where(np.isfinite(estimate), estimate, np.where(np.isfinite(values), values, 0.0))
    return np.where(missing, estimate, values)


def series_folds(n_periods: int, plan: ForecastPlan) -> list[Fold]:
    """The backtest folds of a training window of `n_periods` under `plan`."""
    return rolling_origin(
        n_periods,
        folds=plan.folds,
        horizon=plan.backtest_horizon,
        step=plan.backtest_step,
        min_train=max(3, plan.windows.season_length + 2),
    )


def cap_outliers(values: np.ndarray, usable: np.ndarray, *, factor: float, reference: int) -> tuple[np.ndarray, int]:
    """Cap each period at `factor` x the 95th percentile of the last `reference` non-zero usable
    values before it; returns the capped copy and how many periods were capped.

    The reference trails each period, so the cap follows a trend (a series that grew tenfold over
    its window is not capped, as one cap from its oldest periods did) and never looks ahead (a fold's
    training data are capped as they would have been at its origin). Periods with fewer than
    `MIN_OUTLIER_SAMPLE` such values before them are not capped.
    """
    out = values.copy()
    positive = usable & np.isfinite(values) & (values > 0)
    where = np.flatnonzero(positive)
    sizes = values[where]
    if sizes.size < MIN_OUTLIER_SAMPLE:
        return out, 0
    before = np.searchsorted(where, np.arange(values.size))  # non-zero usable values before each period
    limits = np.full(values.size, np.inf)
    if sizes.size >= reference:  # full trailing windows at once: window j holds sizes[j : j + reference]
        full = np.quantile(np.lib.stride_tricks.sliding_window_view(sizes, reference), 0.95, axis=1)
        enough = before >= reference
        limits[enough] = full[before[enough] - reference]
    for t in np.flatnonzero((before >= MIN_OUTLIER_SAMPLE) & (before < reference)):
        limits[t] = np.quantile(sizes[: before[t]], 0.95)
    extreme = np.isfinite(values) & (values > factor * limits)
    out[extreme] = factor * limits[extreme]
    return out, int(extreme.sum())


def prepare_series(history: SeriesHistory, plan: ForecastPlan) -> PreparedSeries:
    """Clean and impute the training window of `history` (module docstring, step 1).

    Every cleaning step looks only backwards (the outlier cap trails each period), so the training
    data of each fold are what they would have been at its origin.
    """
    window = slice(-plan.windows.train_periods, None)
    dates = np.asarray(history.dates, dtype="datetime64[D]")[window]
    raw = np.asarray(history.demand, dtype=float)[window].copy()
    censored = np.asarray(history.censored, dtype=bool)[window]
    folds = series_folds(raw.size, plan)
    notes: list[str] = []
    missing = ~np.isfinite(raw)
    if missing.any():
        notes.append(f"{int(missing.sum())} missing periods imputed")
    negative = raw < 0
    if negative.any():
        raw[negative] = 0.0
        notes.append(f"{int(negative.sum())} negative values set to 0")
    scored = ~missing & ~censored
    actual = np.where(scored, raw, np.nan)
    if plan.outlier_factor > 0:
        reference = max(OUTLIER_REFERENCE_SEASONS * plan.windows.season_length, 2 * MIN_OUTLIER_SAMPLE)
        raw, capped = cap_outliers(raw, scored, factor=plan.outlier_factor, reference=reference)
        if capped:
            notes.append(f"{capped} outliers capped")
    n_usable = int(scored.sum())
    season = plan.windows.season_length
    if n_usable == 0:
        y = np.where(np.isfinite(raw), raw, 0.0)
        notes.append(f"all {raw.size} periods censored or missing: observed sales used as a lower bound")
    else:
        unknown = ~scored
        y = impute_seasonal(raw, unknown, season) if unknown.any() else raw.copy()
        stockout = censored & np.isfinite(raw)
        if stockout.any():
            y[stockout] = np.maximum(y[stockout], raw[stockout])
            notes.append(f"{int(stockout.sum())} censored periods imputed")
    names = tuple(name for name in plan.arima.regressors if name in history.regressors)
    X = X_known = None
    if names:
        columns = []
        for name in names:
            values = np.asarray(history.regressors[name], dtype=float)[window]
            columns.append(np.where(np.isfinite(values), values, REGULAR_REGRESSOR_VALUES[name]))
        X = np.column_stack(columns)
        X_known = np.column_stack(
            [
                X[:, i] if name == "is_holiday" else np.full(y.size, REGULAR_REGRESSOR_VALUES[name])
                for i, name in enumerate(names)
            ]
        )
    return PreparedSeries(dates, y, actual, scored, n_usable, X, X_known, names, notes, folds)


def local_demand_class(prepared: PreparedSeries) -> str:
    """Syntetos-Boylan class of the window, for series the profile does not cover."""
    from replenish.features.classify import classify_demand

    return classify_demand(prepared.y[prepared.scored], None) if prepared.n_usable else "no_demand"


def route_series(history: SeriesHistory, prepared: PreparedSeries, plan: ForecastPlan) -> tuple[str, str, str, str]:
    """Pick the routed model (module docstring, step 2).

    Returns:
        (model name, status, reason, demand class); status is `fallback` when the series gets a
        documented fallback rather than its class's model.
    """
    demand_class = history.demand_class or local_demand_class(prepared)
    routing = plan.routing
    if prepared.n_usable == 0:
        return routing.short_history, "fallback", "no uncensored period in the training window", demand_class
    if not np.any(prepared.y > 0):
        return "zero", "ok", "all-zero history", demand_class
    if demand_class == "no_demand":
        # the profile covers the whole history; the window has sales, so classify the window
        demand_class = local_demand_class(prepared)
    if history.is_new:
        return routing.new_series, "fallback", "recently launched SKU", demand_class
    name = routing.model_for(demand_class)
    if name == Arima.name and plan.mode == "auto" and not history.top_revenue:
        share = f"{routing.arima_revenue_share:.0%}"
        return (
            routing.other_smooth,
            "ok",
            f"demand class {demand_class}, outside the top {share} of revenue",
            demand_class,
        )
    if name in ("arima", "ets") and prepared.n_usable < plan.windows.min_arima_periods:
        reason = f"{prepared.n_usable} usable periods, fewer than the {plan.windows.min_arima_periods} {name} needs"
        return routing.short_history, "fallback", reason, demand_class
    return name, "ok", f"demand class {demand_class}", demand_class


def make_model(
    name: str,
    plan: ForecastPlan,
    *,
    regressor_names: tuple[str, ...] = (),
    orders: ArimaOrders | None = None,
    start: tuple[float, ...] | None = None,
) -> SeriesModel:
    """Build model `name` (a key of `MODELS`) with the plan's settings (`orders`, `start`: ARIMA only)."""
    season = plan.windows.season_length
    if name == SeasonalNaive.name:
        return SeasonalNaive(season_length=season)
    if name == Arima.name:
        return Arima(
            season_length=season, settings=plan.arima, orders=orders, regressor_names=regressor_names, start=start
        )
    if name == ETS.name:
        return ETS(season_length=season, spec=plan.ets_spec)
    if name == Theta.name:
        return Theta(season_length=season)
    if name == CrostonSBA.name:
        return CrostonSBA()
    if name == TSB.name:
        return TSB(alpha_demand=plan.croston.tsb_alpha_demand, alpha_probability=plan.croston.tsb_alpha_probability)
    if name == RecentMean.name:
        return RecentMean(window=plan.windows.recent_periods)
    if name == Zero.name:
        return Zero()
    if name in MODELS:
        return MODELS[name]()
    raise FitError(f"unknown model {name!r}")


def future_dates(last: np.datetime64, freq: str, h: int) -> np.ndarray:
    """The `h` period starts after `last` (a day, a Monday, or the 1st of a month or quarter)."""
    steps = np.arange(1, h + 1)
    last_day = np.datetime64(last, "D")
    if freq in MONTHS_PER_PERIOD:
        return (last_day.astype("datetime64[M]") + steps * MONTHS_PER_PERIOD[freq]).astype("datetime64[D]")
    return last_day + steps * (7 if freq == "W" else 1)


def future_regressors(
    names: tuple[str, ...], dates: np.ndarray, holidays: Mapping[np.datetime64, int] | None
) -> np.ndarray | None:
    """Regressor values for future periods: regular price, no promotion, the holiday calendar."""
    if not names:
        return None
    columns = []
    for name in names:
        if name == "is_holiday":
            calendar = holidays or {}
            columns.append(np.array([float(calendar.get(day, 0)) for day in dates]))
        else:
            columns.append(np.full(dates.size, REGULAR_REGRESSOR_VALUES[name]))
    return np.column_stack(columns)


@dataclass
class _Fitted:
    """A candidate model after its backtest and final fit."""

    model: SeriesModel
    prediction: Prediction
    folds: list[FoldResult]
    params: dict[str, Any]


def _fit_model(
    name: str,
    prepared: PreparedSeries,
    folds: list[Fold],
    plan: ForecastPlan,
    future_x: np.ndarray | None,
    orders: ArimaOrders | None,
    start: tuple[float, ...] | None = None,
) -> _Fitted:
    """Backtest and fit one model; FitError when any fit fails."""
    template = make_model(name, plan, regressor_names=prepared.regressor_names, orders=orders, start=start)
    X = prepared.X if template.uses_regressors else None
    X_known = prepared.X_known if template.uses_regressors else None
    extra: dict[str, Any] = {}
    fold_template = template
    if isinstance(template, Arima) and orders is None:
        # The forecast's orders are searched on the whole window (below); each fold searches on its
        # own training periods (`per_fold`, as statsforecast's cross_validation refits per window),
        # or reuses one search on the periods before the first origin (`first_origin`, cheaper).
        if folds and plan.arima.backtest_search == "first_origin":
            first = folds[0].cutoff
            fold_template = template.clone().fit(prepared.y[:first], None if X is None else X[:first]).frozen()
        extra = {
            "selection": "search",
            "selection_end": str(prepared.dates[-1]),
            "selected_on": plan.run_date,
            "backtest_search": plan.arima.backtest_search if folds else None,
        }

    searched: list[ArimaOrders] = []

    def seeded(model: SeriesModel) -> SeriesModel:
        """A searching ARIMA starts its stepwise search from the orders the previous fold's search chose."""
        if isinstance(model, Arima) and model.options["orders"] is None and searched:
            model.options["search_from"] = searched[-1]
        return model

    def fit_predict(train: np.ndarray, train_x: np.ndarray | None, next_x: np.ndarray | None, h: int) -> Prediction:
        model = seeded(fold_template.clone()).fit(train, train_x)
        if isinstance(model, Arima) and model.selection_ == "search":
            searched.append(model.orders_)
        return model.predict(h, next_x)

    fold_results = run_backtest(
        prepared.y,
        folds,
        fit_predict,
        season_length=plan.windows.season_length,
        X=X,
        X_known=X_known,
        actual=prepared.actual,
        scored=prepared.scored,
    )
    final = seeded(template.clone()).fit(prepared.y, X)
    prediction = final.predict(plan.horizon, future_x if template.uses_regressors else None)
    return _Fitted(final, prediction, fold_results, {**final.params(), **extra})


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


ARIMA_FAILED_ON = "arima_failed_on"
"""The `params` key, on the registry row of the model a series fell back to, that dates its failed ARIMA."""


def run_candidate(
    role: str,
    requested: str,
    route_status: str,
    route_reason: str,
    prepared: PreparedSeries,
    history: SeriesHistory,
    plan: ForecastPlan,
    future_x: np.ndarray | None,
) -> CandidateResult:
    """Fit `requested` along its fallback chain (module docstring, step 3)."""
    started = time.perf_counter()
    folds = prepared.folds
    reasons = [route_reason] if route_reason else []
    status = route_status
    arima_failed_on: str | None = None
    for name in fallback_chain(requested):
        warm = history.warm if (name == Arima.name and plan.warm_start) else None
        try:
            fitted = _fit_warm(name, warm, prepared, plan, future_x, reasons) if warm is not None else None
            if fitted is None:
                fitted = _fit_model(name, prepared, folds, plan, future_x, None)
                if name == Arima.name:
                    fitted.params["reference_mase"] = _finite_or_none(mean_mase(fitted.folds))
                    fitted.params["reference_backtest"] = list(_protocol(plan))
            if arima_failed_on is not None:
                fitted.params[ARIMA_FAILED_ON] = arima_failed_on
            return _candidate(role, requested, name, status, reasons, fitted, started)
        except FitError as exc:
            reasons.append(str(exc) if str(exc).startswith(name) else f"{name}: {exc}")
            status = "fallback"
            if name == Arima.name:
                not_retried = isinstance(exc, _NotRetried) and warm is not None
                arima_failed_on = warm.selected_on if not_retried and warm is not None else plan.run_date
    raise FitError("; ".join(reasons))  # unreachable: `zero` cannot fail


class _NotRetried(FitError):
    """ARIMA failed for this series at a recent search: a warm start goes straight to the fallback."""


def _protocol(plan: ForecastPlan) -> tuple[int, int, int]:
    return (plan.folds, plan.backtest_horizon, plan.backtest_step)


def _fit_warm(
    name: str,
    warm: WarmStart,
    prepared: PreparedSeries,
    plan: ForecastPlan,
    future_x: np.ndarray | None,
    reasons: list[str],
) -> _Fitted | None:
    """Re-estimate the stored orders; None (with the reason noted) when the orders must be searched again.

    They are searched again when older than `max_order_age_days`, when they no longer fit, or when
    the backtest MASE exceeds the one recorded at selection by more than `degradation_threshold`
    (compared only under the same backtest protocol: folds, horizon and step). A series whose last
    ARIMA search failed is not searched again (`_NotRetried`) until that failure is as old.
    """
    age = warm.age_days(plan.run_date)
    expired = plan.max_order_age_days is not None and age is not None and age > plan.max_order_age_days
    if warm.orders is None:
        if age is not None and not expired:
            until = (
                f"before it is {plan.max_order_age_days} days old"
                if plan.max_order_age_days is not None
                else "without a full search"
            )
            raise _NotRetried(f"arima: its search failed on {warm.selected_on}; not retried {until} (warm start)")
        reasons.append(f"ARIMA search failed on {warm.selected_on}: searched again")
        return None
    if expired:
        reasons.append(f"stored orders are {age} days old: searched again")
        return None
    try:
        fitted = _fit_model(name, prepared, prepared.folds, plan, future_x, warm.orders, warm.coefficients)
    except FitError as exc:
        reasons.append(f"reused orders failed ({exc}): searched again")
        return None
    current, reference = mean_mase(fitted.folds), warm.reference_mase
    comparable = warm.reference_backtest == _protocol(plan) and math.isfinite(current)
    if reference is not None and comparable and current > reference * (1 + plan.degradation_threshold):
        reasons.append(
            f"reused {warm.orders.describe()} degraded: backtest MASE {current:.3f} > reference "
            f"{reference:.3f} x {1 + plan.degradation_threshold:g}: searched again"
        )
        return None
    fitted.params.update(
        selection="warm",
        selected_on=warm.selected_on,
        reference_mase=reference,
        reference_backtest=list(warm.reference_backtest) if warm.reference_backtest else None,
    )
    note = "" if comparable or reference is None else " (backtest settings changed: no degradation check)"
    reasons.append(f"warm start: reused {warm.orders.describe()}{note}")
    return fitted


def _candidate(
    role: str, requested: str, name: str, status: str, reasons: list[str], fitted: _Fitted, started: float
) -> CandidateResult:
    if name != requested:
        status = "fallback"
        reasons.append(f"fell back to {name}")
    return CandidateResult(
        role=role,
        requested=requested,
        model=name,
        status=status,
        reason="; ".join(reasons),
        params=fitted.params,
        fit_seconds=time.perf_counter() - started,
        prediction=fitted.prediction,
        folds=fitted.folds,
    )


def combination_candidate(candidates: list[CandidateResult], members: tuple[str, ...]) -> CandidateResult | None:
    """The equal-weight mean of the fitted `members` among `candidates` (`combination` module), or None.

    A member that fell back to another model counts as that model, once; fewer than two distinct
    members give no combination.
    """
    started = time.perf_counter()
    fitted = [c for c in candidates if c.model in members and c.prediction is not None]
    if len(fitted) < 2:
        return None
    names = [c.model for c in fitted]
    return CandidateResult(
        role="candidate",
        requested=COMBINATION,
        model=COMBINATION,
        status="ok",
        reason=f"equal-weight mean of {', '.join(names)}",
        params={"members": names},
        fit_seconds=time.perf_counter() - started,
        prediction=combine_predictions([c.prediction for c in fitted if c.prediction is not None]),
        folds=combine_folds([c.folds for c in fitted]),
    )


def forecast_series(
    history: SeriesHistory, plan: ForecastPlan, holidays: Mapping[np.datetime64, int] | None = None
) -> SeriesResult:
    """Run the whole procedure for one series; never raises for bad data (the error is recorded).

    Args:
        history: the series.
        plan: the run's settings.
        holidays: holiday flag (or count of holiday days) per future period start; missing: 0.
    """
    try:
        if len(history.dates) == 0:
            raise FitError("the series has no periods")
        prepared = prepare_series(history, plan)
        dates = future_dates(prepared.dates[-1], plan.freq, plan.horizon)
        future_x = future_regressors(prepared.regressor_names, dates, holidays)
        routed, route_status, route_reason, demand_class = route_series(history, prepared, plan)
        notes = "; ".join(prepared.notes)
        candidates: list[CandidateResult] = []
        roles: list[tuple[str, str, str, str]] = []
        for role in plan.candidates:
            if role == "baseline":
                roles.append((role, SeasonalNaive.name, "ok", "baseline"))
            else:
                roles.append((role, routed, route_status, route_reason))
        if plan.mode == "auto" and routed in (Arima.name, ETS.name) and route_status == "ok":
            extra = [name for name in plan.auto_candidates if name != routed]
            roles += [("candidate", name, "ok", "candidate of --model auto") for name in extra]
        for role, requested, status, reason in roles:
            reason = f"{reason}; {notes}" if notes else reason
            result = run_candidate(role, requested, status, reason, prepared, history, plan, future_x)
            same = next((c for c in candidates if c.model == result.model), None)
            if same is not None:
                same.reason += f"; also the {role} model ({result.reason})"
                continue
            candidates.append(result)
        combined = combination_candidate(candidates, plan.combination)
        if combined is not None:
            candidates.append(combined)
        return SeriesResult(history, prepared, demand_class, candidates, dates)
    except Exception as exc:  # one bad series never fails the job: record why and go on
        log.warning("series %s/%s failed: %s", history.sku, history.location, exc, exc_info=True)
        message = f"{type(exc).__name__}: {str(exc)[:500]}"
        return SeriesResult(history, None, history.demand_class, [], np.array([], "datetime64[D]"), error=message)


# ---------------------------------------------------------------------------------------------
# Many series in one pandas frame, and the output records
# ---------------------------------------------------------------------------------------------

RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("record", "string"),
    ("sku", "string"),
    ("location", "string"),
    ("model", "string"),
    ("date", "date"),
    ("step", "int"),
    ("fold", "int"),
    ("cutoff", "date"),
    ("y", "double"),
    ("censored", "boolean"),
    ("yhat", "double"),
    ("yhat_lo_80", "double"),
    ("yhat_hi_80", "double"),
    ("yhat_lo_95", "double"),
    ("yhat_hi_95", "double"),
    ("mase_scale", "double"),
    ("horizon", "int"),
    ("mase", "double"),
    ("wape", "double"),
    ("bias", "double"),
    ("rmse", "double"),
    ("coverage_80", "double"),
    ("coverage_95", "double"),
    ("n_scored", "int"),
    ("demand_class", "string"),
    ("params", "string"),
    ("status", "string"),
    ("reason", "string"),
    ("fit_seconds", "double"),
    ("train_start", "date"),
    ("train_end", "date"),
    ("n_obs", "long"),
)
"""The rows one Spark task returns: the four output tables in one schema, told apart by `record`
(forecast, backtest, metric, registry); columns a record type does not use are null."""

RECORD_TYPES: tuple[str, ...] = ("forecast", "backtest", "metric", "registry")
_PREDICTION_COLUMNS = {
    "yhat": "mean",
    "yhat_lo_80": "lo_80",
    "yhat_hi_80": "hi_80",
    "yhat_lo_95": "lo_95",
    "yhat_hi_95": "hi_95",
}


class _Records:
    """Column-wise accumulator of output records (cheaper than a DataFrame per series)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {name: [] for name, _ in RECORD_COLUMNS}
        self.kinds = dict(RECORD_COLUMNS)
        self.rows = 0

    def add(self, n: int, **values: Any) -> None:
        if n == 0:
            return
        for name, kind in RECORD_COLUMNS:
            value = values.get(name)
            if isinstance(value, np.ndarray):
                array = value.astype(object) if kind in ("date", "string", "boolean") else value.astype(float)
            elif kind in ("double", "int", "long"):
                array = np.full(n, np.nan if value is None else float(value))
            else:
                array = np.full(n, value, dtype=object)
            self.columns[name].append(array)
        self.rows += n

    def frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for name, kind in RECORD_COLUMNS:
            parts = self.columns[name]
            values = (
                np.concatenate(parts)
                if parts
                else np.array([], dtype=float if kind in ("double", "int", "long") else object)
            )
            if kind in ("int", "long"):
                data[name] = pd.Series(values, dtype=float).astype("Int32" if kind == "int" else "Int64").array
            elif kind == "boolean":
                data[name] = pd.array(values.tolist(), dtype="boolean")
            else:
                data[name] = values
        return pd.DataFrame(data, columns=[name for name, _ in RECORD_COLUMNS])


def _dates(values: np.ndarray) -> np.ndarray:
    """datetime64[D] as `datetime.date` objects (what Arrow maps to a Spark date)."""
    return np.asarray(values, dtype="datetime64[D]").astype(object)


def _add_result(records: _Records, result: SeriesResult) -> None:
    history = result.history
    key = {"sku": history.sku, "location": history.location}
    prepared = result.prepared
    if result.error is not None or prepared is None:
        records.add(
            1,
            record="registry",
            **key,
            model=None,
            status="failed",
            reason=result.error,
            demand_class=result.demand_class,
            n_obs=len(history.dates),
        )
        return
    train = {"train_start": prepared.dates[0].astype(object), "train_end": prepared.dates[-1].astype(object)}
    for candidate in result.candidates:
        horizon = 0 if candidate.prediction is None else candidate.prediction["mean"].size
        if candidate.prediction is not None:
            records.add(
                horizon,
                record="forecast",
                **key,
                model=candidate.model,
                date=_dates(result.forecast_dates),
                step=np.arange(1, horizon + 1),
                **{column: candidate.prediction[field_name] for column, field_name in _PREDICTION_COLUMNS.items()},
            )
        for fold in candidate.folds:
            window = slice(fold.fold.cutoff, fold.fold.end)
            cutoff_date = prepared.dates[fold.fold.cutoff].astype(object)
            records.add(
                fold.fold.horizon,
                record="backtest",
                **key,
                model=candidate.model,
                fold=fold.fold.fold,
                cutoff=cutoff_date,
                date=_dates(prepared.dates[window]),
                step=np.arange(1, fold.fold.horizon + 1),
                y=fold.actual,
                censored=~fold.scored,
                mase_scale=fold.scale,
                **{column: fold.prediction[field_name] for column, field_name in _PREDICTION_COLUMNS.items()},
            )
            records.add(
                1,
                record="metric",
                **key,
                model=candidate.model,
                fold=fold.fold.fold,
                cutoff=cutoff_date,
                horizon=fold.fold.horizon,
                **fold.metrics,
            )
        records.add(
            1,
            record="registry",
            **key,
            model=candidate.model,
            demand_class=result.demand_class,
            params=json.dumps(candidate.params, default=_json_default, sort_keys=True),
            status=candidate.status,
            reason=candidate.reason,
            fit_seconds=candidate.fit_seconds,
            n_obs=prepared.y.size,
            **train,
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def records_frame(results: Iterable[SeriesResult]) -> pd.DataFrame:
    """The output records (`RECORD_COLUMNS`) of `results`."""
    records = _Records()
    for result in results:
        _add_result(records, result)
    return records.frame()


def _optional(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    return frame[name].to_numpy() if name in frame.columns else None


def histories(frame: pd.DataFrame) -> Iterator[SeriesHistory]:
    """Split a frame of rows sorted by (sku, location, date) into `SeriesHistory` objects.

    Columns: sku, location, date, demand, censored; optional regressors (`REGRESSORS`),
    demand_class, is_new, top_revenue and warm_params (the stored registry params JSON).
    """
    if frame.empty:
        return
    sku = frame["sku"].to_numpy(dtype=object)
    location = frame["location"].to_numpy(dtype=object)
    boundaries = np.flatnonzero((sku[1:] != sku[:-1]) | (location[1:] != location[:-1])) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(frame)]])
    dates = pd.to_datetime(frame["date"]).to_numpy().astype("datetime64[D]")
    demand = pd.to_numeric(frame["demand"], errors="coerce").to_numpy(dtype=float)
    censored = (
        frame["censored"].fillna(False).to_numpy(dtype=bool) if "censored" in frame else np.zeros(len(frame), bool)
    )
    regressors = {
        name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float) for name in REGRESSORS if name in frame
    }
    demand_class = _optional(frame, "demand_class")
    is_new = _optional(frame, "is_new")
    top_revenue = _optional(frame, "top_revenue")
    warm_params = _optional(frame, "warm_params")
    for start, end in zip(starts, ends, strict=True):
        part = slice(start, end)
        yield SeriesHistory(
            sku=str(sku[start]),
            location=str(location[start]),
            dates=dates[part],
            demand=demand[part],
            censored=censored[part],
            regressors={name: values[part] for name, values in regressors.items()},
            demand_class=None if demand_class is None or pd.isna(demand_class[start]) else str(demand_class[start]),
            is_new=bool(is_new[start]) if is_new is not None and not pd.isna(is_new[start]) else False,
            top_revenue=True if top_revenue is None or pd.isna(top_revenue[start]) else bool(top_revenue[start]),
            warm=WarmStart.from_params(warm_params[start])
            if warm_params is not None and isinstance(warm_params[start], str)
            else None,
        )


def _import_models() -> None:
    """Import statsforecast (seconds, once per process) before any fit is timed."""
    import statsforecast.models  # noqa: F401


def forecast_frame(
    frame: pd.DataFrame, plan: ForecastPlan, holidays: Mapping[np.datetime64, int] | None = None
) -> pd.DataFrame:
    """Forecast every series of `frame` (see `histories`) and return the output records.

    This is the in-process equivalent of one Spark task, and what the Spark job runs per batch.
    """
    _import_models()
    ordered = frame.sort_values(["sku", "location", "date"], kind="stable")
    return records_frame(forecast_series(history, plan, holidays) for history in histories(ordered))


def forecast_batches(
    batches: Iterable[pd.DataFrame], plan: ForecastPlan, holidays: Mapping[np.datetime64, int] | None = None
) -> Iterator[pd.DataFrame]:
    """Stream over Arrow batches of rows sorted by (sku, location, date), as `mapInPandas` gives them.

    A series may straddle two batches, so the last series of each batch is held back and joined to
    the next; memory is bounded by one batch plus one series, whatever the partition's size.
    """
    _import_models()
    carry: pd.DataFrame | None = None
    for batch in batches:
        if batch.empty:
            continue
        frame = batch if carry is None else pd.concat([carry, batch], ignore_index=True)
        last_sku, last_location = frame["sku"].iat[-1], frame["location"].iat[-1]
        tail = (frame["sku"].to_numpy() == last_sku) & (frame["location"].to_numpy() == last_location)
        first_tail = int(np.argmax(tail))
        carry = frame.iloc[first_tail:].reset_index(drop=True)
        complete = frame.iloc[:first_tail]
        if not complete.empty:
            yield records_frame(forecast_series(history, plan, holidays) for history in histories(complete))
    if carry is not None and not carry.empty:
        yield records_frame(forecast_series(history, plan, holidays) for history in histories(carry))
