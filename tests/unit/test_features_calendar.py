"""Period arithmetic and the holiday calendar, built on the driver without Spark."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from replenish.errors import ConfigError, ValidationError
from replenish.features.calendar import calendar_frame, complete_period_range, period_end, period_start

D = dt.date


@pytest.mark.parametrize(
    ("day", "freq", "start", "end"),
    [
        (D(2024, 1, 10), "D", D(2024, 1, 10), D(2024, 1, 10)),
        (D(2024, 1, 7), "W", D(2024, 1, 1), D(2024, 1, 7)),  # Sunday belongs to the week of Monday 1st
        (D(2024, 1, 8), "W", D(2024, 1, 8), D(2024, 1, 14)),
        (D(2024, 2, 29), "M", D(2024, 2, 1), D(2024, 2, 29)),
        (D(2023, 12, 31), "M", D(2023, 12, 1), D(2023, 12, 31)),
        (D(2024, 2, 29), "Q", D(2024, 1, 1), D(2024, 3, 31)),
        (D(2024, 6, 30), "Q", D(2024, 4, 1), D(2024, 6, 30)),
        (D(2023, 11, 5), "Q", D(2023, 10, 1), D(2023, 12, 31)),
    ],
)
def test_period_start_and_end(day: dt.date, freq: str, start: dt.date, end: dt.date) -> None:
    assert period_start(day, freq) == start
    assert period_end(start, freq) == end


def test_complete_period_range_drops_partial_edges() -> None:
    first, last = D(2023, 1, 1), D(2025, 12, 30)  # a Sunday to a Tuesday
    assert complete_period_range(first, last, "D") == (first, last)
    assert complete_period_range(first, last, "W") == (D(2023, 1, 2), D(2025, 12, 28))
    assert complete_period_range(first, last, "M") == (D(2023, 1, 1), D(2025, 11, 30))
    assert complete_period_range(D(2024, 1, 1), D(2024, 1, 31), "M") == (D(2024, 1, 1), D(2024, 1, 31))
    assert complete_period_range(first, last, "Q") == (D(2023, 1, 1), D(2025, 9, 30))
    # a quarterly extract dated on the quarter's 1st covers its last quarter
    assert complete_period_range(D(2023, 1, 1), D(2025, 10, 1), "Q", grain="Q") == (D(2023, 1, 1), D(2025, 12, 31))
    with pytest.raises(ValidationError, match="grain Q cannot be split"):
        complete_period_range(D(2023, 1, 1), D(2025, 10, 1), "M", grain="Q")
    with pytest.raises(ValidationError, match="complete period"):
        complete_period_range(D(2024, 1, 2), D(2024, 1, 8), "W")


def test_daily_calendar_columns_and_holidays() -> None:
    frame = calendar_frame(D(2024, 12, 23), D(2024, 12, 31), "D", "US")
    assert list(frame["date"]) == [D(2024, 12, 23) + dt.timedelta(days=i) for i in range(9)]
    christmas = frame.set_index("date").loc[D(2024, 12, 25)]
    assert christmas["is_holiday"] == 1
    assert christmas["days_to_next_holiday"] == 0
    assert christmas["day_of_week"] == 3  # Wednesday, ISO numbering
    assert (christmas["week_of_year"], christmas["month"], christmas["quarter"], christmas["year"]) == (52, 12, 4, 2024)
    assert frame["is_holiday"].sum() == 1
    # after Christmas the next holiday is New Year's Day, in the following year
    assert list(frame["days_to_next_holiday"]) == [2, 1, 0, 6, 5, 4, 3, 2, 1]


def test_weekly_and_monthly_calendars_count_holidays_per_period() -> None:
    weekly = calendar_frame(D(2024, 12, 16), D(2025, 1, 26), "W", "US")
    assert all(day.weekday() == 0 for day in weekly["date"])
    # Christmas, New Year's Day, Martin Luther King Jr. Day (Jan 20)
    assert list(weekly["is_holiday"]) == [0, 1, 1, 0, 0, 1]
    assert list(weekly["days_to_next_holiday"]) == [9, 2, 2, 14, 7, 0]

    monthly = calendar_frame(D(2025, 1, 1), D(2025, 3, 31), "M", "US")
    assert list(monthly["date"]) == [D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)]
    assert list(monthly["is_holiday"]) == [2, 1, 0]  # New Year + MLK; Washington's Birthday

    quarterly = calendar_frame(D(2025, 2, 10), D(2025, 12, 31), "Q", "US")
    assert list(quarterly["date"]) == [D(2025, 1, 1), D(2025, 4, 1), D(2025, 7, 1), D(2025, 10, 1)]
    assert list(quarterly["quarter"]) == [1, 2, 3, 4]
    assert list(quarterly["is_holiday"]) == [3, 2, 2, 4]  # US federal holidays of 2025 by quarter


def test_calendar_of_a_period_range_starts_at_the_period_of_start() -> None:
    frame = calendar_frame(D(2024, 1, 10), D(2024, 1, 20), "W", "US")
    assert list(frame["date"]) == [D(2024, 1, 8), D(2024, 1, 15)]
    assert frame["days_to_next_holiday"].dtype == pd.Int32Dtype()


def test_unknown_country_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="country"):
        calendar_frame(D(2024, 1, 1), D(2024, 1, 31), "D", "XX")
    with pytest.raises(ConfigError, match="freq"):
        calendar_frame(D(2024, 1, 1), D(2024, 1, 31), "H", "US")  # half-years are not a frequency


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q"])
def test_global_period_indices_are_consecutive_and_invertible(freq: str) -> None:
    """The LSTM windows' period index (neural.windows): one step per period, back to the period start."""
    from replenish.features.calendar import calendar_frame as periods
    from replenish.neural.windows import date_of, index_of

    starts = list(periods(D(2023, 11, 20), D(2025, 3, 31), freq, "US")["date"])
    indices = [index_of(day, freq) for day in starts]
    assert indices == list(range(indices[0], indices[0] + len(starts)))
    assert [date_of(index, freq) for index in indices] == starts
