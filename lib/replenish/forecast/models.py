"""Per-series forecasting models: small classes with `fit(y, X)` and `predict(h, X)`, on numpy arrays.

The maths is statsforecast's (ARIMA, ETS, seasonal naive, Croston SBA, TSB); these classes give
every model the same shape (always 80% and 95% intervals, never negative demand), turn library
failures into a `FitError` whose message is the reason recorded in the model registry, and expose
the fitted structure (`params`, `frozen`) so that ARIMA orders can be stored and reused.

`MODELS` (name -> class) is the seam where models plug in: a model added there can be named in the
routing settings and in `FALLBACKS`, and the backtest protocol serves it unchanged.

Example:
    ```python
    model = Arima(season_length=7).fit(y)          # automatic order search
    forecast = model.predict(28)                   # {"mean", "lo_80", "hi_80", "lo_95", "hi_95"}
    refit = model.frozen().fit(y_tomorrow)         # same orders, parameters re-estimated from today's
    ```
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from replenish.errors import ReplenishError
from replenish.forecast.optim import lean_gradients
from replenish.forecast.settings import ArimaSettings

LEVELS: tuple[int, ...] = (80, 95)
PREDICTION_KEYS: tuple[str, ...] = ("mean", "lo_80", "hi_80", "lo_95", "hi_95")
MIN_RESIDUALS = 10  # fewer in-sample residuals than this: intervals assume Poisson demand instead
EXPLOSIVE_FACTOR = 20.0  # a forecast above this multiple of the largest observation is rejected
MAX_ETS_SEASON = 24
COLLINEARITY_TOLERANCE = 1e-6  # smallest / sum of singular values of [1, X] below this: a regressor is dropped

Prediction = dict[str, np.ndarray]


class FitError(ReplenishError):
    """A model cannot be fitted to a series, or its forecast is unusable; the message is the reason."""


def _quiet(call: Callable[[], Any], what: str) -> Any:
    """Run a statsforecast call with its warnings silenced and its errors turned into FitError."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return call()
    except FitError:
        raise
    except (  # NotImplementedError: statsforecast ETS on "tiny datasets"
        ValueError,
        ArithmeticError,
        np.linalg.LinAlgError,
        IndexError,
        TypeError,
        KeyError,
        NotImplementedError,
    ) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FitError(f"{what} failed: {type(exc).__name__}: {message[:200]}") from exc


def _from_statsforecast(result: Mapping[str, Any]) -> Prediction:
    """statsforecast's `{mean, lo-80, hi-80, ...}` as float arrays under `lo_80`-style keys."""
    out = {"mean": np.asarray(result["mean"], dtype=float)}
    for level in LEVELS:
        out[f"lo_{level}"] = np.asarray(result[f"lo-{level}"], dtype=float)
        out[f"hi_{level}"] = np.asarray(result[f"hi-{level}"], dtype=float)
    return out


def finalize(prediction: Prediction) -> Prediction:
    """Clip to non-negative demand and keep the bounds nested: lo_95 <= lo_80 <= mean <= hi_80 <= hi_95.

    Raises:
        FitError: the forecast has a NaN or an infinite value.
    """
    for key in PREDICTION_KEYS:
        if not np.all(np.isfinite(prediction[key])):
            raise FitError(f"forecast {key} is not finite")
    mean = np.maximum(prediction["mean"], 0.0)
    lo_80 = np.clip(prediction["lo_80"], 0.0, mean)
    hi_80 = np.maximum(prediction["hi_80"], mean)
    return {
        "mean": mean,
        "lo_80": lo_80,
        "hi_80": hi_80,
        "lo_95": np.clip(prediction["lo_95"], 0.0, lo_80),
        "hi_95": np.maximum(prediction["hi_95"], hi_80),
    }


def poisson_intervals(mean: np.ndarray) -> Prediction:
    """Intervals of Poisson demand at `mean`: for series too short to learn their own spread."""
    from scipy.stats import poisson

    rate = np.maximum(np.asarray(mean, dtype=float), 1e-9)
    out = {"mean": np.asarray(mean, dtype=float)}
    for level in LEVELS:
        tail = (100 - level) / 200
        out[f"lo_{level}"] = poisson.ppf(tail, rate).astype(float)
        out[f"hi_{level}"] = poisson.ppf(1 - tail, rate).astype(float)
    return out


