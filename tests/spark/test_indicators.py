"""Leading indicators in silver.demand use nothing from the period they describe or later."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from replenish.features.indicators import INDICATOR_COLUMNS, add_leading_indicators

pytestmark = [pytest.mark.spark]

FIRST = dt.date(2025, 1, 6)  # a Monday


def _demand(spark, days: int):
    rows = [("S1", "L1", FIRST + dt.timedelta(days=d)) for d in range(days)]
    return spark.createDataFrame(rows, "sku string, location string, date date")


def _events(seed: int, days: int) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for d in range(days):
        for _ in range(rng.randrange(0, 6)):
            when = dt.datetime.combine(FIRST + dt.timedelta(days=d), dt.time(rng.randrange(24), rng.randrange(60)))
            rows.append(("U", "S1", rng.choice(["view", "view", "add_to_cart", "purchase"]), when, "L1"))
    return rows


def _indicators(spark, demand, events, freq: str) -> dict:
    frame = spark.createDataFrame(
        events, "user_id string, sku string, event string, timestamp timestamp, location string"
    )
    rows = add_leading_indicators(demand, frame, freq=freq, baseline_periods=4).collect()
    return {row["date"]: tuple(row[c] for c in INDICATOR_COLUMNS) for row in rows}


@pytest.mark.parametrize("freq", ["D", "W"])
def test_indicators_never_see_their_own_period_or_later(spark, freq: str) -> None:
    days = 56
    events = _events(1, days)
    demand = _demand(spark, days)
    if freq == "W":
        demand = spark.createDataFrame(
            [("S1", "L1", FIRST + dt.timedelta(weeks=w)) for w in range(days // 7)],
            "sku string, location string, date date",
        )
    full = _indicators(spark, demand, events, freq)
    period = dt.timedelta(days=1 if freq == "D" else 7)
    for cut in (FIRST + 5 * period, FIRST + 3 * period):
        # Every event from the start of period `cut` on is replaced by a burst: rows up to `cut` must not move.
        kept = [e for e in events if e[3].date() < cut]
        burst = [("U", "S1", "view", dt.datetime.combine(cut, dt.time(1)), "L1")] * 50
        changed = _indicators(spark, demand, kept + burst, freq)
        for date, values in full.items():
            if date <= cut:
                assert changed[date] == values, (freq, cut, date)
        after = cut + period
        if after in full:
            assert changed[after] != full[after]  # the burst shows in the next period


def test_counts_are_the_previous_period_and_ratio_is_one_when_steady(spark) -> None:
    days = 20
    events = [
        ("U", "S1", "view", dt.datetime.combine(FIRST + dt.timedelta(days=d), dt.time(12)), "L1") for d in range(days)
    ]
    events.append(("U", "S1", "add_to_cart", dt.datetime.combine(FIRST + dt.timedelta(days=5), dt.time(13)), "L1"))
    result = _indicators(spark, _demand(spark, days), events, "D")
    assert result[FIRST][0] is None  # nothing before the first period
    assert result[FIRST + dt.timedelta(days=6)][:2] == (1.0, 1.0)
    assert result[FIRST + dt.timedelta(days=10)][2] == pytest.approx(1.0)


def test_without_interactions_the_columns_are_null(spark) -> None:
    rows = add_leading_indicators(_demand(spark, 3), None, freq="D", baseline_periods=4).collect()
    assert all(row[c] is None for row in rows for c in INDICATOR_COLUMNS)
