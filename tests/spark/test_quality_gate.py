"""The data-quality gate on local Spark: each check failing and warning, the records, the jobs that call it.

Also the writes that happen once per run id, which let a killed run be re-submitted.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from pyspark.sql import functions as F

from replenish.io.once import append_once
from replenish.quality import QUALITY_COLUMNS, SALES_CHECK, DataQualityError, QualityConfig, enforce_gate
from replenish_jobs import forecast

pytestmark = pytest.mark.spark

START = dt.date(2025, 5, 1)
DAYS = 28


def _sales(spark, *, days: int = DAYS, skip_day: int | None = None, null_price_every: int = 0, negative_every: int = 0):
    """Two series with a row every day; optionally one day dropped, some prices null, some returns."""
    rows = []
    for offset in range(days):
        if offset == skip_day:
            continue
        for index, sku in enumerate(("A", "B")):
            n = offset * 2 + index
            price = None if null_price_every and n % null_price_every == 0 else 9.5
            quantity = -1.0 if negative_every and n % negative_every == 0 else 3.0
            rows.append((sku, "L1", START + dt.timedelta(days=offset), quantity, price))
    return spark.createDataFrame(rows, "sku string, location string, date date, quantity double, price double")


def _gate(lake, sales, settings: QualityConfig, run_id: str):
    return enforce_gate(lake, [(SALES_CHECK, sales)], settings, stage="forecast", run_id=run_id, run_date=START)


def _recorded(lake, run_id: str) -> dict[tuple[str, str | None], str]:
    rows = lake.read("gold.data_quality").where(F.col("run_id") == run_id).collect()
    return {(row["check"], row["column_name"]): row["status"] for row in rows}


def test_clean_sales_pass_and_every_check_is_recorded(spark, lake) -> None:
    results = _gate(lake, _sales(spark), QualityConfig(), "run-1")
    assert {r.status for r in results} == {"pass"}
    assert lake.read("gold.data_quality").columns == list(QUALITY_COLUMNS)
    assert len(_recorded(lake, "run-1")) == 6


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_a_missing_day_of_sales(spark, lake, caplog, action: str) -> None:
    sales = _sales(spark, skip_day=10)
    settings = QualityConfig(actions={"missing_day": action})  # type: ignore[dict-item]
    with caplog.at_level(logging.WARNING, logger="replenish.quality"):
        if action == "fail":
            with pytest.raises(DataQualityError, match=r"missing_day: bronze.sales: 1 day\(s\).*2025-05-11"):
                _gate(lake, sales, settings, "run-1")
        else:
            _gate(lake, sales, settings, "run-1")
            assert "2025-05-11" in caplog.text
    assert _recorded(lake, "run-1")[("missing_day", "date")] == action


def test_a_monthly_extract_without_prices_passes(spark, lake) -> None:
    """One row per month dated on the 1st and no price column: no missing day, no null price failure."""
    rows = [(sku, "L1", dt.date(2024, month, 1), 3.0, None) for sku in ("A", "B") for month in range(1, 13)]
    sales = spark.createDataFrame(rows, "sku string, location string, date date, quantity double, price double")
    results = _gate(lake, sales, QualityConfig(), "run-m")
    assert {r.status for r in results} == {"pass"}, [r.message for r in results if r.status != "pass"]
    (missing,) = [r for r in results if r.check == "missing_day"]
    assert "0 month(s)" in missing.message


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_null_and_negative_shares_over_the_threshold(spark, lake, action: str) -> None:
    sales = _sales(spark, null_price_every=5, negative_every=4)  # 20% of prices null, 25% returns
    settings = QualityConfig(on_failure=action)  # type: ignore[arg-type]
    if action == "fail":
        with pytest.raises(DataQualityError) as failure:
            _gate(lake, sales, settings, "run-1")
        assert "bronze.sales.price: 12 of 56 rows" in str(failure.value)
        assert "bronze.sales.quantity: 14 of 56 rows in the latest 28 days negative" in str(failure.value)
    else:
        _gate(lake, sales, settings, "run-1")
    recorded = _recorded(lake, "run-1")
    assert recorded[("null_share", "price")] == action and recorded[("negative_share", "quantity")] == action
    assert recorded[("null_share", "quantity")] == "pass" and recorded[("missing_day", "date")] == "pass"


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_a_row_count_collapse_against_the_last_run(spark, lake, action: str) -> None:
    _gate(lake, _sales(spark), QualityConfig(), "run-1")  # 56 rows in the window
    collapsed = _sales(spark).where((F.col("sku") == "A") | (F.col("date") < START + dt.timedelta(days=20)))
    settings = QualityConfig(min_row_ratio=0.9, actions={"row_count": action})  # type: ignore[dict-item]
    if action == "fail":
        with pytest.raises(DataQualityError, match=r"48 rows in the latest 28 days, 86% of the last run's 56"):
            _gate(lake, collapsed, settings, "run-2")
    else:
        _gate(lake, collapsed, settings, "run-2")
    row = lake.read("gold.data_quality").where("run_id = 'run-2' AND check = 'row_count'").first()
    assert (row["status"], row["value"], row["baseline"]) == (action, 48.0, 56.0)


def test_a_resubmitted_run_records_its_checks_once(spark, lake) -> None:
    _gate(lake, _sales(spark), QualityConfig(), "run-1")
    _gate(lake, _sales(spark), QualityConfig(), "run-1")
    assert lake.read("gold.data_quality").count() == 6


def test_append_once_writes_a_runs_rows_once(spark, lake) -> None:
    rows = spark.createDataFrame([("r1", 1), ("r1", 2)], "run_id string, x int")
    first = append_once(lake, rows, "gold.forecast_accuracy", match={"run_id": "r1"})
    again = append_once(lake, rows, "gold.forecast_accuracy", match={"run_id": "r1"})
    other = append_once(lake, rows.withColumn("run_id", F.lit("r2")), "gold.forecast_accuracy", match={"run_id": "r2"})
    assert (first.rows_written, again.rows_written, other.rows_written) == (2, 0, 2)
    assert again.version == first.version and lake.read("gold.forecast_accuracy").count() == 4


def test_the_forecast_job_stops_at_the_gate_with_a_clear_message(spark, lake, capsys) -> None:
    lake.write(_sales(spark, skip_day=3), "bronze.sales", mode="overwrite")
    argv = ["--lake", lake.root, "--run-id", "gated", "--run-date", "2025-06-01"]
    assert forecast.main(argv, spark=spark) == 2
    error = capsys.readouterr().err
    assert "data-quality gate before forecast failed 1 check(s)" in error and "2025-05-04" in error
    assert _recorded(lake, "gated")[("missing_day", "date")] == "fail"
    assert not lake.exists("gold.forecast")
