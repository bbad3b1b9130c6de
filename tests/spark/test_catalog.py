"""Tables by name in Spark SQL, and one lake read alike by both engines, delta-rs and DuckDB."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from replenish.io.bi import duckdb_connect
from replenish.io.lake import Lake
from replenish.io.metastore import registered_location

pytestmark = pytest.mark.spark

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lake.md"


def _plan(spark, skus: range, run: str = "r1"):
    """Rows shaped like a small replenishment plan: a partition-free table BI filters by sku."""
    return spark.range(skus.start, skus.stop).select(
        F.lit(run).alias("run_id"),
        F.format_string("SKU-%03d", "id").alias("sku"),
        F.lit("L1").alias("location"),
        (F.col("id") * 2.5).alias("order_qty"),
    )


def _demand(spark, days: int):
    """Rows shaped like silver.demand: partitioned by freq, dates as values."""
    return spark.range(0, days * 3).select(
        F.lit("D").alias("freq"),
        F.format_string("SKU-%03d", F.col("id") % 3).alias("sku"),
        F.lit("L1").alias("location"),
        F.expr("date_add(date'2024-01-01', cast(id div 3 as int))").alias("date"),
        (F.col("id") % 5).cast("double").alias("demand"),
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_tables_written_are_named_in_spark_sql(spark, tmp_path: Path) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"), engine="delta-spark", register_catalog=True)
    lake.write(_plan(spark, range(0, 6)), "gold.replenishment_plan")
    lake.write(_plan(spark, range(0, 4), run="r2"), "gold.replenishment_plan")
    rows = spark.sql(
        "SELECT run_id, count(*) AS n FROM gold.replenishment_plan WHERE sku >= 'SKU-002' GROUP BY run_id ORDER BY 1"
    ).collect()
    assert [(r["run_id"], r["n"]) for r in rows] == [("r1", 4), ("r2", 2)]
    assert spark.sql("SELECT count(*) FROM gold.replenishment_plan VERSION AS OF 0").first()[0] == 6
    # another lake in the same session takes the name over; the first lake's files are untouched
    other = Lake(spark, str(tmp_path / "other"), engine="delta-spark", register_catalog=True)
    other.write(_plan(spark, range(0, 1)), "gold.replenishment_plan")
    assert spark.sql("SELECT count(*) FROM gold.replenishment_plan").first()[0] == 1
    assert registered_location(spark, "gold.replenishment_plan").endswith("other/gold/replenishment_plan")
    assert lake.read("gold.replenishment_plan").count() == 10
    # and opening the first lake again points the name back at it
    assert lake.register_in_catalog() == ["gold.replenishment_plan"]
    assert spark.sql("SELECT count(*) FROM gold.replenishment_plan").first()[0] == 10


def test_a_table_written_by_delta_spark_is_read_by_the_embedded_engine_and_duckdb(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "lakehouse")
    writer = Lake(spark, root, engine="delta-spark")
    writer.write(_demand(spark, 10), "silver.demand")
    writer.write(_demand(spark, 12).withColumn("freq", F.lit("W")), "silver.demand")
    writer.write(_demand(spark, 4).withColumn("demand", F.lit(9.0)), "silver.demand", mode="overwrite_partitions")
    writer.insert_new(_demand(spark, 14).withColumn("freq", F.lit("W")), "silver.demand")
    expected = _sorted(writer.read("silver.demand").toPandas())
    assert len(expected) == 4 * 3 + 14 * 3

    reader = Lake(spark, root, engine="embedded")
    assert reader.version("silver.demand") == writer.version("silver.demand") == 3
    assert _sorted(reader.read("silver.demand").toPandas()).equals(expected)
    con = duckdb_connect(root, tables=["silver.demand"])
    assert con.sql("SELECT count(*), sum(demand) FROM silver_demand").fetchone() == (
        len(expected),
        pytest.approx(expected["demand"].sum()),
    )
    # the embedded engine also appends to it, and delta-spark reads the result
    reader.write(_demand(spark, 1).withColumn("freq", F.lit("M")), "silver.demand")
    assert writer.read("silver.demand").where("freq = 'M'").count() == 3


def test_a_table_written_by_the_embedded_engine_is_read_by_delta_spark_and_spark_sql(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "lakehouse")
    writer = Lake(spark, root, engine="embedded")
    writer.write(_demand(spark, 10), "silver.demand")
    writer.write(_demand(spark, 3).withColumn("demand", F.lit(7.0)), "silver.demand", mode="overwrite_partitions")
    writer.insert_new(_demand(spark, 5).withColumn("freq", F.lit("W")), "silver.demand")
    expected = _sorted(writer.read("silver.demand").toPandas())

    reader = Lake(spark, root, engine="delta-spark", register_catalog=True)
    assert _sorted(reader.read("silver.demand").toPandas()).equals(expected)
    assert reader.read("silver.demand", version=0).count() == 30
    assert reader.register_in_catalog(["silver.demand"]) == ["silver.demand"]
    assert spark.sql("SELECT count(*) FROM silver.demand WHERE freq = 'W'").first()[0] == 15
    # delta-spark then commits on top of the embedded engine's log
    reader.write(_demand(spark, 1).withColumn("freq", F.lit("M")), "silver.demand")
    assert writer.read("silver.demand").count() == len(expected) + 3


def _documented_delta_rs_snippet() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- delta-rs read, tested -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/lake.md lost its tested delta-rs snippet"
    return match.group(1)


@pytest.mark.parametrize("engine", ["delta-spark", "embedded"])
def test_the_documented_delta_rs_read_works_on_partitioned_tables(spark, tmp_path: Path, engine: str) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"), engine=engine)
    lake.write(_demand(spark, 6), "silver.demand")
    lake.write(_demand(spark, 2).withColumn("demand", F.lit(1.0)), "silver.demand", mode="overwrite_partitions")
    expected = lake.read("silver.demand").toPandas()
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(_documented_delta_rs_snippet().replace("gold/replenishment_plan", "silver/demand"), namespace)
    finally:
        os.chdir(cwd)
    frame: pd.DataFrame = namespace["frame"]
    assert len(frame) == len(expected) == 6
    assert set(frame.columns) == set(expected.columns)
    assert frame["demand"].sum() == expected["demand"].sum()
    assert set(frame["freq"]) == {"D"} and frame["date"].min() == dt.date(2024, 1, 1)
