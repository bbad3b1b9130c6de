"""What a job's result dict and settings become in MLflow: metric and param keys and values."""

from __future__ import annotations

import math

from replenish.tracking.flatten import MAX_PARAM_VALUE, clean_key, flatten_metrics, flatten_params
from replenish.tracking.metrics import report_images
from replenish.tracking.settings import TrackingConfig, sqlite_artifact_location


def test_nested_numbers_become_slash_keys_and_lists_become_steps() -> None:
    result = {
        "rows": 3,
        "backtest_mase": {"arima": 0.81, "seasonal_naive": None},
        "warm_start": True,
        "model": "auto",
        "train_loss": [0.9, 0.5, 0.4],
        "versions": {"gold.forecast": 7},
        "precision@k": 0.25,
        "bad": math.nan,
    }
    scalars, stepped = flatten_metrics(result)
    assert scalars == {"rows": 3.0, "backtest_mase/arima": 0.81, "precision_k": 0.25}
    assert stepped == {"train_loss": [0.9, 0.5, 0.4]}


def test_records_are_keyed_by_their_first_text_value() -> None:
    result = {"classes": [{"service_class": "AX", "achieved": 0.97, "service_target": 0.98, "within_target": True}]}
    scalars, _ = flatten_metrics(result)
    assert scalars == {"classes/AX/achieved": 0.97, "classes/AX/service_target": 0.98}


def test_params_flatten_dotted_with_lists_as_json_and_long_values_cut() -> None:
    params = flatten_params({"forecast": {"horizon": 14, "arima": {"regressors": ["promo"]}}, "x": "y" * 7000})
    assert params["forecast.horizon"] == "14"
    assert params["forecast.arima.regressors"] == '["promo"]'
    assert len(params["x"]) == MAX_PARAM_VALUE and params["x"].endswith("(truncated)")
    assert clean_key("a=b/c d") == "a_b/c d"


def test_figures_are_cut_out_of_the_report_by_alt_text() -> None:
    html = '<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="Service &amp; target"></p>'
    assert report_images(html) == {"01_service_target.png": b"\x89PNG\r\n\x1a\n"}


def test_store_locations() -> None:
    assert sqlite_artifact_location("sqlite:////tmp/x/mlflow.db") == "file:///tmp/x/artifacts"
    assert sqlite_artifact_location("databricks") is None
    assert TrackingConfig(model_prefix="main.replenish.").registered_name("lstm") == "main.replenish.lstm"