def residual_intervals(mean: np.ndarray, residuals: np.ndarray) -> Prediction:
    """Intervals from the empirical quantiles of in-sample one-step residuals, added to `mean`.

    Used for the flat forecasts of intermittent demand, whose errors are far from normal (mostly a
    small negative error, now and then a large positive one); empirical quantiles keep that skew.
    With fewer than `MIN_RESIDUALS` residuals the intervals assume Poisson demand instead.
    """
    finite = residuals[np.isfinite(residuals)]
    if finite.size < MIN_RESIDUALS:
        return poisson_intervals(mean)
    out = {"mean": np.asarray(mean, dtype=float)}
    for level in LEVELS:
        tail = (100 - level) / 200
        low, high = np.quantile(finite, [tail, 1 - tail])
        out[f"lo_{level}"] = mean + low
        out[f"hi_{level}"] = mean + high
    return out


class SeriesModel:
    """Base class: `fit(y, X) -> self`, `predict(h, X) -> Prediction`, `params()`, `frozen()`.

    `y` is a clean float array (no NaN, censored periods already imputed); `X` an optional
    `(len(y), k)` float array of regressors, used only by models with `uses_regressors`.
    Subclasses store their constructor arguments in `self.options` so `clone` can rebuild them.
    """

    name: ClassVar[str] = "model"
    uses_regressors: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def clone(self) -> SeriesModel:
        """An unfitted copy with the same options."""
        return type(self)(**self.options)

    def frozen(self) -> SeriesModel:
        """An unfitted copy whose structural choices (e.g. ARIMA orders) are those of this fit."""
        return self.clone()

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> SeriesModel:
        raise NotImplementedError

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """What was fitted, JSON-serializable, for the model registry."""
        return {}

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{type(self).__name__}({options})"


def _check_history(y: np.ndarray, minimum: int, name: str) -> np.ndarray:
    values = np.asarray(y, dtype=float)
    if values.ndim != 1:
        raise FitError(f"{name}: expected a 1-d series, got shape {values.shape}")
    if values.size < minimum:
        raise FitError(f"{name}: needs at least {minimum} periods, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise FitError(f"{name}: the series has NaN or infinite values")
    return values


class SeasonalNaive(SeriesModel):
    """Repeat the last season; normal intervals from the in-sample seasonal differences (the baseline).

    With less than a season plus two periods of history the season length drops to 1 (naive).
    """

    name = "seasonal_naive"

    def __init__(self, season_length: int = 7) -> None:
        super().__init__(season_length=season_length)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> SeasonalNaive:
        from statsforecast.models import SeasonalNaive as _SeasonalNaive

        values = _check_history(y, 3, self.name)
        season = self.options["season_length"]
        self.season_length_ = season if values.size >= season + 2 else 1
        self.model_ = _quiet(lambda: _SeasonalNaive(season_length=self.season_length_).fit(values), self.name)
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        result = _quiet(lambda: self.model_.predict(h=h, level=list(LEVELS)), self.name)
        return finalize(_from_statsforecast(result))

    def params(self) -> dict[str, Any]:
        return {"season_length": int(self.season_length_), "sigma": float(self.model_.model_["sigma"])}


@dataclass(frozen=True)
class ArimaOrders:
    """The structure of a fitted ARIMA: what a warm start reuses (parameters are re-estimated)."""

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int] = (0, 0, 0)
    season_length: int = 1
    include_mean: bool = True
    include_drift: bool = False
    regressors: tuple[str, ...] = field(default_factory=tuple)
    fourier_terms: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["order"] = list(self.order)
        out["seasonal_order"] = list(self.seasonal_order)
        out["regressors"] = list(self.regressors)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArimaOrders:
        """Read orders back from registry params; raises ValueError on a malformed entry."""
        order = tuple(int(v) for v in data["order"])
        seasonal = tuple(int(v) for v in data.get("seasonal_order", (0, 0, 0)))
        if len(order) != 3 or len(seasonal) != 3 or min(*order, *seasonal) < 0:
            raise ValueError(f"malformed ARIMA orders {data!r}")
        return cls(
            order=order,  # type: ignore[arg-type]
            seasonal_order=seasonal,  # type: ignore[arg-type]
            season_length=int(data.get("season_length", 1)),
            include_mean=bool(data.get("include_mean", True)),
            include_drift=bool(data.get("include_drift", False)),
            regressors=tuple(str(v) for v in data.get("regressors", ())),
            fourier_terms=int(data.get("fourier_terms", 0)),
        )

    def describe(self) -> str:
        p, d, q = self.order
        text = f"ARIMA({p},{d},{q})"
        if self.season_length > 1 and any(self.seasonal_order):
            big_p, big_d, big_q = self.seasonal_order
            text += f"({big_p},{big_d},{big_q})[{self.season_length}]"
        if self.fourier_terms:
            text += f"+Fourier({self.fourier_terms})[{self.season_length}]"
        return text


