"""Profiles, overrides and typed sections."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from replenish import config
from replenish.errors import ConfigError


@dataclass(frozen=True)
class Example:
    horizon: int = 28
    levels: tuple[int, ...] = (80, 95)
    rate: float = 0.5
    name: str | None = None
    flags: dict = field(default_factory=dict)


def test_profiles_layer_over_base() -> None:
    local = config.load("local")
    cluster = config.load("cluster")
    assert local["spark"]["master"] == "local[*]"
    assert cluster["spark"]["master"] is None
    # base settings survive the layering
    assert local["spark"]["conf"]["spark.sql.session.timeZone"] == "UTC"
    assert cluster["spark"]["conf"]["spark.sql.session.timeZone"] == "UTC"
    assert local["profile"] == "local"


def test_overrides_keep_yaml_types_and_spark_keys_whole() -> None:
    settings = config.load(
        "local", ["forecast.horizon=14", "forecast.levels=[50, 90]", "spark.conf.spark.driver.memory=8g", "x.y=true"]
    )
    assert settings["forecast"]["horizon"] == 14
    assert settings["forecast"]["levels"] == [50, 90]
    assert settings["spark"]["conf"]["spark.driver.memory"] == "8g"
    assert settings["x"]["y"] is True


@pytest.mark.parametrize("bad", ["novalue", "=3", "forecast.horizon=[1,"])
def test_malformed_overrides_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        config.load("local", [bad])


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown profile"):
        config.load("staging")


def test_section_builds_typed_frozen_settings() -> None:
    settings = {"example": {"horizon": 7, "levels": [50], "rate": 1, "name": "x"}}
    section = config.section(settings, "example", Example)
    assert section == Example(horizon=7, levels=(50,), rate=1.0, name="x")
    assert config.section({}, "example", Example) == Example()


def test_section_names_unknown_and_mistyped_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*horizn"):
        config.section({"example": {"horizn": 7}}, "example", Example)
    with pytest.raises(ConfigError, match=r"example\.horizon: expected int"):
        config.section({"example": {"horizon": "soon"}}, "example", Example)


def test_config_hash_is_stable_and_sensitive() -> None:
    assert config.config_hash({"a": 1, "b": 2}) == config.config_hash({"b": 2, "a": 1})
    assert config.config_hash({"a": 1}) != config.config_hash({"a": 2})
