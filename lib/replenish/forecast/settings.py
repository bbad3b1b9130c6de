"""Typed settings of the forecast stage (the `forecast:` section of conf/base.yaml).

Period counts are given per frequency, as in the features settings: 364 periods is a year of days
but seven years of weeks. `ForecastConfig.plan(freq)` resolves everything one run needs into a
small, frozen, picklable `ForecastPlan` that the per-series code receives on the executors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from replenish.errors import ConfigError
from replenish.neural.settings import LstmSettings
from replenish.shared import FREQUENCIES, check_freq

ForecastMode = Literal["auto", "baseline", "arima", "lstm"]
FORECAST_MODES: tuple[str, ...] = ("auto", "baseline", "arima", "lstm")
DEMAND_CLASSES: tuple[str, ...] = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")
REGRESSORS: tuple[str, ...] = ("price_ratio", "promo", "is_holiday", "views_ratio", "add_to_carts_ratio")


@dataclass(frozen=True)
class ForecastPeriods:
    """Period counts of one frequency; every number is in periods of that frequency.

    Attributes:
        season_length: periods per seasonal cycle (D: 7, a week; W: 52, a year; M: 12).
        train_periods: the most recent periods a model is fitted on. Capping the window bounds the
            cost of a fit and keeps old regimes out of the model.
        min_arima_periods: a series with fewer usable periods is too short for ARIMA and gets the
            short-history fallback.
        recent_periods: the window of the `recent_mean` fallback (new and short series).
        arima: `forecast.arima` settings that this frequency replaces, e.g. the wider order search
            of monthly series (`ForecastConfig.arima_for`).
        ets_model: replaces `forecast.ets_model` for this frequency; None keeps it. Daily demand
            uses ZNZ: over a 28-day horizon from 26 weeks, a selected trend extrapolates noise
            (docs/forecasting.md: more accurate on the demo's series and 6x cheaper).
    """

    season_length: int
    train_periods: int
    min_arima_periods: int
    recent_periods: int
    arima: dict[str, Any] = field(default_factory=dict, hash=False)
    ets_model: str | None = None

    def __post_init__(self) -> None:
        if self.season_length < 1:
            raise ConfigError(f"season_length must be >= 1, got {self.season_length}")
        if self.train_periods < 2:
            raise ConfigError(f"train_periods must be >= 2, got {self.train_periods}")
        if self.min_arima_periods < 4:
            raise ConfigError(f"min_arima_periods must be >= 4, got {self.min_arima_periods}")
        if self.recent_periods < 1:
            raise ConfigError(f"recent_periods must be >= 1, got {self.recent_periods}")


SECTIONS: dict[str, str] = {"D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly"}
"""The `forecast` section of each frequency's period counts."""


def check_ets_model(spec: str, *, setting: str) -> None:
    """An ETS model string: error, trend, season, each of Z (selected), A, N or M."""
    if len(spec) != 3 or any(c not in "ZANM" for c in spec.upper()):
        raise ConfigError(f"forecast.{setting} must be three of Z, A, N, M (e.g. ZNZ), got {spec!r}")


def _daily() -> ForecastPeriods:
    return ForecastPeriods(season_length=7, train_periods=182, min_arima_periods=56, recent_periods=28, ets_model="ZNZ")


def _weekly() -> ForecastPeriods:
    return ForecastPeriods(season_length=52, train_periods=156, min_arima_periods=26, recent_periods=8)


WIDE_ARIMA_SEARCH: dict[str, Any] = {"max_p": 5, "max_q": 5, "max_P": 2, "max_Q": 2, "max_order": 5}
"""statsforecast AutoARIMA's own search space: monthly series are few and long-lived enough to afford it."""


def _monthly() -> ForecastPeriods:
    return ForecastPeriods(
        season_length=12, train_periods=400, min_arima_periods=18, recent_periods=3, arima=dict(WIDE_ARIMA_SEARCH)
    )


def _quarterly() -> ForecastPeriods:
    return ForecastPeriods(season_length=4, train_periods=200, min_arima_periods=12, recent_periods=2)


@dataclass(frozen=True)
class ArimaSettings:
    """The order search of the per-series ARIMA (statsforecast `AutoARIMA`).

    Attributes:
        max_p, max_q: largest non-seasonal AR and MA orders searched.
        max_P, max_Q: largest seasonal AR and MA orders searched.
        max_order: largest p + q + P + Q.
        max_d, max_D: largest non-seasonal and seasonal differencing orders (chosen by unit-root tests).
        stepwise: Hyndman-Khandakar stepwise search (True) or the whole grid (False, much slower).
        approximation: rank candidate orders by conditional sums of squares, then fit the winner by
            maximum likelihood (about 3-5x faster than exact likelihood for every candidate).
        allow_drift: consider a drift (linear trend) term; it costs a regression per candidate.
        allow_mean: consider a non-zero mean.
        ic: the information criterion that ranks candidates: aicc, aic or bic.
        regressors: exogenous columns of `silver.demand` to use when present: `price_ratio`, `promo`,
            `is_holiday`. Future values: regular price (ratio 1), no promotion, the holiday calendar.
        min_seasonal_cycles: a seasonal model needs this many full cycles of history; with fewer the
            search is non-seasonal (weekly data needs two years before a yearly season is fitted).
        fourier_above: a season longer than this many periods (weekly data's 52) is modelled by
            `fourier_terms` sine/cosine pairs as regressors of a non-seasonal ARIMA (dynamic harmonic
            regression) instead of seasonal lags: a seasonal ARIMA with m = 52 has a state of 50+
            lags, fits slowly and is poorly identified on three years of data.
        fourier_terms: harmonic pairs K for such a season (at most season / 2).
        backtest_search: how backtest folds get their orders when they are searched: `per_fold`
            (each fold searches on its own training periods, as statsforecast's cross_validation
            refits per window) or `first_origin` (one search on the periods before the first origin,
            reused by every fold: cheaper, but a short series' folds then never see two seasons).
            The forecast itself is always fitted with orders searched on the whole window.
        prune_regressors: after the search, each regressor is kept only where the searched orders
            fitted without it have a higher AICc (it carries signal in this series); the others are
            dropped and recorded in the registry's params (`dropped_regressors`), so a holiday count
            without signal carries no weight. False keeps every regressor that varies.
    """

    max_p: int = 2
    max_q: int = 2
    max_P: int = 1
    max_Q: int = 1
    max_order: int = 4
    max_d: int = 1
    max_D: int = 1
    stepwise: bool = True
    approximation: bool = True
    allow_drift: bool = False
    allow_mean: bool = True
    ic: Literal["aicc", "aic", "bic"] = "aicc"
    regressors: tuple[str, ...] = REGRESSORS
    min_seasonal_cycles: int = 2
    fourier_above: int = 24
    fourier_terms: int = 3
    backtest_search: Literal["per_fold", "first_origin"] = "per_fold"
    prune_regressors: bool = True

    def __post_init__(self) -> None:
        if self.backtest_search not in ("per_fold", "first_origin"):
            raise ConfigError(
                f"forecast.arima.backtest_search must be per_fold or first_origin, got {self.backtest_search!r}"
            )
        for name in ("max_p", "max_q", "max_P", "max_Q", "max_d", "max_D"):
            if getattr(self, name) < 0:
                raise ConfigError(f"forecast.arima.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_order < 1:
            raise ConfigError(f"forecast.arima.max_order must be >= 1, got {self.max_order}")
        if self.ic not in ("aicc", "aic", "bic"):
            raise ConfigError(f"forecast.arima.ic must be aicc, aic or bic, got {self.ic!r}")
        unknown = sorted(set(self.regressors) - set(REGRESSORS))
        if unknown:
            raise ConfigError(f"forecast.arima.regressors: unknown {unknown}; known: {list(REGRESSORS)}")
        if self.min_seasonal_cycles < 1:
            raise ConfigError(f"forecast.arima.min_seasonal_cycles must be >= 1, got {self.min_seasonal_cycles}")
        if self.fourier_terms < 1 or self.fourier_above < 2:
            raise ConfigError(
                f"forecast.arima.fourier_terms must be >= 1 and fourier_above >= 2, "
                f"got {self.fourier_terms} and {self.fourier_above}"
            )


@dataclass(frozen=True)
class CrostonSettings:
    """Smoothing constants of TSB (Teunter-Syntetos-Babai) for lumpy series.

    Attributes:
        tsb_alpha_demand: smoothing of the non-zero demand size.
        tsb_alpha_probability: smoothing of the probability of a demand occurring; a larger value
            lets the forecast decay faster when an item stops selling (obsolescence).
    """

    tsb_alpha_demand: float = 0.1
    tsb_alpha_probability: float = 0.1

    def __post_init__(self) -> None:
        for name in ("tsb_alpha_demand", "tsb_alpha_probability"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"forecast.croston.{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class BacktestSettings:
    """The rolling-origin backtest every model runs (see `replenish.forecast.backtest`).

    Attributes:
        folds: forecast origins; 0 turns the backtest off.
        horizon: periods forecast from each origin; None: the forecast horizon.
        step: periods between consecutive origins; None: the backtest horizon, so test windows
            tile the end of the history without overlapping.
    """

    folds: int = 3
    horizon: int | None = None
    step: int | None = None

    def __post_init__(self) -> None:
        if self.folds < 0:
            raise ConfigError(f"forecast.backtest.folds must be >= 0, got {self.folds}")
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"forecast.backtest.horizon must be >= 1, got {self.horizon}")
        if self.step is not None and self.step < 1:
            raise ConfigError(f"forecast.backtest.step must be >= 1, got {self.step}")


@dataclass(frozen=True)
class WarmStartSettings:
    """Reuse of the previous run's ARIMA orders (a nightly refit re-estimates parameters only).

    Attributes:
        enabled: reuse orders from `gold.model_registry` when a series has them; `--full-search`
            turns this off for one run.
        degradation_threshold: a series whose backtest MASE with the reused orders exceeds the MASE
            recorded when the orders were selected by more than this share gets a full search.
        max_order_age_days: orders selected longer ago than this are searched again; None: never.
    """

    enabled: bool = True
    degradation_threshold: float = 0.2
    max_order_age_days: int | None = 28

    def __post_init__(self) -> None:
        if self.degradation_threshold < 0:
            raise ConfigError(
                f"forecast.warm_start.degradation_threshold must be >= 0, got {self.degradation_threshold}"
            )
        if self.max_order_age_days is not None and self.max_order_age_days < 0:
            raise ConfigError(f"forecast.warm_start.max_order_age_days must be >= 0, got {self.max_order_age_days}")


@dataclass(frozen=True)
class RoutingSettings:
    """Which model a series gets, by its demand class (Syntetos-Boylan, from `silver.series_profile`).

    All-zero series always get `zero`; a series whose class model cannot be fitted falls back
    along `replenish.forecast.models.FALLBACKS`.

    Attributes:
        smooth, erratic, intermittent, lumpy: model name per demand class (see `MODELS`).
        arima_revenue_share: with `model: auto`, ARIMA goes to the smooth and erratic series that
            make up this share of revenue (largest first; 1: all of them); the others get
            `other_smooth`. An order search costs 10-100x the other models and revenue is
            concentrated (in the demo data 4% of the series hold 40% of it). `--model arima`
            ignores this and fits ARIMA to every smooth and erratic series.
        other_smooth: model of the smooth and erratic series outside `arima_revenue_share`.
        new_series: model of recently launched SKUs (`is_new` in the profile), whose short,
            ramping-up history misleads ARIMA.
        short_history: model of series with fewer than `min_arima_periods` usable periods that
            would otherwise get ARIMA.
    """

    smooth: str = "arima"
    erratic: str = "arima"
    intermittent: str = "croston_sba"
    lumpy: str = "tsb"
    new_series: str = "recent_mean"
    short_history: str = "recent_mean"
    arima_revenue_share: float = 1.0
    other_smooth: str = "ets"

    def __post_init__(self) -> None:
        if not 0.0 <= self.arima_revenue_share <= 1.0:
            raise ConfigError(f"forecast.routing.arima_revenue_share must be in [0, 1], got {self.arima_revenue_share}")

    def model_for(self, demand_class: str) -> str:
        """The model name of `demand_class` (smooth, erratic, intermittent, lumpy)."""
        return str(getattr(self, demand_class))


@dataclass(frozen=True)
class ForecastConfig:
    """Settings of `replenish forecast`.

    Attributes:
        model: `auto` (per series: the seasonal-naive baseline and the routed statistical model,
            both backtested, so the inventory stage can pick per series), `baseline` (seasonal naive
            only) or `arima` (the routed model only: ARIMA for smooth and erratic series, Croston
            family for intermittent and lumpy ones, fallbacks for new, short and empty series).
        horizon: periods to forecast.
        outlier_factor: non-zero demand above this multiple of the series' 95th percentile of
            non-zero demand is capped there before fitting (a bulk order would otherwise dominate
            ARIMA); 0 turns capping off.
        series_per_partition: series per Spark task; more partitions balance the load better, fewer
            amortize the per-task overhead.
        ets_model: the statsforecast ETS model string (error, trend, season; Z: selected) of the
            `ets` model; the default selects the trend too (none, additive, damped), which real
            monthly panels need (M1: ETS without trend MASE 0.926 against AutoETS's 0.863). A
            frequency's own `ets_model` replaces it (daily: ZNZ).
        auto_candidates: with `model: auto`, models fitted and backtested beside the baseline and
            the routed model for the series routed to ARIMA or ETS, so the selection can pick per
            series (ETS with trend and Theta: each is the best model on a share of real series).
        combination: with `model: auto`, the models whose equal-weight mean is one more candidate,
            named `combination`, for the series with two or more of them fitted; empty: none. On
            real monthly panels the mean of ARIMA, ETS and Theta forecasts better than any of them
            and than a per-series choice among them (docs/forecasting.md).
        daily, weekly, monthly, quarterly: period counts per frequency.
    """

    model: ForecastMode = "auto"
    horizon: int = 28
    outlier_factor: float = 10.0
    series_per_partition: int = 250
    ets_model: str = "ZZZ"
    auto_candidates: tuple[str, ...] = ("ets", "theta")
    combination: tuple[str, ...] = ("arima", "ets", "theta")
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    arima: ArimaSettings = field(default_factory=ArimaSettings)
    croston: CrostonSettings = field(default_factory=CrostonSettings)
    warm_start: WarmStartSettings = field(default_factory=WarmStartSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    daily: ForecastPeriods = field(default_factory=_daily)
    weekly: ForecastPeriods = field(default_factory=_weekly)
    monthly: ForecastPeriods = field(default_factory=_monthly)
    quarterly: ForecastPeriods = field(default_factory=_quarterly)
    lstm: LstmSettings = field(default_factory=LstmSettings)

    def __post_init__(self) -> None:
        if self.model not in FORECAST_MODES:
            raise ConfigError(f"forecast.model must be one of {', '.join(FORECAST_MODES)}, got {self.model!r}")
        if self.horizon < 1:
            raise ConfigError(f"forecast.horizon must be >= 1, got {self.horizon}")
        if self.outlier_factor < 0:
            raise ConfigError(f"forecast.outlier_factor must be >= 0, got {self.outlier_factor}")
        if self.series_per_partition < 1:
            raise ConfigError(f"forecast.series_per_partition must be >= 1, got {self.series_per_partition}")
        check_ets_model(self.ets_model, setting="ets_model")
        from replenish.forecast.models import MODELS

        unknown = sorted(set(self.auto_candidates) - set(MODELS))
        if unknown:
            raise ConfigError(f"forecast.auto_candidates: unknown {unknown}; known: {sorted(MODELS)}")
        unknown = sorted(set(self.combination) - set(MODELS))
        if unknown:
            raise ConfigError(f"forecast.combination: unknown {unknown}; known: {sorted(MODELS)}")
        if len(set(self.combination)) == 1:
            raise ConfigError(f"forecast.combination needs two or more models (or none), got {list(self.combination)}")
        for freq in FREQUENCIES:
            self.arima_for(freq)  # a frequency's ARIMA replacements are known settings with valid values
            spec = self.for_freq(freq).ets_model
            if spec is not None:
                check_ets_model(spec, setting=f"{SECTIONS[freq]}.ets_model")
        for demand_class in (
            "smooth",
            "erratic",
            "intermittent",
            "lumpy",
            "new_series",
            "short_history",
            "other_smooth",
        ):
            name = getattr(self.routing, demand_class)
            if name not in MODELS:
                raise ConfigError(f"forecast.routing.{demand_class}: unknown model {name!r}; known: {sorted(MODELS)}")

    def for_freq(self, freq: str) -> ForecastPeriods:
        """The period counts of `freq` (D, W, M or Q)."""
        check_freq(freq)
        return {"D": self.daily, "W": self.weekly, "M": self.monthly, "Q": self.quarterly}[freq]

    def arima_for(self, freq: str) -> ArimaSettings:
        """`arima` with the frequency's own replacements (`ForecastPeriods.arima`) applied."""
        replaced = self.for_freq(freq).arima
        known = {f.name for f in dataclasses.fields(ArimaSettings)}
        unknown = sorted(set(replaced) - known)
        if unknown:
            raise ConfigError(f"forecast.{SECTIONS[freq]}.arima: unknown setting(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self.arima, **replaced)

    def plan(
        self,
        freq: str,
        *,
        model: str | None = None,
        horizon: int | None = None,
        full_search: bool = False,
        run_date: str | None = None,
    ) -> ForecastPlan:
        """Resolve the settings of one run into the `ForecastPlan` the executors receive.

        Args:
            freq: D, W, M or Q.
            model: overrides `model` (the job's `--model`).
            horizon: overrides `horizon` (the job's `--horizon`).
            full_search: ignore stored ARIMA orders and search every series (the job's `--full-search`).
            run_date: ISO date of the run, stamped on newly selected ARIMA orders.
        """
        chosen = model or self.model
        if chosen not in FORECAST_MODES:
            raise ConfigError(f"--model must be one of {', '.join(FORECAST_MODES)}, got {chosen!r}")
        periods = horizon if horizon is not None else self.horizon
        if periods < 1:
            raise ConfigError(f"--horizon must be >= 1, got {periods}")
        windows = self.for_freq(freq)
        backtest_horizon = self.backtest.horizon or periods
        return ForecastPlan(
            freq=freq,
            mode=chosen,  # type: ignore[arg-type]
            horizon=periods,
            windows=windows,
            folds=self.backtest.folds,
            backtest_horizon=backtest_horizon,
            backtest_step=self.backtest.step or backtest_horizon,
            arima=self.arima_for(freq),
            croston=self.croston,
            routing=self.routing,
            warm_start=self.warm_start.enabled and not full_search,
            degradation_threshold=self.warm_start.degradation_threshold,
            max_order_age_days=self.warm_start.max_order_age_days,
            outlier_factor=self.outlier_factor,
            ets_spec=(windows.ets_model or self.ets_model).upper(),
            run_date=run_date,
            auto_candidates=tuple(self.auto_candidates) if chosen == "auto" else (),
            combination=tuple(self.combination) if chosen == "auto" else (),
        )


@dataclass(frozen=True)
class ForecastPlan:
    """Everything the per-series code needs for one run, resolved for one frequency.

    Attributes:
        freq: D, W, M or Q.
        mode: auto, baseline or arima (see `ForecastConfig.model`).
        horizon: periods to forecast.
        windows: the frequency's period counts.
        folds, backtest_horizon, backtest_step: the rolling-origin backtest.
        arima, croston, routing: model settings.
        warm_start: reuse stored ARIMA orders where a series has them.
        degradation_threshold, max_order_age_days: when stored orders are searched again anyway.
        outlier_factor: see `ForecastConfig.outlier_factor`.
        ets_spec: see `ForecastConfig.ets_model`.
        run_date: ISO date of the run (stamped on newly selected orders), or None.
        auto_candidates: see `ForecastConfig.auto_candidates` (empty unless the mode is auto).
        combination: see `ForecastConfig.combination` (empty unless the mode is auto).
    """

    freq: str
    mode: ForecastMode
    horizon: int
    windows: ForecastPeriods
    folds: int
    backtest_horizon: int
    backtest_step: int
    arima: ArimaSettings = field(default_factory=ArimaSettings)
    croston: CrostonSettings = field(default_factory=CrostonSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    warm_start: bool = True
    degradation_threshold: float = 0.2
    max_order_age_days: int | None = 28
    outlier_factor: float = 10.0
    ets_spec: str = "ZZZ"
    run_date: str | None = None
    auto_candidates: tuple[str, ...] = ()
    combination: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[str, ...]:
        """The candidate roles fitted per series: `baseline`, `routed` or both."""
        return {"auto": ("baseline", "routed"), "baseline": ("baseline",), "arima": ("routed",), "lstm": ()}[self.mode]


def resolve_freq(*, requested: str | None, configured: str, present: tuple[str, ...]) -> tuple[str, str]:
    """The frequency a forecast run reads, and why (for the log).

    `--freq` wins; without it the one frequency `silver.demand` holds is used (a user who built only
    monthly demand expects a monthly forecast), and `features.freq` only when the table holds several
    frequencies or none.
    """
    if requested:
        return requested, "--freq"
    if len(present) == 1:
        return present[0], "the only frequency in silver.demand"
    return configured, "features.freq" + (f" (silver.demand holds {', '.join(sorted(present))})" if present else "")


def default_plan(freq: str = "D", **overrides: object) -> ForecastPlan:
    """The plan of the default settings for `freq`, with `plan()` keyword overrides (tests, notebooks)."""
    return ForecastConfig().plan(freq, **overrides)  # type: ignore[arg-type]
