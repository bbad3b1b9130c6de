"""The LSTM network in one process (real TensorFlow, no Spark): loss, shapes, promo and weekly pattern."""

from __future__ import annotations

import numpy as np
import pytest

from replenish.neural.windows import COVARIATES

tf_runtime = pytest.importorskip("replenish.neural.tf_runtime")

HISTORY, HORIZON = 21, 7


def _windows(n_series: int, periods: int, *, seed: int, promo_lift: float = 1.5) -> dict[str, np.ndarray]:
    """Windows of series with a weekly pattern and a known promo lift (x (1 + lift) on promo days)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {k: [] for k in ("history", "future", "target", "target_mask", "scale", "promo_future")}
    t = np.arange(periods)
    weekly = 1 + 0.5 * np.sin(2 * np.pi * t / 7)
    dow = t % 7
    calendar = np.stack([np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)], axis=1)
    for _ in range(n_series):
        level = float(np.exp(rng.normal(2.0, 0.7)))
        promo = (rng.random(periods) < 0.15).astype(float)
        demand = rng.poisson(level * weekly * (1 + promo_lift * promo)).astype(float)
        covariates = np.zeros((periods, len(COVARIATES)))
        covariates[:, 0] = promo
        covariates[:, 3:5] = calendar
        for origin in range(HISTORY, periods - HORIZON + 1, 3):
            past = slice(origin - HISTORY, origin)
            ahead = slice(origin, origin + HORIZON)
            history = np.column_stack([demand[past], np.ones(HISTORY), covariates[past]])
            out["history"].append(history.reshape(-1))
            out["future"].append(covariates[ahead].reshape(-1))
            out["target"].append(demand[ahead])
            out["target_mask"].append(np.ones(HORIZON))
            out["scale"].append(1 + demand[past].mean())
            out["promo_future"].append(promo[ahead])
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
    n = len(arrays["scale"])
    arrays["category_bucket"] = np.zeros(n, dtype=np.int32)
    arrays["location_bucket"] = np.zeros(n, dtype=np.int32)
    arrays["projection"] = np.zeros((n, 1), dtype=np.float32)
    return arrays


def _dataset(arrays: dict[str, np.ndarray], spec, *, batch: int = 64):
    from replenish.neural.model import to_model_inputs
    from replenish.neural.tf_runtime import tf

    columns = {k: v for k, v in arrays.items() if k != "promo_future"}
    return (
        tf.data.Dataset.from_tensor_slices(columns)
        .shuffle(4096, seed=1)
        .batch(batch)
        .map(lambda b: to_model_inputs(b, spec))
        .repeat()
    )


def test_pinball_loss_ignores_masked_periods_and_penalises_each_quantile() -> None:
    from replenish.neural.model import pinball_loss
    from replenish.neural.tf_runtime import tf

    loss = pinball_loss((0.025, 0.1, 0.5, 0.9, 0.975))
    target = np.array([[[10.0, 1.0], [1000.0, 0.0]]], dtype=np.float32)  # the second period is censored
    prediction = np.full((1, 2, 5), 8.0, dtype=np.float32)
    value = float(loss(tf.constant(target), tf.constant(prediction))[0])
    assert value == pytest.approx(sum(q * 2.0 for q in (0.025, 0.1, 0.5, 0.9, 0.975)))
    over = float(loss(tf.constant(target), tf.constant(np.full((1, 2, 5), 12.0, dtype=np.float32)))[0])
    assert over == pytest.approx(sum((1 - q) * 2.0 for q in (0.025, 0.1, 0.5, 0.9, 0.975)))


def test_quantiles_never_cross_and_predictions_are_units(tmp_path) -> None:
    from replenish.neural.model import LstmForecaster, ModelSpec

    spec = ModelSpec(history=HISTORY, horizon=HORIZON, hidden=8, projection_dim=1)
    arrays = _windows(3, 60, seed=0)
    forecaster = LstmForecaster(spec, seed=7).fit(_dataset(arrays, spec), epochs=1, steps_per_epoch=3)
    quantiles = forecaster.predict(arrays)
    assert quantiles.shape == (len(arrays["scale"]), HORIZON, 5)
    assert (np.diff(quantiles, axis=-1) >= -1e-5).all() and (quantiles >= 0).all()
    forecaster.save(str(tmp_path / "model"))
    np.testing.assert_allclose(LstmForecaster.load(str(tmp_path / "model")).predict(arrays), quantiles, rtol=1e-5)


def test_the_model_learns_the_promo_lift_a_model_without_promo_cannot() -> None:
    from replenish.neural.model import LstmForecaster, ModelSpec

    train, test = _windows(24, 150, seed=1), _windows(8, 80, seed=2)
    errors = {}
    for use_covariates in (True, False):
        spec = ModelSpec(history=HISTORY, horizon=HORIZON, hidden=16, projection_dim=1, use_covariates=use_covariates)
        forecaster = LstmForecaster(spec, learning_rate=0.01, seed=3)
        forecaster.fit(_dataset(train, spec), epochs=6, steps_per_epoch=40)
        median = forecaster.predict(test)[..., 2]
        on_promo = test["promo_future"] > 0
        errors[use_covariates] = float(np.abs(median - test["target"])[on_promo].mean())
        errors[(use_covariates, "weekly")] = float(np.abs(median - test["target"])[~on_promo].mean())
    # promo days: the covariate model is clearly better; off promo both track the weekly pattern
    assert errors[True] < 0.7 * errors[False], errors
    level = float(test["target"][test["promo_future"] == 0].mean())
    assert errors[(True, "weekly")] < 0.5 * level, errors


def test_seasonal_profile_averages_each_phase_over_observed_periods() -> None:
    from replenish.neural.model import ModelSpec, seasonal_profile
    from replenish.neural.tf_runtime import tf

    spec = ModelSpec(history=6, horizon=5, season=3)
    demand = np.array([1.0, 2.0, 3.0, 5.0, 0.0, 9.0])  # two seasons of phases (a, b, c)
    observed = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # the last two periods censored
    history = np.zeros((1, 6, 2 + len(COVARIATES)), dtype=np.float32)
    history[0, :, 0], history[0, :, 1] = demand * observed, observed
    profile = seasonal_profile(tf.constant(history), spec).numpy()[0, :, 0]
    # phase a: (1 + 5) / 2; b: 2 (its second period censored); c: 3; then the season repeats
    np.testing.assert_allclose(profile, [3.0, 2.0, 3.0, 3.0, 2.0])
    history[0, :, :2] = 0.0
    history[0, 0, :2] = (4.0, 1.0)  # one observed period: phases b and c fall back to its level
    np.testing.assert_allclose(seasonal_profile(tf.constant(history), spec).numpy()[0, :, 0], [4.0] * 5)
    # a season longer than the history: one phase, the mean of the history
    assert ModelSpec(history=6, horizon=5, season=52).profile_season == 1


def test_the_seasonal_base_is_part_of_the_saved_spec() -> None:
    import json

    from replenish.neural.model import ModelSpec, build_model

    spec = ModelSpec(history=HISTORY, horizon=HORIZON, hidden=8, projection_dim=1, season=7, seasonal_base=True)
    assert ModelSpec.from_json(spec.to_json()) == spec
    old = {k: v for k, v in json.loads(spec.to_json()).items() if k not in ("seasonal_base", "season")}
    assert ModelSpec.from_json(json.dumps(old)).seasonal_base is False  # a model saved before the option
    names = {layer.name for layer in build_model(spec).layers}
    plain = {layer.name for layer in build_model(ModelSpec.from_json(json.dumps(old))).layers}
    assert "seasonal_profile" in names and "seasonal_profile" not in plain


def test_the_seasonal_base_learns_a_weekly_pattern_from_few_windows() -> None:
    """On a handful of windows the base gives the weekday shape the free median has not learned yet."""
    from replenish.neural.model import LstmForecaster, ModelSpec

    train, test = _windows(4, 60, seed=5, promo_lift=0.0), _windows(8, 60, seed=6, promo_lift=0.0)
    errors = {}
    for base in (True, False):
        spec = ModelSpec(history=HISTORY, horizon=HORIZON, hidden=8, projection_dim=1, season=7, seasonal_base=base)
        forecaster = LstmForecaster(spec, learning_rate=0.01, seed=3).fit(
            _dataset(train, spec), epochs=2, steps_per_epoch=10
        )
        errors[base] = float(np.abs(forecaster.predict(test)[..., 2] - test["target"]).mean())
    assert errors[True] < 0.8 * errors[False], errors
