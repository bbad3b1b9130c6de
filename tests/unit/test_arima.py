"""ARIMA on known processes: order and coefficient recovery, interval coverage, warm refits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replenish.forecast.models import Arima, ArimaOrders, FitError, _library_start, ordered_coefficients
from replenish.forecast.settings import ArimaSettings

SEEDS = (0, 1, 2, 3, 4)


def arma(n: int, *, phi: tuple[float, ...] = (), theta: tuple[float, ...] = (), seed: int = 0) -> np.ndarray:
    """A stationary ARMA process around 10 (the first 200 values are dropped as burn-in)."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 1.0, n + 200)
    values = np.zeros(n + 200)
    for t in range(values.size):
        values[t] = shocks[t]
        values[t] += sum(p * values[t - i - 1] for i, p in enumerate(phi) if t > i)
        values[t] += sum(q * shocks[t - i - 1] for i, q in enumerate(theta) if t > i)
    return values[200:] + 10.0


def seasonal_ma(n: int, *, theta: float = -0.6, season: int = 7, seed: int = 0) -> np.ndarray:
    """y_t = y_{t-7} + e_t + theta e_{t-7}: a weekly pattern that drifts, ARIMA(0,0,0)(0,1,1)[7]."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 1.0, n)
    values = np.array([5.0, 3.0, 0.0, 1.0, 2.0, 8.0, 9.0] * (n // season + 1))[:n] + 50.0
    for t in range(season, n):
        values[t] = values[t - season] + shocks[t] + theta * shocks[t - season]
    return values


# Exact likelihood for every candidate: order recovery is a property of the search, tested without
# the CSS shortcut the production default takes for speed.
# Stationary processes are searched without differencing, so the test is about p and q alone.
EXACT = ArimaSettings(approximation=False)
STATIONARY = ArimaSettings(approximation=False, max_d=0)


def _orders(make, season: int = 1, settings: ArimaSettings = EXACT) -> list[ArimaOrders]:
    return [Arima(season_length=season, settings=settings).fit(make(seed)).orders_ for seed in SEEDS]


def test_search_recovers_ar1_order() -> None:
    found = _orders(lambda seed: arma(300, phi=(0.6,), seed=seed), settings=STATIONARY)
    assert sum(orders.order == (1, 0, 0) for orders in found) >= 3, found


def test_search_recovers_ma1_order() -> None:
    found = _orders(lambda seed: arma(300, theta=(0.5,), seed=seed), settings=STATIONARY)
    assert sum(orders.order == (0, 0, 1) for orders in found) >= 3, found


def test_search_recovers_seasonal_ma_order() -> None:
    found = _orders(lambda seed: seasonal_ma(210, seed=seed), season=7)
    assert all(orders.season_length == 7 for orders in found)
    assert sum(orders.seasonal_order == (0, 1, 1) for orders in found) >= 4, found
    assert sum(orders.order == (0, 0, 0) and orders.seasonal_order == (0, 1, 1) for orders in found) >= 3, found


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_orders_recover_coefficients(seed: int) -> None:
    orders = ArimaOrders(order=(1, 0, 0), include_mean=True)
    model = Arima(orders=orders).fit(arma(400, phi=(0.6,), seed=seed))
    coefficients = model.params()["coef"]
    assert coefficients["ar1"] == pytest.approx(0.6, abs=0.1)
    assert coefficients["intercept"] == pytest.approx(10.0, abs=0.4)


def test_seasonal_ma_coefficient_is_recovered() -> None:
    orders = ArimaOrders(order=(0, 0, 0), seasonal_order=(0, 1, 1), season_length=7, include_mean=False)
    estimates = [Arima(orders=orders).fit(seasonal_ma(350, seed=seed)).params()["coef"]["sma1"] for seed in SEEDS]
    assert np.mean(estimates) == pytest.approx(-0.6, abs=0.1)


def test_intervals_cover_at_their_nominal_rate() -> None:
    """Fit the true AR(1) on 80 simulated series and score the 8-step intervals against the truth."""
    orders = ArimaOrders(order=(1, 0, 0), include_mean=True)
    horizon = 8
    inside = {80: [], 95: []}
    for seed in range(80):
        series = arma(150 + horizon, phi=(0.6,), seed=1000 + seed)
        forecast = Arima(orders=orders).fit(series[:-horizon]).predict(horizon)
        truth = series[-horizon:]
        for level in (80, 95):
            inside[level].append((truth >= forecast[f"lo_{level}"]) & (truth <= forecast[f"hi_{level}"]))
    coverage = {level: float(np.mean(hits)) for level, hits in inside.items()}
    assert coverage[80] == pytest.approx(0.80, abs=0.07)
    assert coverage[95] == pytest.approx(0.95, abs=0.04)


def test_frozen_model_keeps_orders_and_reestimates_parameters() -> None:
    first = Arima(season_length=1).fit(arma(300, phi=(0.6,), seed=0))
    refit = first.frozen().fit(arma(300, phi=(0.6,), seed=9))
    assert refit.orders_ == first.orders_
    assert refit.params()["selection"] == "reuse"
    assert refit.params()["coef"] != first.params()["coef"]


def _promo_series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) noise around 20 with two regressors (promo lift 6, price effect -4): three regression columns."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([(rng.random(n) < 0.2).astype(float), rng.normal(1.0, 0.1, n)])
    return arma(n, phi=(0.5,), seed=seed) + 10.0 + 6.0 * X[:, 0] - 4.0 * X[:, 1], X


def test_library_start_is_where_the_optimizer_begins() -> None:
    """With zero optimizer iterations statsforecast returns its starting point: it must be `start`.

    This pins the two coordinate changes `_library_start` undoes (the AR part mapped twice, the
    regression part rotated); a statsforecast release that changes either fails here.
    """
    from statsforecast.arima import Arima as estimate
    from statsforecast.models import ARIMA

    y, X = _promo_series(300, seed=4)
    spec = ARIMA(order=(2, 0, 0), season_length=7, seasonal_order=(1, 0, 0), include_mean=True)
    start = np.array([0.41, -0.2, 0.3, 19.0, 5.0, -3.0])  # ar1, ar2, sar1, intercept, ex_1, ex_2
    init = _library_start(start, spec, y, X)
    assert init is not None
    result = estimate(
        y,
        order=spec.order,
        seasonal={"order": spec.seasonal_order, "period": 7},
        xreg=X,
        include_mean=True,
        method="ML",
        init=init,
        optim_control={"maxiter": 0},
    )
    assert ordered_coefficients(result["coef"]) == pytest.approx(tuple(start), abs=1e-9)
    assert _library_start(start[:-1], spec, y, X) is None  # a regressor fewer: no start


def test_refit_from_its_own_coefficients_stays_at_the_optimum() -> None:
    y, X = _promo_series(400, seed=5)
    orders = ArimaOrders(order=(1, 0, 1), include_mean=True, regressors=("promo", "price"))
    full = Arima(orders=orders, regressor_names=("promo", "price")).fit(y, X)
    assert full.estimation_ == "full"
    again = Arima(orders=orders, regressor_names=("promo", "price"), start=full.coefficients_).fit(y, X)
    assert again.estimation_ == "from start"
    assert again.coefficients_ == pytest.approx(full.coefficients_, abs=2e-3)
    assert again.model_.model_["loglik"] >= full.model_.model_["loglik"] - 1e-6


def test_warm_refit_starts_from_the_previous_coefficients() -> None:
    first = Arima(season_length=7).fit(seasonal_ma(400, seed=1)[:-7])
    refit = first.frozen().fit(seasonal_ma(400, seed=1))
    assert first.params()["estimation"] == "search"
    assert refit.params()["estimation"] == "from start"
    assert refit.orders_ == first.orders_
    cold = Arima(orders=first.orders_).fit(seasonal_ma(400, seed=1))
    assert cold.params()["estimation"] == "full"
    assert refit.model_.model_["loglik"] == pytest.approx(cold.model_.model_["loglik"], abs=0.05)
    forecast, reference = refit.predict(14)["mean"], cold.predict(14)["mean"]
    assert forecast == pytest.approx(reference, rel=0.01)


def test_unusable_start_falls_back_to_the_full_estimation() -> None:
    y = arma(300, phi=(0.6,), seed=2)
    orders = ArimaOrders(order=(1, 0, 0), include_mean=True)
    explosive = Arima(orders=orders, start=(1.5, 10.0)).fit(y)
    wrong_length = Arima(orders=orders, start=(0.6,)).fit(y)
    not_finite = Arima(orders=orders, start=(float("nan"), 10.0)).fit(y)
    for model in (explosive, wrong_length, not_finite):
        assert model.estimation_ == "full"
        assert model.params()["coef"]["ar1"] == pytest.approx(0.6, abs=0.1)


def test_coefficients_are_put_back_in_estimation_order() -> None:
    names = {"sma1": 4, "ex_10": 9, "ar2": 2, "drift": 7, "ex_2": 8, "ma1": 3, "intercept": 6, "ar1": 1, "sar1": 5}
    stored = json.loads(json.dumps(names, sort_keys=True))
    assert ordered_coefficients(stored) == (1, 2, 3, 5, 4, 6, 7, 8, 9)
    with pytest.raises(ValueError, match="unknown ARIMA coefficient"):
        ordered_coefficients({"ar1": 0.5, "beta": 1.0})


def test_orders_round_trip_through_registry_json() -> None:
    orders = ArimaOrders(order=(2, 1, 1), seasonal_order=(0, 1, 1), season_length=7, regressors=("promo",))
    assert ArimaOrders.from_dict(json.loads(json.dumps(orders.to_dict()))) == orders
    assert orders.describe() == "ARIMA(2,1,1)(0,1,1)[7]"
    with pytest.raises(ValueError, match="malformed"):
        ArimaOrders.from_dict({"order": [1, 0]})


def test_regressor_effect_is_estimated_and_used_in_the_forecast() -> None:
    rng = np.random.default_rng(3)
    n = 300
    promo = (rng.random(n + 10) < 0.15).astype(float)
    demand = 20.0 + 8.0 * promo + rng.normal(0.0, 1.0, n + 10)
    settings = ArimaSettings(regressors=("promo",))
    model = Arima(settings=settings, regressor_names=("promo",)).fit(demand[:n], promo[:n, None])
    assert model.orders_.regressors == ("promo",)
    assert model.params()["coef"]["ex_1"] == pytest.approx(8.0, abs=0.5)
    future = np.array([[1.0], [0.0]])
    forecast = model.predict(2, future)
    assert forecast["mean"][0] - forecast["mean"][1] == pytest.approx(8.0, abs=1.0)


def test_constant_regressor_is_dropped_for_that_fit() -> None:
    y = arma(200, phi=(0.5,), seed=1)
    model = Arima(regressor_names=("promo",)).fit(y, np.zeros((200, 1)))
    assert model.orders_.regressors == ()
    assert np.all(np.isfinite(model.predict(3, np.zeros((3, 1)))["mean"]))


def test_forecasts_are_non_negative_with_nested_intervals() -> None:
    y = np.clip(arma(200, phi=(0.3,), seed=2) - 9.5, 0, None)  # demand near zero
    forecast = Arima().fit(y).predict(10)
    assert np.all(forecast["lo_95"] >= 0)
    assert np.all(forecast["lo_95"] <= forecast["lo_80"])
    assert np.all(forecast["lo_80"] <= forecast["mean"])
    assert np.all(forecast["mean"] <= forecast["hi_80"])
    assert np.all(forecast["hi_80"] <= forecast["hi_95"])


def test_bad_input_raises_fit_error_with_a_reason() -> None:
    with pytest.raises(FitError, match="at least 4 periods"):
        Arima().fit(np.array([1.0, 2.0]))
    with pytest.raises(FitError, match="NaN"):
        Arima().fit(np.array([1.0, np.nan, 2.0, 3.0, 4.0]))
    with pytest.raises(FitError, match="too few"):
        Arima(orders=ArimaOrders(order=(0, 0, 0), seasonal_order=(0, 1, 1), season_length=52)).fit(np.ones(30))


def yearly_weekly(n: int, *, seed: int = 0) -> np.ndarray:
    """Weekly demand with a yearly wave (period 52) and AR(1) noise around 100."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    noise = arma(n, phi=(0.5,), seed=seed) - 10.0
    return (
        100.0 + 20.0 * np.sin(2 * np.pi * t / 52) + 8.0 * np.cos(4 * np.pi * t / 52) + 2.0 * noise + rng.normal(0, 1, n)
    )


