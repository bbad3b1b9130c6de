"""The synthetic data set on a tiny scale: determinism, content, planted bad rows, and the job's files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from replenish.data import draws
from replenish.data.generate import BAD_DATE, NON_NUMERIC_QUANTITY, OUTPUT_COLUMNS, GeneratorConfig, generate_dataset
from replenish.io.catalog import ENTITIES

pytestmark = pytest.mark.spark

TINY = GeneratorConfig(
    skus=20,
    locations=3,
    days=120,
    users=40,
    interactions_per_user=8,
    launch_share=0.2,
    bad_row_share=0.02,
    format="csv",
)


def _collect(frames: dict) -> dict[str, pd.DataFrame]:
    """Every entity as a pandas frame in a canonical row order (the data are tiny)."""
    collected = {}
    for entity, frame in frames.items():
        table = frame.toPandas()
        collected[entity] = table.sort_values(list(table.columns), na_position="first").reset_index(drop=True)
    return collected


@pytest.fixture(scope="module")
def tiny(spark) -> dict[str, pd.DataFrame]:
    return _collect(generate_dataset(spark, TINY))


def test_the_same_seed_gives_the_same_data_on_any_partitioning(spark, tiny: dict[str, pd.DataFrame]) -> None:
    shuffle_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        again = _collect(generate_dataset(spark, TINY, partitions=3))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", shuffle_partitions)
    for entity in ENTITIES:
        pd.testing.assert_frame_equal(tiny[entity], again[entity], obj=entity)


def test_every_entity_has_rows_and_the_raw_file_columns(tiny: dict[str, pd.DataFrame]) -> None:
    assert set(tiny) == set(ENTITIES)
    for entity, table in tiny.items():
        assert len(table) > 0, entity
        assert tuple(table.columns) == OUTPUT_COLUMNS[entity], entity
    assert len(tiny["products"]) == TINY.skus
    assert len(tiny["locations"]) == TINY.locations


def _clean_sales(tiny: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The sales rows that are not planted bad rows, typed."""
    sales = tiny["sales"]
    good = sales[sales["sku"].notna() & (sales["date"] != BAD_DATE) & (sales["quantity"] != NON_NUMERIC_QUANTITY)]
    good = good.assign(
        date=pd.to_datetime(good["date"]).dt.date,
        quantity=good["quantity"].astype(int),
        in_stock=good["in_stock"] == "true",
    )
    return good[good["quantity"] >= 0].drop_duplicates()


def test_a_third_of_the_skus_are_slow_intermittent_movers(tiny: dict[str, pd.DataFrame]) -> None:
    products = tiny["products"]
    intermittent = set(products.loc[products["demand_profile"] == "intermittent", "sku"])
    assert len(intermittent) / len(products) >= 0.3
    sales = _clean_sales(tiny)
    selling = sales[sales["in_stock"] & (sales["quantity"] > 0)]
    days_with_sales = selling.groupby(["sku", "location"]).size()
    slow = days_with_sales[days_with_sales.index.get_level_values("sku").isin(intermittent)]
    fast = days_with_sales[~days_with_sales.index.get_level_values("sku").isin(intermittent)]
    assert slow.median() < 0.4 * TINY.days  # many days without a sale
    assert fast.median() > 0.6 * TINY.days


def test_zero_demand_days_have_no_row_but_stockout_days_do(tiny: dict[str, pd.DataFrame]) -> None:
    sales = _clean_sales(tiny)
    assert not ((sales["quantity"] == 0) & sales["in_stock"]).any()
    stockouts = sales[~sales["in_stock"]]
    assert len(stockouts) > 0
    assert (stockouts["quantity"] == 0).any()  # censored: demand unknown, nothing sold
    assert not sales.duplicated(["sku", "location", "date"]).any()


def test_skus_launched_mid_period_have_no_sales_before_launch(tiny: dict[str, pd.DataFrame]) -> None:
    products = tiny["products"].assign(launch_date=lambda p: pd.to_datetime(p["launch_date"]).dt.date)
    launched = products[products["launch_date"] > TINY.start_date]
    assert len(launched) > 0
    sales = _clean_sales(tiny).merge(launched[["sku", "launch_date"]], on="sku")
    assert len(sales) > 0
    assert (sales["date"] >= sales["launch_date"]).all()


def test_planted_bad_rows_are_in_the_sales_extract(tiny: dict[str, pd.DataFrame]) -> None:
    sales = tiny["sales"]
    numeric = pd.to_numeric(sales["quantity"], errors="coerce")
    assert sales["sku"].isna().any()
    assert (sales["date"] == BAD_DATE).any()
    assert (sales["quantity"] == NON_NUMERIC_QUANTITY).any()
    assert ((numeric < 0) & (sales["is_return"] == "false")).any()
    assert sales.duplicated(keep=False).any()


