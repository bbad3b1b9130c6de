"""Sales at monthly or weekly grain: the last period the data covers is kept, and the grain is detected."""

from __future__ import annotations

import datetime as dt

import pytest

from replenish.errors import ValidationError
from replenish.features import FeaturesConfig, build_features
from replenish.features.demand import sales_grain
from replenish.io.catalog import BRONZE_COLUMNS

pytestmark = pytest.mark.spark

D = dt.date
SALES_SCHEMA = BRONZE_COLUMNS["sales"]


def _months(spark):
    """Two SKUs, one row per month dated on the 1st, January to April 2024; S1 out of stock in February."""
    rows = [
        (sku, "L1", D(2024, month, 1), float(10 * month + k), 5.0, False, not (sku == "S1" and month == 2), False)
        for k, sku in enumerate(["S1", "S2"])
        for month in range(1, 5)
    ]
    return spark.createDataFrame(rows, SALES_SCHEMA)


def _quarters(spark):
    """One SKU, one row per quarter dated on its first day, 2023Q1 to 2024Q2 (six quarters)."""
    rows = [("S1", "L1", D(2023 + i // 4, 3 * (i % 4) + 1, 1), float(i + 1), 5.0, False, True, False) for i in range(6)]
    return spark.createDataFrame(rows, SALES_SCHEMA)


def _weeks(spark):
    """One SKU, one row per week dated on its Monday, 2024-01-01 to 2024-01-29 (five weeks)."""
    rows = [
        ("S1", "L1", D(2024, 1, 1) + dt.timedelta(weeks=i), float(i + 1), 5.0, False, True, False) for i in range(5)
    ]
    return spark.createDataFrame(rows, SALES_SCHEMA)


def _demand(df) -> dict[tuple[str, dt.date], dict]:
    return {(row["sku"], row["date"]): row.asDict() for row in df.collect()}


def test_monthly_grain_is_detected_and_keeps_its_last_month(spark) -> None:
    sales = _months(spark)
    assert sales_grain(sales) == (D(2024, 1, 1), D(2024, 4, 1), "M")
    rows = _demand(build_features(sales, None, FeaturesConfig(), freq="M"))
    assert sorted(day for sku, day in rows if sku == "S1") == [D(2024, month, 1) for month in range(1, 5)]
    assert rows[("S1", D(2024, 4, 1))]["demand"] == 40.0
    assert rows[("S2", D(2024, 4, 1))]["demand"] == 41.0
    # the row's stock flag holds for its whole month: February is censored, not 28/29 in stock
    assert rows[("S1", D(2024, 2, 1))]["censored"] is True
    assert rows[("S1", D(2024, 2, 1))]["in_stock_share"] == 0.0
    assert rows[("S1", D(2024, 3, 1))]["censored"] is False


def test_declared_daily_grain_reads_the_last_first_of_month_as_one_day(spark) -> None:
    """What the detection prevents: read as daily sales, April 1st alone cannot make April complete."""
    rows = _demand(build_features(_months(spark), None, FeaturesConfig(), freq="M", grain="D"))
    assert max(day for _, day in rows) == D(2024, 3, 1)


def test_weekly_grain_keeps_its_last_week_and_cannot_be_split_into_days(spark) -> None:
    sales = _weeks(spark)
    assert sales_grain(sales)[2] == "W"
    rows = _demand(build_features(sales, None, FeaturesConfig(grain="W"), freq="W"))
    assert sorted(day for _, day in rows) == [D(2024, 1, 1) + dt.timedelta(weeks=i) for i in range(5)]
    assert rows[("S1", D(2024, 1, 29))]["demand"] == 5.0
    with pytest.raises(ValidationError, match="grain W cannot be split"):
        build_features(sales, None, FeaturesConfig(), freq="D")


def test_quarterly_grain_is_detected_and_keeps_its_last_quarter(spark) -> None:
    sales = _quarters(spark)
    assert sales_grain(sales) == (D(2023, 1, 1), D(2024, 4, 1), "Q")
    demand = build_features(sales, None, FeaturesConfig(), freq="Q")
    rows = _demand(demand)
    assert sorted(day for _, day in rows) == [D(2023 + i // 4, 3 * (i % 4) + 1, 1) for i in range(6)]
    assert rows[("S1", D(2024, 4, 1))]["demand"] == 6.0
    assert rows[("S1", D(2024, 4, 1))]["lag_4"] == 2.0  # the same quarter a year before
    assert {row["freq"] for row in rows.values()} == {"Q"}
    with pytest.raises(ValidationError, match="grain Q cannot be split"):
        build_features(sales, None, FeaturesConfig(), freq="M")
