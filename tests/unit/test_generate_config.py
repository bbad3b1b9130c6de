"""Generator settings, the holiday list and the output contract, without Spark."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

import pytest

from replenish import config
from replenish.data.generate import OUTPUT_COLUMNS, GeneratorConfig, bad_row_kinds, holiday_dates
from replenish.errors import ConfigError
from replenish.io.catalog import ENTITIES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def test_the_profile_section_gives_the_demo_scale() -> None:
    cfg = config.section(config.load("local"), "generate", GeneratorConfig)
    assert (cfg.skus, cfg.locations, cfg.days) == (1000, 10, 1095)
    assert cfg.intermittent_share >= 0.3
    assert cfg.format == "csv"
    assert cfg.end_date == cfg.start_date + dt.timedelta(days=cfg.days - 1)


def test_a_start_date_from_yaml_or_the_command_line_is_accepted() -> None:
    from_yaml = config.section({"generate": {"start": dt.date(2024, 1, 1)}}, "generate", GeneratorConfig)
    from_text = GeneratorConfig(start="2024-01-01")
    assert from_yaml.start_date == from_text.start_date == dt.date(2024, 1, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"skus": 0}, "generate.skus"),
        ({"days": -5}, "generate.days"),
        ({"intermittent_share": 1.5}, "generate.intermittent_share"),
        ({"bad_row_share": -0.1}, "generate.bad_row_share"),
        ({"stockout_rate": 1.0}, "generate.stockout_rate"),
        ({"start": "2024-13-45"}, "generate.start"),
        ({"format": "xlsx"}, "generate.format"),
    ],
)
def test_invalid_settings_name_the_setting(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GeneratorConfig(**changes)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        config.section({"generate": {"skuz": 10}}, "generate", GeneratorConfig)


def test_holiday_dates_come_from_the_holidays_package() -> None:
    days = dict(holiday_dates("US", dt.date(2023, 1, 1), dt.date(2023, 12, 31)))
    assert dt.date(2023, 7, 4) in days
    assert dt.date(2023, 12, 25) in days
    assert all(dt.date(2023, 1, 1) <= day <= dt.date(2023, 12, 31) for day in days)
    assert not holiday_dates("US", dt.date(2023, 7, 5), dt.date(2023, 7, 6))


def test_an_unknown_holiday_country_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"generate\.country"):
        holiday_dates("XX", dt.date(2023, 1, 1), dt.date(2023, 2, 1))


def _documented_raw_columns() -> dict[str, set[str]]:
    """The required and optional columns per entity of the "Raw input files" table in docs/tables.md."""
    columns: dict[str, set[str]] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ENTITIES:
            names = re.findall(r"[a-z_]+", re.sub(r"\(.*?\)", "", f"{cells[1]}, {cells[2]}"))
            columns[cells[0]] = set(names)
    return columns


def test_every_entity_is_generated_with_the_documented_columns() -> None:
    documented = _documented_raw_columns()
    assert set(OUTPUT_COLUMNS) == set(ENTITIES) == set(documented)
    for entity, columns in OUTPUT_COLUMNS.items():
        truth_columns = {"demand_profile"} if entity == "products" else set()
        assert set(columns) - truth_columns <= documented[entity], entity


def test_parquet_gets_only_the_bad_rows_a_typed_file_can_hold() -> None:
    assert set(bad_row_kinds("csv")) == {
        "null_sku",
        "negative_quantity",
        "duplicate",
        "unparseable_date",
        "non_numeric_quantity",
    }
    assert set(bad_row_kinds("parquet")) == {"null_sku", "negative_quantity", "duplicate"}


def test_the_job_options_override_the_profile() -> None:
    from replenish_jobs import generate

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    args = parser.parse_args(["--skus", "20", "--format", "parquet", "--start", "2024-02-01"])
    assert (args.skus, args.format, args.start, args.locations) == (20, "parquet", "2024-02-01", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--format", "xlsx"])