def test_interactions_follow_the_funnel_within_the_period(tiny: dict[str, pd.DataFrame]) -> None:
    interactions = tiny["interactions"]
    events = interactions["event"].value_counts()
    assert set(events.index) <= {"view", "add_to_cart", "purchase"}
    assert events["view"] > events.get("add_to_cart", 0) > events.get("purchase", 0) > 0
    first = pd.Timestamp(TINY.start_date)
    assert interactions["timestamp"].between(first, first + pd.Timedelta(days=TINY.days)).all()
    assert set(interactions["sku"]) <= set(tiny["products"]["sku"])


def test_suppliers_and_inventory_cover_the_assortment(tiny: dict[str, pd.DataFrame]) -> None:
    suppliers, inventory = tiny["suppliers"], tiny["inventory"]
    assert not suppliers.duplicated(["sku", "location"]).any()
    assert set(map(tuple, suppliers[["sku", "location"]].values)) == set(
        map(tuple, inventory[["sku", "location"]].values)
    )
    assert (suppliers["moq"] % suppliers["pack_size"] == 0).all()
    assert (suppliers["lead_time_std_days"] < suppliers["lead_time_mean_days"]).all()
    assert (inventory["snapshot_date"] == TINY.end_date).all()
    assert (inventory[["on_hand", "on_order", "backorders"]] >= 0).all().all()


def test_parquet_output_is_typed(spark) -> None:
    frames = generate_dataset(spark, dataclasses.replace(TINY, format="parquet"))
    sales = dict(frames["sales"].dtypes)
    assert sales["date"] == "date" and sales["quantity"] == "bigint" and sales["in_stock"] == "boolean"
    assert dict(frames["interactions"].dtypes)["timestamp"] == "timestamp"
    assert dict(frames["inventory"].dtypes)["snapshot_date"] == "date"


def test_spark_and_numpy_draws_agree(spark) -> None:
    frame = spark.range(3000).select(
        (F.col("id") % 300 / 40.0).alias("rate"),
        draws.uniform(5, "a", "id").alias("u1"),
        draws.uniform(5, "b", "id").alias("u2"),
        F.xxhash64(F.lit(5), F.lit("a"), F.col("id")).alias("hash"),
    )
    rows = frame.select(
        "*",
        draws.poisson(F.col("rate"), F.col("u1"), F.col("u2")).alias("poisson"),
        draws.gamma(F.col("rate") + 1.0, F.col("u1"), F.col("u2")).alias("gamma"),
        draws.hash_to_uniform(F.col("hash"), part=1, parts=3).alias("third"),
    ).toPandas()
    hashes = rows["hash"].to_numpy()
    assert np.array_equal(draws.hash_to_uniform(hashes, draws.NUMPY), rows["u1"].to_numpy())
    assert np.array_equal(draws.hash_to_uniform(hashes, draws.NUMPY, part=1, parts=3), rows["third"].to_numpy())
    assert 0.45 < rows["u1"].mean() < 0.55 and abs(np.corrcoef(rows["u1"], rows["u2"])[0, 1]) < 0.05
    expected = draws.poisson(rows["rate"].to_numpy(), rows["u1"].to_numpy(), rows["u2"].to_numpy(), draws.NUMPY)
    assert np.array_equal(rows["poisson"].to_numpy(), expected)
    expected_gamma = draws.gamma(
        rows["rate"].to_numpy() + 1.0, rows["u1"].to_numpy(), rows["u2"].to_numpy(), draws.NUMPY
    )
    np.testing.assert_allclose(rows["gamma"].to_numpy(), expected_gamma, rtol=1e-12)


def test_the_job_writes_one_folder_per_entity_and_prints_counts(spark, tmp_path: Path, capsys) -> None:
    from replenish_jobs import generate

    out = tmp_path / "raw"
    argv = ["--skus", "8", "--locations", "2", "--days", "60", "--users", "10", "--start", "2024-03-01"]
    argv += ["--out", str(out), "--lake", str(tmp_path / "lake"), "--set", "generate.bad_row_share=0.05"]
    assert generate.main(argv, spark=spark) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["format"] == "csv" and summary["end"] == str(dt.date(2024, 4, 29))
    for entity in ENTITIES:
        parts = sorted((out / entity).glob("part-*.csv"))
        assert parts, entity
        table = pd.concat([pd.read_csv(part, dtype=str, keep_default_na=False) for part in parts])
        assert tuple(table.columns) == OUTPUT_COLUMNS[entity], entity
        assert len(table) == summary["counts"][entity] > 0, entity
    sales = pd.concat(pd.read_csv(part, dtype=str, keep_default_na=False) for part in (out / "sales").glob("*.csv"))
    assert (sales["sku"] == "").any()  # a null SKU is an empty CSV field
