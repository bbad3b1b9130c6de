"""Periods and the calendar: period starts, complete-period ranges, calendar and holiday features.

The calendar has one row per period, so even ten years of days is a few thousand rows: it is built
on the driver from the date range alone (with the `holidays` package) and broadcast-joined onto the
demand, which costs no shuffle. Forecasting reuses `calendar_frame` for future periods.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import holidays
import numpy as np
import pandas as pd

from replenish.errors import ConfigError, ValidationError
from replenish.shared import MONTHS_PER_PERIOD, check_freq

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

CALENDAR_COLUMNS: tuple[str, ...] = (
    "day_of_week",
    "week_of_year",
    "month",
    "quarter",
    "year",
    "is_holiday",
    "days_to_next_holiday",
)
_PANDAS_FREQ = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS-JAN"}


def period_start(day: dt.date, freq: str) -> dt.date:
    """The start of the period holding `day`: the day itself (D), its Monday (W), the 1st of its
    month (M) or of its quarter's first month (Q: January, April, July, October)."""
    check_freq(freq)
    if freq == "D":
        return day
    if freq == "W":
        return day - dt.timedelta(days=day.weekday())
    if freq == "Q":
        return day.replace(month=day.month - (day.month - 1) % 3, day=1)
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` (the 1st of a month) moved by `months` calendar months."""
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def period_end(start: dt.date, freq: str) -> dt.date:
    """The last day of the period starting on `start`."""
    check_freq(freq)
    if freq == "D":
        return start
    if freq == "W":
        return start + dt.timedelta(days=6)
    return add_months(start.replace(day=1), MONTHS_PER_PERIOD[freq]) - dt.timedelta(days=1)


GRAIN_ORDER: dict[str, int] = {"D": 0, "W": 1, "M": 2, "Q": 3}
GRAIN_NAMES: dict[str, str] = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}


def grain_of_dates(first: dt.date, last: dt.date, *, off_quarter: int, off_month: int, off_week: int) -> str:
    """The coarsest grain every date of an extract fits, from counts of the dates that do not.

    Q when every date is the 1st of January, April, July or October, M when every date is a 1st, W when
    every date is a Monday, else D; one date alone reads as daily. The counts are those of dates off a
    quarter start, off a month start and off a Monday, so Spark (`features.demand.sales_grain`) and
    plain Python (`quality.missing_periods`) apply the same rule.
    """
    several = first < last
    if several and off_quarter == 0:
        return "Q"
    if several and off_month == 0:
        return "M"
    if several and off_week == 0:
        return "W"
    return "D"


def complete_period_range(
    first_day: dt.date, last_day: dt.date, freq: str, *, grain: str = "D"
) -> tuple[dt.date, dt.date]:
    """The days `[start, end]` of the periods that lie wholly inside the data.

    Partial periods at the edges of the data are dropped: a week cut off after two days would look
    like a collapse in demand to every model downstream. The data covers the whole `grain` period of
    its last date: a monthly extract dated on the 1st covers its last month, which is kept.

    Raises:
        ValidationError: the data does not cover one complete period, or `grain` is coarser than
            `freq` (monthly sales cannot be split into weeks).
    """
    check_freq(freq)
    check_freq(grain)
    if GRAIN_ORDER[grain] > GRAIN_ORDER[freq]:
        raise ValidationError(
            f"sales at grain {grain} cannot be split into periods of frequency {freq}: "
            f"build features at --freq {grain} (or coarser), or declare the grain (features.grain, --grain)"
        )
    last_day = period_end(period_start(last_day, grain), grain)
    start = period_start(first_day, freq)
    if start < first_day:
        start = period_end(start, freq) + dt.timedelta(days=1)
    end_start = period_start(last_day, freq)
    end = period_end(end_start, freq)
    if end > last_day:
        end = end_start - dt.timedelta(days=1)
    if start > end:
        raise ValidationError(
            f"sales from {first_day} to {last_day} do not cover one complete period of frequency {freq}"
        )
    return start, end


def period_start_column(day: Column, freq: str) -> Column:
    """Column version of `period_start`, in plain date arithmetic (no time zone involved)."""
    from pyspark.sql import functions as F

    check_freq(freq)
    if freq == "D":
        return day
    if freq == "W":
        # dayofweek: Sunday=1 .. Saturday=7, so (dayofweek + 5) % 7 is the number of days since Monday
        return F.date_sub(day, (F.dayofweek(day) + 5) % 7)
    return F.trunc(day, "quarter" if freq == "Q" else "month")


def _country_holidays(country: str, years: range) -> list[dt.date]:
    try:
        calendar = holidays.country_holidays(country, years=years)
    except NotImplementedError:
        raise ConfigError(f"features.country: the holidays package has no calendar for {country!r}") from None
    return sorted(calendar)


def calendar_frame(start: dt.date, end: dt.date, freq: str, country: str) -> pd.DataFrame:
    """One row per period starting in `[start, end]`, with calendar and holiday features.

    Args:
        start: first day; its period start is the first row.
        end: last day (inclusive).
        freq: D, W (weeks starting Monday), M (months dated on the 1st) or Q (quarters dated on
            the 1st of January, April, July and October).
        country: ISO country code of the holiday calendar.

    Returns:
        Columns `date` (period start), `day_of_week` (ISO, 1 = Monday, of the period start),
        `week_of_year` (ISO week), `month`, `quarter`, `year` (of the period start), `is_holiday`
        (holidays within the period: 0/1 for D, a count of holiday days for W, M and Q) and
        `days_to_next_holiday` (days from the period start to the next holiday on or after it;
        0 when the start is one).
    """
    check_freq(freq)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    starts = pd.date_range(period_start(start, freq), end, freq=_PANDAS_FREQ[freq])
    # One more year than the range, so the last periods still find their next holiday.
    holiday_days = np.array(_country_holidays(country, range(start.year, end.year + 2)), dtype="datetime64[D]")
    period_starts = starts.values.astype("datetime64[D]")
    period_ends = np.array([period_end(day.date(), freq) for day in starts], dtype="datetime64[D]")
    first_on_or_after_start = np.searchsorted(holiday_days, period_starts, side="left")
    first_after_end = np.searchsorted(holiday_days, period_ends, side="right")
    days_to_next = pd.array(np.full(len(starts), pd.NA), dtype="Int32")
    has_next = first_on_or_after_start < len(holiday_days)
    if has_next.any():
        next_holiday = holiday_days[first_on_or_after_start[has_next]]
        days_to_next[has_next] = (next_holiday - period_starts[has_next]).astype("int64")
    iso = starts.isocalendar()
    return pd.DataFrame(
        {
            "date": starts.date,
            "day_of_week": iso["day"].to_numpy(dtype="int32"),
            "week_of_year": iso["week"].to_numpy(dtype="int32"),
            "month": starts.month.to_numpy(dtype="int32"),
            "quarter": starts.quarter.to_numpy(dtype="int32"),
            "year": starts.year.to_numpy(dtype="int32"),
            "is_holiday": (first_after_end - first_on_or_after_start).astype("int32"),
            "days_to_next_holiday": days_to_next,
        }
    )


def build_calendar(spark: SparkSession, start: dt.date, end: dt.date, freq: str, country: str) -> DataFrame:
    """`calendar_frame` as a Spark DataFrame with an explicit schema (small: one row per period)."""
    from pyspark.sql import types as T

    frame = calendar_frame(start, end, freq, country)
    schema = T.StructType(
        [
            T.StructField("date", T.DateType(), False),
            *[T.StructField(name, T.IntegerType(), name == "days_to_next_holiday") for name in CALENDAR_COLUMNS],
        ]
    )
    rows = [
        (row.date, *(None if pd.isna(value) else int(value) for value in row[1:]))
        for row in frame.itertuples(index=False)
    ]
    return spark.createDataFrame(rows, schema=schema)


def add_calendar_features(demand: DataFrame, calendar: DataFrame) -> DataFrame:
    """Broadcast-join the calendar onto `demand` by period start (`date`); no shuffle of `demand`.

    Raises:
        ValidationError: `demand` or `calendar` lacks `date`, or the calendar lacks a feature column.
    """
    from pyspark.sql import functions as F

    if "date" not in demand.columns:
        raise ValidationError(f"demand has no `date` column: {demand.columns}")
    missing = [name for name in ("date", *CALENDAR_COLUMNS) if name not in calendar.columns]
    if missing:
        raise ValidationError(f"calendar lacks column(s) {missing}")
    return demand.join(F.broadcast(calendar.select("date", *CALENDAR_COLUMNS)), on="date", how="left")