_COEFFICIENT_GROUPS = ("ar", "ma", "sar", "sma", "intercept", "drift", "ex_")


def _coefficient_rank(name: str) -> tuple[int, int]:
    group = next(i for i, prefix in enumerate(_COEFFICIENT_GROUPS) if name.startswith(prefix))
    digits = name[len(_COEFFICIENT_GROUPS[group]) :]
    return group, int(digits) if digits.isdigit() else 0


def ordered_coefficients(coefficients: Mapping[str, float]) -> tuple[float, ...]:
    """ARIMA coefficients by name (as the registry stores them) in statsforecast's estimation order.

    That order is AR, MA, seasonal AR, seasonal MA, then the regression columns: intercept, drift,
    `ex_1`, `ex_2`, ...; raises ValueError on a name that is none of these.
    """
    try:
        names = sorted(coefficients, key=_coefficient_rank)
    except StopIteration:
        raise ValueError(f"unknown ARIMA coefficient among {sorted(coefficients)}") from None
    return tuple(float(coefficients[name]) for name in names)


def _inside_unit_circle(coefficients: np.ndarray) -> bool:
    """Whether 1 + c1·z + ... + cp·z^p has all its roots outside the unit circle (p = 0: True).

    With c = -AR coefficients this is stationarity, with c = MA coefficients invertibility.
    """
    if coefficients.size == 0 or not np.any(coefficients):
        return True
    roots = np.polynomial.polynomial.polyroots(np.r_[1.0, coefficients])
    return bool(np.all(np.abs(roots) > 1.0))


def _library_start(start: np.ndarray, spec: Any, values: np.ndarray, matrix: np.ndarray | None) -> np.ndarray | None:
    """`start` in the coordinates statsforecast's `arima(method="ML", init=...)` reads it in.

    That function (a port of R's `stats::arima`) does two things to a given `init` that this undoes,
    so that the optimizer begins exactly at `start`: it maps the AR coefficients to the optimizer's
    unconstrained space twice (once on reading `init`, once before optimizing), so the AR part is
    given as the constrained image of `start`; and with more than one regression column (the
    intercept, the drift and the regressors) it estimates their coefficients on the columns rotated by
    their right singular vectors, so that part is given rotated. None when the lengths disagree.
    The unit test of warm refits on unchanged data checks this against the library.
    """
    from statsforecast.arima import arima_undopars

    p, d, q = spec.order
    big_p, big_d, big_q = spec.seasonal_order
    columns = [] if matrix is None else [matrix]
    if spec.include_drift:
        columns.insert(0, np.arange(1, values.size + 1, dtype=float)[:, None])
    if spec.include_mean and d + big_d == 0:
        columns.insert(0, np.ones((values.size, 1)))
    design = np.column_stack(columns) if columns else np.empty((values.size, 0))
    arma_count = p + q + big_p + big_q
    if start.size != arma_count + design.shape[1]:
        return None
    init = start.copy()
    if design.shape[1] > 1:
        _, _, vt = np.linalg.svd(design[np.isfinite(design).all(axis=1)])
        init[arma_count:] = vt.T @ start[arma_count:]
    arma = np.array([p, q, big_p, big_q, spec.season_length, d, big_d], dtype=np.int32)
    return arima_undopars(init, arma)


def _aicc(fitted: Mapping[str, Any]) -> float:
    value = fitted.get("aicc")
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")


def fourier_terms(start: int, length: int, period: float, pairs: int) -> np.ndarray:
    """sin and cos of 2πkt/period for k = 1..pairs at positions t = start..start+length-1, one column each."""
    t = np.arange(start, start + length, dtype=float)[:, None]
    angles = 2.0 * np.pi * t * np.arange(1, pairs + 1, dtype=float)[None, :] / period
    return np.column_stack([np.sin(angles), np.cos(angles)])


