"""The data-quality gate's verdicts, without Spark: thresholds, actions and the messages a person reads."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from replenish.errors import ConfigError
from replenish.quality import SALES_CHECK, InputProfile, QualityConfig, evaluate, missing_periods

CLEAN = InputProfile(rows=1000, nulls={"quantity": 0, "price": 10}, negatives={"quantity": 5, "price": 0})


def _by_check(results, check: str, column: str | None = None):
    found = [r for r in results if r.check == check and (column is None or r.column_name == column)]
    assert len(found) == 1, results
    return found[0]


def test_clean_input_passes_every_check_and_reports_each() -> None:
    results = evaluate(SALES_CHECK, CLEAN, QualityConfig(), last_rows=990)
    assert {r.status for r in results} == {"pass"}
    # row count, null and negative share for quantity and price, missing day
    assert sorted((r.check, r.column_name) for r in results) == sorted(
        [
            ("row_count", None),
            ("null_share", "quantity"),
            ("negative_share", "quantity"),
            ("null_share", "price"),
            ("negative_share", "price"),
            ("missing_day", "date"),
        ]
    )


@pytest.mark.parametrize("action", ["fail", "warn"])
def test_a_row_count_collapse_against_the_last_run_takes_the_configured_action(action: str) -> None:
    settings = QualityConfig(on_failure=action)  # type: ignore[arg-type]
    collapsed = evaluate(SALES_CHECK, CLEAN, settings, last_rows=2500)
    verdict = _by_check(collapsed, "row_count")
    assert (verdict.status, verdict.baseline, verdict.value) == (action, 2500.0, 1000.0)
    assert "40% of the last run's 2500" in verdict.message
    assert _by_check(evaluate(SALES_CHECK, CLEAN, settings, last_rows=1900), "row_count").status == "pass"
    assert _by_check(evaluate(SALES_CHECK, CLEAN, settings, last_rows=None), "row_count").status == "pass"


def test_null_and_negative_shares_over_their_thresholds_name_the_column() -> None:
    dirty = InputProfile(rows=100, nulls={"quantity": 0, "price": 30}, negatives={"quantity": 8, "price": 0})
    results = evaluate(SALES_CHECK, dirty, QualityConfig(actions={"negative_share": "warn"}), last_rows=None)
    nulls, negatives = _by_check(results, "null_share", "price"), _by_check(results, "negative_share", "quantity")
    assert (nulls.status, nulls.value) == ("fail", 0.3)
    assert nulls.message.startswith("bronze.sales.price: 30 of 100 rows")
    assert (negatives.status, negatives.value) == ("warn", 0.08)
    assert _by_check(results, "null_share", "quantity").status == "pass"


def _gap(latest_day: dt.date, missing: dt.date, grain: str = "day") -> InputProfile:
    """A clean input but for one `grain` period without rows."""
    clean = {"quantity": 0, "price": 0}
    return InputProfile(100, clean, clean, latest_day=latest_day, missing=(missing,), grain=grain)


def test_missing_days_are_listed_and_tolerated_up_to_the_setting() -> None:
    gap = _gap(dt.date(2025, 5, 31), dt.date(2025, 5, 3))
    strict = _by_check(evaluate(SALES_CHECK, gap, QualityConfig(), last_rows=None), "missing_day")
    assert strict.status == "fail" and "2025-05-03" in strict.message
    tolerant = evaluate(SALES_CHECK, gap, QualityConfig(max_missing_days=1), last_rows=None)
    assert _by_check(tolerant, "missing_day").status == "pass"


def test_an_extract_at_a_coarser_grain_is_checked_for_missing_periods_of_that_grain() -> None:
    months = {dt.date(2024, m, 1) for m in range(1, 13) if m != 5}
    assert missing_periods(months) == ("month", (dt.date(2024, 5, 1),))
    quarters = {dt.date(2023, 1, 1), dt.date(2023, 4, 1), dt.date(2023, 10, 1), dt.date(2024, 1, 1)}
    assert missing_periods(quarters) == ("quarter", (dt.date(2023, 7, 1),))
    mondays = {dt.date(2024, 1, 1) + dt.timedelta(weeks=k) for k in (0, 1, 3)}
    assert missing_periods(mondays) == ("week", (dt.date(2024, 1, 15),))
    days = {dt.date(2024, 1, 1), dt.date(2024, 1, 3)}
    assert missing_periods(days) == ("day", (dt.date(2024, 1, 2),))
    gap = _gap(dt.date(2024, 12, 1), dt.date(2024, 5, 1), grain="month")
    verdict = _by_check(evaluate(SALES_CHECK, gap, QualityConfig(), last_rows=None), "missing_day")
    assert verdict.status == "fail" and "1 month(s) without any row" in verdict.message


def test_an_optional_column_that_no_row_supplies_is_not_a_null_share_failure() -> None:
    unpriced = InputProfile(rows=100, nulls={"quantity": 0, "price": 100}, negatives={"quantity": 0, "price": 0})
    broken = evaluate(SALES_CHECK, unpriced, QualityConfig(), last_rows=None)
    assert _by_check(broken, "null_share", "price").status == "fail"  # prices stopped coming: a failure
    none_at_all = dataclasses.replace(unpriced, unsupplied=("price",))
    verdict = _by_check(evaluate(SALES_CHECK, none_at_all, QualityConfig(), last_rows=None), "null_share", "price")
    assert verdict.status == "pass" and "does not supply" in verdict.message


def test_a_check_turned_off_is_neither_run_nor_recorded() -> None:
    results = evaluate(SALES_CHECK, CLEAN, QualityConfig(actions={"missing_day": "off"}), last_rows=None)
    assert "missing_day" not in {r.check for r in results}


@pytest.mark.parametrize(
    "settings",
    [{"on_failure": "stop"}, {"actions": {"row_counts": "warn"}}, {"min_row_ratio": 1.5}, {"row_window_days": 0}],
)
def test_bad_settings_are_refused_naming_the_key(settings: dict) -> None:
    with pytest.raises(ConfigError, match="quality"):
        QualityConfig(**settings)