def test_a_yearly_season_of_weekly_data_is_fitted_by_fourier_terms() -> None:
    n, h = 156, 26
    series = yearly_weekly(n + h, seed=4)
    model = Arima(season_length=52).fit(series[:n])
    orders = model.orders_
    assert orders.fourier_terms == 3 and orders.seasonal_order == (0, 0, 0) and orders.season_length == 52
    assert orders.describe().endswith("+Fourier(3)[52]")
    forecast = model.predict(h)["mean"]
    truth = (
        100.0 + 20.0 * np.sin(2 * np.pi * np.arange(n, n + h) / 52) + 8.0 * np.cos(4 * np.pi * np.arange(n, n + h) / 52)
    )
    assert np.corrcoef(forecast, truth)[0, 1] > 0.9
    assert np.mean(np.abs(forecast - truth)) < 5.0
    # a warm refit keeps the harmonics and follows the same wave; the orders survive the registry JSON
    stored = ArimaOrders.from_dict(json.loads(json.dumps(model.params())))
    assert stored == orders
    refit = Arima(season_length=52, orders=stored).fit(series[:n])
    assert refit.orders_ == orders
    assert refit.predict(h)["mean"] == pytest.approx(forecast, rel=1e-3, abs=1e-3)


def test_fewer_than_two_years_of_weekly_data_are_fitted_without_a_season() -> None:
    model = Arima(season_length=52).fit(yearly_weekly(90, seed=1))
    assert model.orders_.fourier_terms == 0 and model.orders_.seasonal_order == (0, 0, 0)