def _search_start(orders: ArimaOrders | None) -> tuple[int, int, int, int]:
    """(p, q, P, Q) where the stepwise search starts: Hyndman-Khandakar's (2, 2, 1, 1), or given orders."""
    if orders is None:
        return 2, 2, 1, 1
    return orders.order[0], orders.order[2], orders.seasonal_order[0], orders.seasonal_order[2]


class Arima(SeriesModel):
    """ARIMA with automatic order selection (statsforecast `AutoARIMA`), or with given orders.

    Without `orders` the fit searches orders (Hyndman-Khandakar stepwise, unit-root tests for the
    differencing); with `orders` it only re-estimates the parameters, which is what a warm start
    does. Regressors are the columns of `X` named by `regressor_names`; a column that is constant
    over the training window, or (nearly) a linear combination of the intercept and the columns
    before it (a price ratio that only moves with promotions), is dropped for that fit.

    A season longer than `settings.fourier_above` (weekly data's 52) is not modelled by seasonal
    lags but by `settings.fourier_terms` sine/cosine pairs as extra regressors of a non-seasonal
    ARIMA (dynamic harmonic regression, Hyndman & Athanasopoulos, FPP3 12.1): a seasonal ARIMA with
    m = 52 carries a state of 50+ lags, costs seconds per likelihood fit, and is poorly identified on
    three years of history.

    A refit of given orders that also has `start` (the coefficients of an earlier fit, in
    statsforecast's order) maximises the exact likelihood from there (method ML): on a window one
    night longer the optimum has barely moved, so the optimizer needs a few steps instead of a
    conditional-sum-of-squares pass plus a full ML search from zero. A start that does not fit the
    design (a regressor dropped since) or is not stationary, or a fit from it that does not
    converge, falls back to that full estimation.

    Args:
        season_length: periods per season; the search is seasonal only with
            `settings.min_seasonal_cycles` full seasons of history.
        settings: the search space (`ArimaSettings`).
        orders: fixed orders (warm start), or None to search.
        regressor_names: the names of the columns of `X`, in order.
        start: coefficients to start the estimation of `orders` from, or None.
        search_from: orders where the stepwise search starts (an earlier fold's choice: from near the
            optimum it takes fewer steps), or None for Hyndman-Khandakar's (2, 2, 1, 1).
    """

    name = "arima"
    uses_regressors = True

    def __init__(
        self,
        season_length: int = 1,
        settings: ArimaSettings | None = None,
        orders: ArimaOrders | None = None,
        regressor_names: tuple[str, ...] = (),
        start: tuple[float, ...] | None = None,
        search_from: ArimaOrders | None = None,
    ) -> None:
        super().__init__(
            season_length=season_length,
            settings=settings or ArimaSettings(),
            orders=orders,
            regressor_names=tuple(regressor_names),
            start=None if start is None else tuple(float(v) for v in start),
            search_from=search_from,
        )

    def _regressors(self, X: np.ndarray | None, n: int) -> tuple[tuple[str, ...], np.ndarray | None]:
        names: tuple[str, ...] = self.options["regressor_names"]
        if X is None or not names:
            return (), None
        matrix = np.asarray(X, dtype=float).reshape(n, len(names))
        orders: ArimaOrders | None = self.options["orders"]
        wanted = orders.regressors if orders is not None else names
        candidates = [
            i
            for i, name in enumerate(names)
            if name in wanted and np.all(np.isfinite(matrix[:, i])) and np.ptp(matrix[:, i]) > 0
        ]
        keep: list[int] = []
        for i in candidates:  # drop a column the intercept and the columns kept explain (e.g. price ~ promo)
            design = np.column_stack([np.ones(n), matrix[:, [*keep, i]]])
            singular = np.linalg.svd(design, compute_uv=False)
            if singular.min() / singular.sum() > COLLINEARITY_TOLERANCE:
                keep.append(i)
        if not keep:
            return (), None
        return tuple(names[i] for i in keep), np.ascontiguousarray(matrix[:, keep])

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Arima:
        with lean_gradients():
            return self._fit(y, X)

    def _fit(self, y: np.ndarray, X: np.ndarray | None) -> Arima:
        from statsforecast.models import ARIMA, AutoARIMA

        settings: ArimaSettings = self.options["settings"]
        orders: ArimaOrders | None = self.options["orders"]
        values = _check_history(y, 4, self.name)
        self.used_regressors_, matrix = self._regressors(X, values.size)
        self.selection_ = "search" if orders is None else "reuse"
        season = self.options["season_length"] if orders is None else orders.season_length
        long_season = season > settings.fourier_above
        if orders is None:
            seasonal = season > 1 and values.size >= settings.min_seasonal_cycles * season
            self.fourier_terms_ = min(settings.fourier_terms, season // 2) if seasonal and long_season else 0
        else:
            self.fourier_terms_ = orders.fourier_terms
        self.n_train_ = values.size
        self.dropped_regressors_: dict[str, float | None] = {}
        named = matrix
        matrix = self._with_fourier(matrix, 0, values.size)
        if orders is None:
            seasonal = seasonal and not long_season
            first = _search_start(self.options.get("search_from"))
            search = AutoARIMA(
                season_length=season if seasonal else 1,
                seasonal=seasonal,
                max_p=settings.max_p,
                max_q=settings.max_q,
                max_P=settings.max_P,
                max_Q=settings.max_Q,
                max_order=settings.max_order,
                max_d=settings.max_d,
                max_D=settings.max_D,
                start_p=min(first[0], settings.max_p),
                start_q=min(first[1], settings.max_q),
                start_P=min(first[2], settings.max_P),
                start_Q=min(first[3], settings.max_Q),
                stepwise=settings.stepwise,
                approximation=settings.approximation,
                allowdrift=settings.allow_drift,
                allowmean=settings.allow_mean,
                ic=settings.ic,
            )
            self.model_ = _quiet(lambda: search.fit(values, matrix), "ARIMA order search")
            self.estimation_ = "search"
            if settings.prune_regressors and self.used_regressors_:
                self._prune_regressors(values, named)
        else:
            if season > 1 and values.size <= orders.order[1] + orders.seasonal_order[1] * season + 2:
                raise FitError(f"arima: {values.size} periods are too few for {orders.describe()}")
            fixed = ARIMA(
                order=orders.order,
                season_length=1 if orders.fourier_terms else season,
                seasonal_order=orders.seasonal_order,
                include_mean=orders.include_mean,
                include_drift=orders.include_drift,
            )
            started = self._estimate_from_start(fixed, values, matrix, start=self.options["start"])
            if started is not None:
                fixed.model_ = started
                self.model_, self.estimation_ = fixed, "from start"
            else:
                self.model_ = _quiet(lambda: fixed.fit(values, matrix), f"{orders.describe()} estimation")
                self.estimation_ = "full"
        fitted = self.model_.model_
        if fitted.get("code") == 1:
            raise FitError("arima: the likelihood optimizer did not converge (iteration limit reached)")
        if not math.isfinite(float(fitted.get("sigma2", float("nan")))):
            raise FitError("arima: the fitted innovation variance is not finite")
        self.scale_ = float(np.max(np.abs(values))) if values.size else 0.0
        return self

    def _prune_regressors(self, values: np.ndarray, named: np.ndarray | None) -> None:
        """Drop, one at a time, each named regressor whose removal does not raise the searched orders' AICc.

        The standard errors statsforecast reports for regression coefficients are not usable as a
        test (on a pure-noise flag they give |t| > 4), so each regressor is measured by the
        information criterion of the same orders fitted without it: a holiday count without signal
        in a series then carries no weight in its forecast (`ArimaSettings.prune_regressors`).
        """
        from statsforecast.models import ARIMA

        searched = self.orders_
        p, _, q = searched.order
        arma_count = p + q + searched.seasonal_order[0] + searched.seasonal_order[2]

        def refit(matrix: np.ndarray | None, dropped: int) -> Any:
            """The searched orders without regressor `dropped`, estimated from the current coefficients."""
            spec = ARIMA(
                order=searched.order,
                season_length=1 if searched.fourier_terms else searched.season_length,
                seasonal_order=searched.seasonal_order,
                include_mean=searched.include_mean,
                include_drift=searched.include_drift,
            )
            coefficients = self.coefficients_
            named_coefficients = self.model_.model_["coef"]
            position = arma_count + int("intercept" in named_coefficients) + int("drift" in named_coefficients)
            start = coefficients[: position + dropped] + coefficients[position + dropped + 1 :]
            started = self._estimate_from_start(spec, values, matrix, start=start)
            if started is not None:
                spec.model_ = started
                return spec
            return _quiet(lambda: spec.fit(values, matrix), "ARIMA without a regressor")

        current = _aicc(self.model_.model_)
        names = list(self.used_regressors_)
        columns = list(range(len(names)))
        for regressor in list(names):
            i = names.index(regressor)
            rest = columns[:i] + columns[i + 1 :]
            remaining = None if named is None or not rest else np.ascontiguousarray(named[:, rest])
            matrix = self._with_fourier(remaining, 0, values.size)
            try:
                candidate = refit(matrix, i)
            except FitError:
                continue
            without = _aicc(candidate.model_)
            if math.isfinite(without) and (not math.isfinite(current) or without <= current):
                self.dropped_regressors_[regressor] = round(current - without, 3) if math.isfinite(current) else None
                self.model_, current = candidate, without
                del names[i], columns[i]
        self.used_regressors_ = tuple(names)

    def _estimate_from_start(
        self, spec: Any, values: np.ndarray, matrix: np.ndarray | None, *, start: tuple[float, ...] | None
    ) -> dict | None:
        """The ML fit of `spec` (a statsforecast `ARIMA`) from `start`; None where it cannot be used."""
        from statsforecast.arima import Arima as estimate

        p, q, big_p = spec.order[0], spec.order[2], spec.seasonal_order[0]
        if start is None or not all(math.isfinite(v) for v in start):
            return None
        ar, seasonal_ar = np.array(start[:p]), np.array(start[p + q : p + q + big_p])
        if not (_inside_unit_circle(-ar) and _inside_unit_circle(-seasonal_ar)):
            return None
        init = _library_start(np.array(start, dtype=float), spec, values, matrix)
        if init is None:
            return None
        try:
            fitted = _quiet(
                lambda: estimate(
                    values,
                    order=spec.order,
                    seasonal={"order": spec.seasonal_order, "period": spec.season_length},
                    xreg=matrix,
                    include_mean=spec.include_mean,
                    include_drift=spec.include_drift,
                    method="ML",
                    init=init,
                ),
                "ARIMA estimation from the previous coefficients",
            )
        except FitError:
            return None
        usable = (
            fitted.get("code") != 1
            and math.isfinite(float(fitted.get("sigma2", float("nan"))))
            and all(math.isfinite(float(v)) for v in fitted["coef"].values())
        )
        return fitted if usable else None

    def _with_fourier(self, matrix: np.ndarray | None, start: int, length: int) -> np.ndarray | None:
        """The regressors with the Fourier columns of positions start..start+length-1 appended."""
        if not self.fourier_terms_:
            return matrix
        season = self.options["season_length"]
        orders: ArimaOrders | None = self.options["orders"]
        period = orders.season_length if orders is not None else season
        waves = fourier_terms(start, length, float(period), self.fourier_terms_)
        return np.ascontiguousarray(waves if matrix is None else np.column_stack([matrix, waves]))

    @property
    def orders_(self) -> ArimaOrders:
        """The orders of the fitted model."""
        fitted = self.model_.model_
        p, q, big_p, big_q, season, d, big_d = (int(v) for v in fitted["arma"])
        names = set(fitted["coef"])
        if self.fourier_terms_:
            orders: ArimaOrders | None = self.options["orders"]
            season = orders.season_length if orders is not None else self.options["season_length"]
        return ArimaOrders(
            order=(p, d, q),
            seasonal_order=(big_p, big_d, big_q),
            season_length=season,
            include_mean="intercept" in names,
            include_drift="drift" in names,
            regressors=self.used_regressors_,
            fourier_terms=self.fourier_terms_,
        )

    def frozen(self) -> Arima:
        """The same orders, to be re-estimated starting from this fit's coefficients."""
        return Arima(
            season_length=self.options["season_length"],
            settings=self.options["settings"],
            orders=self.orders_,
            regressor_names=self.options["regressor_names"],
            start=self.coefficients_,
        )

    @property
    def coefficients_(self) -> tuple[float, ...]:
        """The fitted coefficients in statsforecast's order (AR, MA, seasonal AR and MA, regressors)."""
        return ordered_coefficients(self.model_.model_["coef"])

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        future = None
        if self.used_regressors_:
            if X is None:
                raise FitError("arima: the model uses regressors but no future values were given")
            names: tuple[str, ...] = self.options["regressor_names"]
            matrix = np.asarray(X, dtype=float).reshape(h, len(names))
            future = np.ascontiguousarray(matrix[:, [names.index(name) for name in self.used_regressors_]])
        future = self._with_fourier(future, self.n_train_, h)
        result = _quiet(lambda: self.model_.predict(h=h, X=future, level=list(LEVELS)), "ARIMA forecast")
        prediction = _from_statsforecast(result)
        if np.any(np.abs(prediction["mean"]) > EXPLOSIVE_FACTOR * (self.scale_ + 1.0)):
            raise FitError(f"arima: explosive forecast (above {EXPLOSIVE_FACTOR:g}x the largest observation)")
        return finalize(prediction)

    def params(self) -> dict[str, Any]:
        fitted = self.model_.model_
        return {
            **self.orders_.to_dict(),
            "selection": self.selection_,
            "estimation": self.estimation_,
            "coef": {name: round(float(value), 6) for name, value in fitted["coef"].items()},
            "sigma2": float(fitted["sigma2"]),
            "aicc": None if not math.isfinite(float(fitted.get("aicc", np.nan))) else float(fitted["aicc"]),
            **({"dropped_regressors": self.dropped_regressors_} if self.dropped_regressors_ else {}),
        }


class ETS(SeriesModel):
    """Exponential smoothing with automatic error and season selection (statsforecast `AutoETS`).

    ARIMA's fallback (a different model family, so it often fits where ARIMA fails) and the cheap
    model for low-value smooth series. The default `spec` "ZNZ" leaves the trend out: trend and
    damped-trend candidates cost about six times as much to search and rarely pay off over a
    few-weeks horizon of daily demand.

    Args:
        season_length: periods per season; used with two full seasons of history.
        spec: the ETS model string of statsforecast (error, trend, season; Z = selected).
    """

    name = "ets"

    def __init__(self, season_length: int = 1, spec: str = "ZNZ") -> None:
        super().__init__(season_length=season_length, spec=spec)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> ETS:
        from statsforecast.models import AutoETS

        values = _check_history(y, 4, self.name)
        season = self.options["season_length"]
        # statsforecast's ETS, like R's, handles seasons of at most 24 periods (not a year of weeks)
        self.season_length_ = season if season <= MAX_ETS_SEASON and values.size >= 2 * season + 2 else 1
        spec = self.options["spec"] if self.season_length_ > 1 else self.options["spec"][:2] + "N"
        self.model_ = _quiet(lambda: AutoETS(season_length=self.season_length_, model=spec).fit(values), "ETS")
        self.scale_ = float(np.max(np.abs(values)))
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        prediction = _from_statsforecast(_quiet(lambda: self.model_.predict(h=h, level=list(LEVELS)), "ETS forecast"))
        if np.any(np.abs(prediction["mean"]) > EXPLOSIVE_FACTOR * (self.scale_ + 1.0)):
            raise FitError(f"ets: explosive forecast (above {EXPLOSIVE_FACTOR:g}x the largest observation)")
        return finalize(prediction)

    def params(self) -> dict[str, Any]:
        return {"season_length": int(self.season_length_), "method": str(self.model_.model_.get("method", ""))}


class Theta(SeriesModel):
    """The Theta method with automatic variant selection (statsforecast `AutoTheta`).

    Fits the standard, optimised and dynamic Theta variants (deseasonalised by a classical
    decomposition when a seasonality test finds a season) and keeps the best in-sample one. Cheap,
    and on monthly business series (M1, Tourism) often better than ARIMA or ETS: a candidate of
    `--model auto` beside them, chosen per series by the backtest.

    Args:
        season_length: periods per season; used with two full seasons of history.
    """

    name = "theta"

    def __init__(self, season_length: int = 1) -> None:
        super().__init__(season_length=season_length)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Theta:
        from statsforecast.models import AutoTheta

        values = _check_history(y, 4, self.name)
        season = self.options["season_length"]
        self.season_length_ = season if values.size >= 2 * season + 2 else 1
        # the multiplicative decomposition needs positive data; additive otherwise
        decomposition = "multiplicative" if np.all(values > 0) else "additive"
        model = AutoTheta(season_length=self.season_length_, decomposition_type=decomposition)
        self.model_ = _quiet(lambda: model.fit(values), "Theta")
        self.scale_ = float(np.max(np.abs(values)))
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        result = _quiet(lambda: self.model_.predict(h=h, level=list(LEVELS)), "Theta forecast")
        prediction = _from_statsforecast(result)
        if np.any(np.abs(prediction["mean"]) > EXPLOSIVE_FACTOR * (self.scale_ + 1.0)):
            raise FitError(f"theta: explosive forecast (above {EXPLOSIVE_FACTOR:g}x the largest observation)")
        return finalize(prediction)

    def params(self) -> dict[str, Any]:
        return {"season_length": int(self.season_length_), "variant": str(self.model_.model_.get("modeltype", ""))}


class _Intermittent(SeriesModel):
    """Shared by the Croston family: a flat forecast with empirical residual intervals."""

    def _fit_library(self, values: np.ndarray) -> Any:
        raise NotImplementedError

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> _Intermittent:
        values = _check_history(y, 2, self.name)
        if not np.any(values > 0):
            self.level_ = 0.0
            self.residuals_ = np.zeros(values.size)
            return self
        model = _quiet(lambda: self._fit_library(values), self.name)
        self.level_ = float(model.model_["mean"][0])
        self.residuals_ = values - np.asarray(model.model_["fitted"], dtype=float)
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        return finalize(residual_intervals(np.full(h, self.level_), self.residuals_))

    def params(self) -> dict[str, Any]:
        return {**self.options, "level": round(self.level_, 6)}


class CrostonSBA(_Intermittent):
    """Croston's method with the Syntetos-Boylan bias correction, for intermittent demand."""

    name = "croston_sba"

    def __init__(self) -> None:
        super().__init__()

    def _fit_library(self, values: np.ndarray) -> Any:
        from statsforecast.models import CrostonSBA as _CrostonSBA

        return _CrostonSBA().fit(values)


class TSB(_Intermittent):
    """Teunter-Syntetos-Babai: smooths the demand probability, so it decays when an item stops selling.

    Args:
        alpha_demand: smoothing of the non-zero demand size.
        alpha_probability: smoothing of the probability of demand.
    """

    name = "tsb"

    def __init__(self, alpha_demand: float = 0.1, alpha_probability: float = 0.1) -> None:
        super().__init__(alpha_demand=alpha_demand, alpha_probability=alpha_probability)

    def _fit_library(self, values: np.ndarray) -> Any:
        from statsforecast.models import TSB as _TSB

        return _TSB(alpha_d=self.options["alpha_demand"], alpha_p=self.options["alpha_probability"]).fit(values)


class RecentMean(SeriesModel):
    """The mean of the last `window` periods: the fallback of new and short series.

    Intervals are the empirical spread around that mean, or Poisson at the mean when there are
    fewer than `MIN_RESIDUALS` periods (a new SKU with a week of history).
    """

    name = "recent_mean"

    def __init__(self, window: int = 28) -> None:
        super().__init__(window=window)

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> RecentMean:
        values = _check_history(y, 1, self.name)
        self.recent_ = values[-self.options["window"] :]
        self.level_ = float(self.recent_.mean())
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        return finalize(residual_intervals(np.full(h, self.level_), self.recent_ - self.level_))

    def params(self) -> dict[str, Any]:
        return {"window": int(self.options["window"]), "n_recent": int(self.recent_.size), "level": self.level_}


class Zero(SeriesModel):
    """Forecast zero with zero-width intervals: for series that never sold."""

    name = "zero"

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> Zero:
        return self

    def predict(self, h: int, X: np.ndarray | None = None) -> Prediction:
        return {key: np.zeros(h) for key in PREDICTION_KEYS}


MODELS: dict[str, type[SeriesModel]] = {
    SeasonalNaive.name: SeasonalNaive,
    Arima.name: Arima,
    ETS.name: ETS,
    Theta.name: Theta,
    CrostonSBA.name: CrostonSBA,
    TSB.name: TSB,
    RecentMean.name: RecentMean,
    Zero.name: Zero,
}
"""Every per-series model by name: the seam where a new model plugs in."""

FALLBACKS: dict[str, str | None] = {
    "arima": "ets",
    "ets": "seasonal_naive",
    "theta": "seasonal_naive",
    "seasonal_naive": "recent_mean",
    "croston_sba": "recent_mean",
    "tsb": "recent_mean",
    "recent_mean": "zero",
    "zero": None,
}
"""The model a series falls back to when a model cannot be fitted (the reason is recorded)."""


def fallback_chain(name: str) -> list[str]:
    """`name` followed by its fallbacks, e.g. arima, ets, seasonal_naive, recent_mean, zero."""
    chain = [name]
    while (following := FALLBACKS.get(chain[-1])) is not None and following not in chain:
        chain.append(following)
    return chain
