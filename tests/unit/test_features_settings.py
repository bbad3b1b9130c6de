"""The `features:` section: packaged defaults, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from replenish import config
from replenish.errors import ConfigError
from replenish.features.demand import table_lag_columns
from replenish.features.settings import FeaturesConfig

CONF = Path(__file__).resolve().parents[2] / "conf"


def _features(*overrides: str) -> FeaturesConfig:
    return config.section(config.load("local", overrides, conf_dir=CONF), "features", FeaturesConfig)


def test_base_yaml_matches_the_dataclass_defaults() -> None:
    assert _features() == FeaturesConfig()


def test_overrides_reach_one_frequency() -> None:
    cfg = _features("features.weekly.lags=[1, 2]", "features.censored_below=0.25")
    assert cfg.for_freq("W").lags == (1, 2)
    assert cfg.for_freq("D").lags == (1, 7, 14, 28)
    assert cfg.censored_below == 0.25


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("features.daily.lags=[0, 7]", "lags"),
        ("features.daily.rolling_windows=[1]", "rolling_windows"),
        ("features.abc_thresholds=[0.95, 0.8]", "abc_thresholds"),
        ("features.xyz_thresholds=[0, 1]", "xyz_thresholds"),
        ("features.censored_below=0", "censored_below"),
        ("features.returns=keep", "returns"),
        ("features.freq=H", "freq"),
        ("features.lag=[1]", "unknown setting"),
    ],
)
def test_invalid_settings_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _features(override)


def test_table_lag_columns_are_the_union_of_every_frequency() -> None:
    columns = table_lag_columns(FeaturesConfig())
    assert columns[:9] == [f"lag_{k}" for k in (1, 2, 3, 4, 7, 12, 14, 28, 52)]
    assert columns[9:] == [f"rolling_{kind}_{w}" for kind in ("mean", "std") for w in (3, 4, 6, 7, 13, 28)]