def test_lean_gradients_take_the_path_scipy_takes() -> None:
    """The same forward differences as scipy's BFGS, so a search with them gives the same model, bit for bit."""
    from scipy.optimize import _numdiff
    from statsforecast import arima as library

    from replenish.forecast.optim import lean_gradients, value_and_forward_gradient

    def bowl(x: np.ndarray, shift: float) -> float:
        return float(np.sum(np.cos(x[:3]) * (x[:3] - shift) ** 2) + 1e-9 * x[3] ** 1.5)

    x = np.array([0.3, -2.5, 0.0, 1e9])  # the last entry: the absolute step vanishes against it
    step = 1.4901161193847656e-08  # BFGS's default eps
    value, gradient = value_and_forward_gradient(bowl, step=step)(x, 0.7)
    reference = _numdiff.approx_derivative(lambda z: bowl(z, 0.7), x, method="2-point", abs_step=step, f0=value)
    assert np.all(gradient != 0)
    assert value == bowl(x, 0.7)
    np.testing.assert_array_equal(gradient, reference)

    y = seasonal_ma(300, seed=3) + 4.0 * (np.arange(300) % 11 == 0)
    X = (np.arange(300) % 11 == 0).astype(float)[:, None]
    plain = Arima(season_length=7, regressor_names=("promo",))._fit(y, X)  # scipy's own differences
    lean = Arima(season_length=7, regressor_names=("promo",)).fit(y, X)
    assert lean.orders_ == plain.orders_
    assert lean.coefficients_ == plain.coefficients_
    assert library.minimize is not value_and_forward_gradient  # restored after the fit
    with pytest.raises(RuntimeError), lean_gradients():
        raise RuntimeError("a failed fit")
    from scipy.optimize import minimize as scipy_minimize

    assert library.minimize is scipy_minimize


def test_pruning_refits_start_from_the_current_coefficients() -> None:
    """Dropping a regressor is judged by the same AICc a cold fit of the smaller model gives."""
    from statsforecast.models import ARIMA

    rng = np.random.default_rng(11)
    n = 200
    promo, flag = (rng.random(n) < 0.25).astype(float), (rng.random(n) < 0.3).astype(float)
    y = arma(n, phi=(0.5,), seed=11) + 30 + 12 * promo
    model = Arima(season_length=1, regressor_names=("promo", "is_holiday")).fit(y, np.column_stack([promo, flag]))
    assert model.used_regressors_ == ("promo",)
    orders = model.orders_
    cold = ARIMA(order=orders.order, include_mean=orders.include_mean).fit(y, promo[:, None])
    assert model.model_.model_["aicc"] == pytest.approx(cold.model_["aicc"], abs=0.05)
    gain = model.params()["dropped_regressors"]["is_holiday"]
    assert gain > 0
