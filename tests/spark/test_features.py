"""Features on Spark: gap filling, censoring, periods, lags and rolling stats, profiles, and the job.

The hand-made sales run from Monday 2024-01-01 to Sunday 2024-02-04 (35 days, five whole weeks,
one whole month):

* S1/L1 (product with unit_price 10): sales on Jan 1, 3 (on promotion, with a return the same day)
  and Feb 4; out of stock on Jan 5-6 and Jan 15-19; no rows on the other days.
* S2/L1 (launched Jan 8): sales on Jan 10 and Feb 4 only.
* S3/L2 (not in the product master): 3 units every fourth day from Jan 1, an intermittent series.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from replenish.features import (
    FeaturesConfig,
    add_lag_features,
    add_price_features,
    build_demand,
    build_features,
    classify_demand,
    profile_series,
    table_lag_columns,
)
from replenish.features.classify import abc_classes, coefficient_of_variation, xyz_class
from replenish.features.demand import FEATURE_COLUMNS
from replenish.io.catalog import BRONZE_COLUMNS

pytestmark = pytest.mark.spark

D = dt.date
SALES_SCHEMA = BRONZE_COLUMNS["sales"]
PRODUCTS_SCHEMA = "sku string, name string, category string, unit_price double, launch_date date"


def _sales_rows(*, with_return: bool = True) -> list[tuple]:
    rows = [
        ("S1", "L1", D(2024, 1, 1), 4.0, 10.0, False, True, False),
        ("S1", "L1", D(2024, 1, 3), 2.0, 8.0, True, True, False),
        ("S1", "L1", D(2024, 1, 5), 0.0, None, False, False, False),
        ("S1", "L1", D(2024, 1, 6), 1.0, 10.0, False, False, False),
        *[("S1", "L1", D(2024, 1, day), 0.0, 10.0, False, False, False) for day in range(15, 20)],
        ("S1", "L1", D(2024, 2, 4), 3.0, 10.0, False, True, False),
        ("S2", "L1", D(2024, 1, 10), 2.0, 5.0, False, True, False),
        ("S2", "L1", D(2024, 2, 4), 1.0, 5.0, False, True, False),
        *[
            ("S3", "L2", D(2024, 1, 1) + dt.timedelta(days=day), 3.0, 2.0, False, True, False)
            for day in range(0, 35, 4)
        ],
    ]
    if with_return:
        rows.append(("S1", "L1", D(2024, 1, 3), -1.0, 8.0, False, True, True))
    return rows


@pytest.fixture(scope="module")
def sales(spark):
    return spark.createDataFrame(_sales_rows(), SALES_SCHEMA)


@pytest.fixture(scope="module")
def products(spark):
    rows = [("S1", "one", "cat-a", 10.0, None), ("S2", "two", "cat-b", 6.0, D(2024, 1, 8))]
    return spark.createDataFrame(rows, PRODUCTS_SCHEMA)


@pytest.fixture(scope="module")
def daily_features(sales, products):
    """The D features, computed once for the tests that read them."""
    features = build_features(sales, products, FeaturesConfig(), freq="D").cache()
    yield features
    features.unpersist()


def _by_key(df) -> dict[tuple[str, dt.date], dict]:
    return {(row["sku"], row["date"]): row.asDict() for row in df.collect()}


def test_daily_gap_filling_tells_zero_demand_from_stockouts(sales, products) -> None:
    rows = _by_key(build_demand(sales, products, FeaturesConfig(), freq="D"))
    days = {sku: sorted(day for key_sku, day in rows if key_sku == sku) for sku in ("S1", "S2", "S3")}
    assert days["S1"] == [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(35)]
    assert days["S2"][0] == D(2024, 1, 8)  # the launch date, before the first sale on Jan 10
    assert len(days["S2"]) == 28 and len(days["S3"]) == 35

    zero_day = rows[("S1", D(2024, 1, 2))]  # no row, in stock: zero demand, last known price
    assert (zero_day["demand"], zero_day["censored"], zero_day["in_stock_share"], zero_day["price"]) == (
        0.0,
        False,
        1.0,
        10.0,
    )
    assert rows[("S1", D(2024, 1, 3))]["demand"] == 2.0  # the return is excluded
    assert rows[("S1", D(2024, 1, 3))]["promo"] == 1.0
    assert rows[("S1", D(2024, 1, 4))]["price"] == 8.0  # carried from Jan 3
    for day, observed in ((5, 0.0), (6, 1.0)):
        stockout = rows[("S1", D(2024, 1, day))]
        assert (stockout["demand"], stockout["censored"], stockout["in_stock_share"]) == (observed, True, 0.0)
    assert rows[("S1", D(2024, 1, 5))]["price"] == 8.0  # the row has no price: the last known one
    assert [rows[("S2", D(2024, 1, day))]["demand"] for day in (8, 9, 10)] == [0.0, 0.0, 2.0]
    assert rows[("S2", D(2024, 1, 8))]["price"] == 5.0  # before the first sale: the first sale's price
    assert rows[("S1", D(2024, 1, 5))]["category"] == "cat-a"
    assert rows[("S3", D(2024, 1, 2))]["category"] is None
    assert sum(row["demand"] for (sku, _), row in rows.items() if sku == "S3") == 27.0


def test_returns_can_be_netted(sales, products) -> None:
    cfg = dataclasses.replace(FeaturesConfig(), returns="net")
    rows = _by_key(build_demand(sales, products, cfg, freq="D"))
    assert rows[("S1", D(2024, 1, 3))]["demand"] == 1.0


def test_weekly_periods_start_on_monday_and_censor_mostly_out_of_stock_weeks(sales, products) -> None:
    rows = _by_key(build_demand(sales, products, FeaturesConfig(), freq="W"))
    mondays = [D(2024, 1, 1) + dt.timedelta(weeks=i) for i in range(5)]
    assert sorted(day for sku, day in rows if sku == "S1") == mondays
    assert sorted(day for sku, day in rows if sku == "S2") == mondays[1:]

    first = rows[("S1", D(2024, 1, 1))]
    assert first["freq"] == "W"
    assert first["demand"] == 7.0
    assert first["in_stock_share"] == pytest.approx(5 / 7)
    assert first["censored"] is False
    assert first["promo"] == pytest.approx(1 / 7)
    assert first["price"] == pytest.approx((10 + 10 + 8 + 8 + 8 + 10 + 10) / 7)
    stockout_week = rows[("S1", D(2024, 1, 15))]
    assert (stockout_week["censored"], stockout_week["in_stock_share"]) == (True, pytest.approx(2 / 7))
    assert rows[("S2", D(2024, 1, 8))]["demand"] == 2.0
    assert rows[("S1", D(2024, 1, 29))]["demand"] == 3.0  # the week ending Sunday Feb 4


def test_monthly_periods_are_dated_on_the_first_and_skip_partial_months(sales, products) -> None:
    rows = _by_key(build_demand(sales, products, FeaturesConfig(), freq="M"))
    assert set(rows) == {("S1", D(2024, 1, 1)), ("S2", D(2024, 1, 1)), ("S3", D(2024, 1, 1))}  # Feb is partial
    s1 = rows[("S1", D(2024, 1, 1))]
    assert s1["demand"] == 7.0
    assert s1["in_stock_share"] == pytest.approx(24 / 31)
    assert rows[("S2", D(2024, 1, 1))]["in_stock_share"] == 1.0


def _series(spark, values: dict[str, list[tuple[float, bool]]]):
    rows = [
        ("W", sku, "L1", D(2024, 1, 1) + dt.timedelta(weeks=i), float(demand), censored)
        for sku, points in values.items()
        for i, (demand, censored) in enumerate(points)
    ]
    return spark.createDataFrame(
        rows, "freq string, sku string, location string, date date, demand double, censored boolean"
    )


def test_lags_and_rolling_statistics_exclude_the_current_and_censored_periods(spark) -> None:
    demand = _series(
        spark,
        {
            "A": [(1, False), (2, False), (3, True), (4, False), (5, False), (6, False)],
            "B": [(10, False), (20, False)],
        },
    )
    out = add_lag_features(demand, lags=[1, 2], rolling_windows=[2, 3]).orderBy("sku", "date").collect()
    a = [row.asDict() for row in out if row["sku"] == "A"]
    assert [row["lag_1"] for row in a] == [None, 1, 2, None, 4, 5]  # the censored 3 is missing
    assert [row["lag_2"] for row in a] == [None, None, 1, 2, None, 4]
    assert [row["rolling_mean_2"] for row in a] == [None, 1.0, 1.5, 2.0, 4.0, 4.5]
    assert [row["rolling_mean_3"] for row in a] == [None, 1.0, 1.5, 1.5, 3.0, 4.5]
    std_2 = [row["rolling_std_2"] for row in a]
    assert std_2[:2] == [None, None] and std_2[3:5] == [None, None]  # fewer than two uncensored values
    assert std_2[2] == pytest.approx(math.sqrt(0.5)) and std_2[5] == pytest.approx(math.sqrt(0.5))
    assert a[4]["rolling_std_3"] == pytest.approx(math.sqrt(2.0))  # of 2 and 4
    b = [row.asDict() for row in out if row["sku"] == "B"]
    assert [row["lag_1"] for row in b] == [None, 10]  # series do not leak into each other
    assert [row["rolling_mean_3"] for row in b] == [None, 10.0]


def test_price_ratio_against_the_trailing_median_price(spark) -> None:
    prices = [10.0, 10.0, 8.0, 10.0, 12.0, 12.0, 12.0]
    demand = spark.createDataFrame(
        [("P", "L1", D(2024, 1, 1) + dt.timedelta(days=i), price) for i, price in enumerate(prices)],
        "sku string, location string, date date, price double",
    )
    out = add_price_features(demand, regular_price_window=3).orderBy("date").collect()
    assert [row["regular_price"] for row in out] == [10.0, 10.0, 10.0, 10.0, 10.0, 12.0, 12.0]
    assert [row["price_ratio"] for row in out] == pytest.approx([1.0, 1.0, 0.8, 1.0, 1.2, 1.0, 1.0])


def _shuffles(df) -> list[str]:
    """The partitioning of every shuffle in the physical plan (broadcasts are not shuffles)."""
    plan = df._jdf.queryExecution().executedPlan().toString()
    return sorted(re.sub(r"#\d+", "", found) for found in re.findall(r"(?<!Broadcast)Exchange (\w+\([^)]*\))", plan))


def test_build_features_has_the_table_columns_calendar_and_one_shuffle(sales, products, daily_features) -> None:
    cfg = FeaturesConfig()
    daily = build_features(sales, products, cfg, freq="D")
    assert daily.columns == [*FEATURE_COLUMNS, *table_lag_columns(cfg)]
    # the sales once by series; the products by sku to drop duplicate product rows; nothing else
    assert _shuffles(daily) == ["hashpartitioning(sku, 4)", "hashpartitioning(sku, location, 4)"], (
        "build_features shuffles the sales more than once by series (read through Spark 3.5's private "
        "`_jdf` API: after a Spark upgrade adapt the parsing if only the plan's text format changed)"
    )

    rows = _by_key(daily_features.where("sku = 'S1'"))
    assert rows[("S1", D(2024, 1, 1))]["is_holiday"] == 1  # New Year's Day
    assert rows[("S1", D(2024, 1, 15))]["is_holiday"] == 1  # Martin Luther King Jr. Day
    assert rows[("S1", D(2024, 1, 14))]["days_to_next_holiday"] == 1
    assert rows[("S1", D(2024, 1, 3))]["day_of_week"] == 3
    assert rows[("S1", D(2024, 1, 3))]["price_ratio"] == pytest.approx(0.8)
    assert rows[("S1", D(2024, 1, 8))]["lag_7"] == 4.0
    assert rows[("S1", D(2024, 1, 8))]["lag_52"] is None  # a weekly lag: null in daily rows

    weekly_features = build_features(sales, products, cfg, freq="W")
    assert _shuffles(weekly_features) == ["hashpartitioning(sku, 4)", "hashpartitioning(sku, location, 4)"]
    weekly = _by_key(weekly_features.where("sku = 'S1'"))
    assert [weekly[("S1", D(2024, 1, 1) + dt.timedelta(weeks=i))]["is_holiday"] for i in range(5)] == [1, 0, 1, 0, 0]
    assert weekly[("S1", D(2024, 1, 8))]["lag_1"] == 7.0
    assert weekly[("S1", D(2024, 1, 22))]["lag_1"] is None  # the censored week


def test_known_intermittent_series_is_classified_intermittent(products, daily_features) -> None:
    cfg = FeaturesConfig()
    profile = {row["sku"]: row for row in profile_series(daily_features, products, cfg, freq="D").collect()}
    s3 = profile["S3"]
    assert s3["demand_class"] == "intermittent"
    assert s3["adi"] == pytest.approx(35 / 9)
    assert (s3["n_periods"], s3["n_nonzero"], s3["cv2"]) == (35, 9, 0.0)
    assert s3["category"] is None
    assert profile["S1"]["censored_share"] == pytest.approx(7 / 35)
    assert profile["S1"]["category"] == "cat-a"
    assert profile["S2"]["first_date"] == D(2024, 1, 8)
    assert profile["S2"]["last_date"] == D(2024, 2, 4)


def test_profile_classes_abc_xyz_against_hand_computed_values(spark) -> None:
    patterns = {
        "A1": [(6, False), (6, False), (0, True), (6, False), (6, False), (6, False), (6, False), (6, False)],
        "B1": [(1, False), (9, False)] * 4,
        "C1": [(0, False), (0, False), (0, False), (4, False)] * 2,
        "D1": [(0, False), (0, False), (0, False), (1, False), (0, False), (0, False), (0, False), (7, False)],
        "E1": [(0, False)] * 3,
    }
    prices = {"A1": 1.0, "B1": 1.0, "C1": 1.0, "D1": 2.0, "E1": 1.0}
    demand = _series(spark, patterns).withColumn(
        "price", F.create_map(*[F.lit(x) for pair in prices.items() for x in pair])[F.col("sku")]
    )
    cfg = dataclasses.replace(
        FeaturesConfig(), weekly=dataclasses.replace(FeaturesConfig().weekly, new_series_periods=4)
    )
    profile = {row["sku"]: row.asDict() for row in profile_series(demand, None, cfg, freq="W").collect()}

    # revenue 42, 40, 8, 16, 0 (D1 sells at 2): shares before, in revenue order, 0, 42/106, 82/106, 98/106
    assert {sku: row["revenue"] for sku, row in profile.items()} == {
        "A1": 42.0,
        "B1": 40.0,
        "C1": 8.0,
        "D1": 16.0,
        "E1": 0.0,
    }
    expected_abc = dict(zip(prices, abc_classes([42, 40, 8, 16, 0], cfg.abc_thresholds), strict=True))
    assert expected_abc == {"A1": "A", "B1": "A", "C1": "B", "D1": "A", "E1": "C"}
    assert {sku: row["abc"] for sku, row in profile.items()} == expected_abc

    classes = {"A1": "smooth", "B1": "erratic", "C1": "intermittent", "D1": "lumpy", "E1": "no_demand"}
    assert {sku: row["demand_class"] for sku, row in profile.items()} == classes
    for sku, points in patterns.items():
        values, censored = [p[0] for p in points], [p[1] for p in points]
        assert classify_demand(values, censored) == classes[sku]  # the numpy reference agrees
        cv = coefficient_of_variation(values, censored)
        assert profile[sku]["xyz"] == xyz_class(cv, cfg.xyz_thresholds)
    assert {sku: row["xyz"] for sku, row in profile.items()} == {"A1": "X", "B1": "Y", "C1": "Z", "D1": "Z", "E1": "Z"}
    assert profile["B1"]["abc_xyz"] == "AY"

    a1 = profile["A1"]
    assert (a1["n_periods"], a1["n_nonzero"], a1["adi"], a1["censored_share"]) == (8, 7, 1.0, 1 / 8)
    assert profile["D1"]["cv2"] == pytest.approx(9 / 16)
    assert profile["E1"]["adi"] is None and profile["E1"]["total_demand"] == 0.0
    assert {sku: row["is_new"] for sku, row in profile.items()} == {
        "A1": False,
        "B1": False,
        "C1": False,
        "D1": False,
        "E1": True,
    }


def test_features_job_writes_each_frequency_into_its_own_partition(spark, lake) -> None:
    from replenish_jobs import features

    lake.write(spark.createDataFrame(_sales_rows(with_return=False), SALES_SCHEMA), "bronze.sales", mode="overwrite")
    products = spark.createDataFrame(
        [("S1", "one", "cat-a", 10.0, None), ("S2", "two", "cat-b", 6.0, D(2024, 1, 8))], PRODUCTS_SCHEMA
    )
    lake.write(products, "bronze.products", mode="overwrite")
    common = ["--lake", lake.root, "--run-date", "2024-02-05"]

    assert features.main(["--freq", "D", *common], spark=spark) == 0
    assert features.main(["--freq", "W", *common], spark=spark) == 0
    counts = {row["freq"]: row["count"] for row in lake.read("silver.demand").groupBy("freq").count().collect()}
    assert counts == {"D": 98, "W": 14}
    profiles = lake.read("silver.series_profile")
    classes = {(row["freq"], row["sku"]): row["demand_class"] for row in profiles.collect()}
    # 3 units every fourth day: intermittent by day, smooth by week (6, 6, 6, 3, 6)
    assert (classes[("D", "S3")], classes[("W", "S3")]) == ("intermittent", "smooth")

    # rerunning one frequency replaces only its partition
    weekly_before = sorted(map(tuple, lake.read("silver.demand").where("freq = 'W'").collect()))
    assert features.main(["--freq", "D", *common], spark=spark) == 0
    assert sorted(map(tuple, lake.read("silver.demand").where("freq = 'W'").collect())) == weekly_before
    assert lake.read("silver.demand").where("freq = 'D'").count() == 98


def test_features_job_migrates_the_table_when_lag_columns_change(spark, lake) -> None:
    from replenish_jobs import features

    def demand(freq: str, lags: list[int]):
        columns = ", ".join(f"{k}D AS lag_{k}" for k in lags)
        return spark.sql(f"SELECT '{freq}' AS freq, 'S1' AS sku, DATE'2024-01-01' AS date, {columns}")

    context = SimpleNamespace(lake=lake)
    features._write_demand(context, demand("D", [1, 7]), "D")
    features._write_demand(context, demand("W", [1, 7]), "W")
    result = features._write_demand(context, demand("D", [1, 2]), "D")  # lags reconfigured

    table = lake.read("silver.demand")
    assert table.columns == ["freq", "sku", "date", "lag_1", "lag_2"]
    rows = {row["freq"]: row.asDict() for row in table.collect()}
    assert rows["D"] == {"freq": "D", "sku": "S1", "date": D(2024, 1, 1), "lag_1": 1.0, "lag_2": 2.0}
    assert rows["W"] == {"freq": "W", "sku": "S1", "date": D(2024, 1, 1), "lag_1": 1.0, "lag_2": None}
    assert result.version == 2
