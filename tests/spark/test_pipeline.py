"""The whole pipeline on small generated data: every job, the tables it leaves, and who can read them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from replenish.io.bi import duckdb_connect
from replenish.io.lake import Lake
from replenish_jobs import ingest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED_TABLES = {
    "bronze.sales",
    "bronze.products",
    "bronze.locations",
    "bronze.interactions",
    "bronze.suppliers",
    "bronze.inventory",
    "quarantine.sales",
    "silver.demand",
    "silver.series_profile",
    "gold.forecast",
    "gold.backtest_forecast",
    "gold.forecast_backtest",
    "gold.model_registry",
    "gold.model_selection",
    "gold.safety_stock",
    "gold.replenishment_plan",
    "gold.forecast_accuracy",
    "gold.inventory_simulation",
    "gold.data_quality",
    "silver.user_index",
    "silver.sku_index",
    "gold.recommendations",
    "gold.item_factors",
    "gold.similar_items",
    "gold.recommender_evaluation",
}


@pytest.fixture(scope="module")
def pipeline(nightly) -> dict:
    """The session's shared run-all (tests/conftest.py): its lake, raw files and folder."""
    return {"lake": nightly.lake, "raw": nightly.raw, "root": nightly.root}


def test_every_table_is_written(pipeline: dict) -> None:
    lake: Lake = pipeline["lake"]
    missing = {name for name in EXPECTED_TABLES if not lake.exists(name)}
    assert not missing
    assert all(lake.describe(name)["rows"] > 0 for name in EXPECTED_TABLES)
    report = Path(lake.root, "report.html")
    assert report.is_file(), f"run-all wrote no report at {report}"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_every_table_written_has_exactly_its_catalog_columns(pipeline: dict) -> None:
    """The catalog's columns (docs/tables.md) are what the jobs write: names, order and types."""
    from replenish.io.catalog import TABLES

    lake: Lake = pipeline["lake"]
    written = [spec for spec in TABLES.values() if lake.exists(spec)]
    assert {spec.name for spec in written} >= EXPECTED_TABLES
    for spec in written:
        fields = lake.read(spec).schema.fields
        fixed = [(f.name, f.dataType.simpleString()) for f in fields if not spec.is_open_column(f.name)]
        assert fixed == [(f.name, f.dataType.simpleString()) for f in spec.schema.fields], spec.name
    demand = lake.read("silver.demand").columns
    for prefix in TABLES["silver.demand"].open_prefixes:  # the open columns are there, just not declared
        assert any(name.startswith(prefix) for name in demand), prefix


def test_gold_tables_read_alike_in_spark_delta_rs_and_duckdb(pipeline: dict) -> None:
    lake: Lake = pipeline["lake"]
    con = duckdb_connect(lake.root)
    for name in ("gold.forecast", "gold.replenishment_plan", "silver.demand"):
        spark_rows = lake.read(name).count()
        delta_rows = pa.table(
            QueryBuilder().register("t", DeltaTable(lake.path(name))).execute("SELECT count(*) AS n FROM t")
        ).to_pylist()[0]["n"]
        duckdb_rows = con.sql(f"SELECT count(*) FROM {name.replace('.', '_')}").fetchone()[0]
        assert spark_rows == delta_rows == duckdb_rows > 0, name


def test_duckdb_without_the_delta_extension_reads_the_same_snapshot(pipeline: dict, monkeypatch) -> None:
    """The fallback of `duckdb_connect` (Parquet files listed by delta-rs) answers like `delta_scan`."""
    from replenish.io import bi

    lake: Lake = pipeline["lake"]
    names = ("gold.forecast", "silver.demand")
    query = "SELECT count(*), sum(yhat) FROM gold_forecast"
    with_extension = duckdb_connect(lake.root, tables=names)
    monkeypatch.setattr(bi, "delta_extension_path", lambda: None)
    without = duckdb_connect(lake.root, tables=names)
    assert (
        "delta_scan"
        not in without.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'gold_forecast'").fetchone()[0]
    )
    assert without.sql(query).fetchone() == pytest.approx(with_extension.sql(query).fetchone())
    assert without.sql("SELECT count(*) FROM silver_demand").fetchone()[0] == lake.read("silver.demand").count()


def test_forecasts_cover_every_series_with_ordered_intervals(pipeline: dict) -> None:
    lake: Lake = pipeline["lake"]
    forecast = lake.read("gold.forecast")
    series = lake.read("silver.series_profile").select("sku", "location").distinct().count()
    assert forecast.select("sku", "location").distinct().count() == series
    broken = forecast.where(
        "NOT (yhat_lo_95 <= yhat_lo_80 AND yhat_lo_80 <= yhat AND yhat <= yhat_hi_80 AND yhat_hi_80 <= yhat_hi_95)"
    )
    assert broken.count() == 0
    assert lake.read("gold.replenishment_plan").select("sku", "location").distinct().count() == series


def test_reingesting_the_same_files_adds_nothing(pipeline: dict, spark, capsys) -> None:
    lake: Lake = pipeline["lake"]
    before = {name: lake.version(name) for name in ("bronze.sales", "quarantine.sales")}
    assert ingest.main(["--all", str(pipeline["raw"]), "--lake", lake.root], spark=spark) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    entities = summary["entities"]
    assert {"sales", "products", "locations", "interactions", "suppliers", "inventory"} <= set(entities)
    # Every entity read its rows again and added none of them, to bronze or to the quarantine.
    assert {e: (r["rows_read"] > 0, r["added_to_bronze"], r["added_to_quarantine"]) for e, r in entities.items()} == {
        e: (True, 0, 0) for e in entities
    }
    assert all(r["already_in_bronze"] == r["good"] for r in entities.values())
    assert {name: lake.version(name) for name in before} == before


def test_the_results_notebook_runs_against_the_lake(pipeline: dict, spark, monkeypatch) -> None:
    source = (NOTEBOOKS / "02_explore_results.py").read_text()
    cells = [cell for cell in source.split("# COMMAND ----------") if "# MAGIC %pip" not in cell]
    monkeypatch.chdir(pipeline["root"])  # the notebook's local default is ./lakehouse
    namespace: dict = {"__name__": "notebook"}
    for cell in cells:
        exec(compile(cell, "02_explore_results.py", "exec"), namespace)
    # The notebook's accuracy table is the latest run's backtest averaged by demand class and model.
    lake: Lake = pipeline["lake"]
    backtest = lake.read("gold.forecast_backtest").toPandas()
    latest = backtest[backtest["run_id"] == backtest["run_id"].max()]
    profile = lake.read("silver.series_profile").toPandas()[["freq", "sku", "location", "demand_class"]]
    joined = latest.merge(profile, on=["freq", "sku", "location"])
    expected = joined.groupby(["demand_class", "model"]).agg(
        series=("sku", lambda s: len(set(zip(s, joined.loc[s.index, "location"], strict=True)))),
        mase=("mase", "mean"),
    )
    accuracy = namespace["accuracy"].toPandas().set_index(["demand_class", "model"]).sort_index()
    assert list(accuracy.columns) == ["series", "mase", "wape", "coverage_80"]
    assert accuracy.index.tolist() == expected.sort_index().index.tolist()
    assert accuracy["series"].tolist() == expected.sort_index()["series"].tolist()
    assert accuracy["mase"].to_numpy() == pytest.approx(expected.sort_index()["mase"].round(3).to_numpy(), abs=1e-3)
    # One series' forecast: every model of the latest run over the whole horizon, intervals ordered.
    future = namespace["future"].toPandas()
    forecast = lake.read("gold.forecast").toPandas()
    series = namespace["series"]
    of_series = forecast[
        (forecast["run_id"] == forecast["run_id"].max())
        & (forecast["sku"] == series.sku)
        & (forecast["location"] == series.location)
    ]
    assert len(future) == len(of_series) > 0
    assert (future["yhat_lo_80"] <= future["yhat"]).all() and (future["yhat"] <= future["yhat_hi_80"]).all()


def test_run_all_passes_the_data_quality_gate_before_forecast_and_inventory(pipeline: dict) -> None:
    checks = pipeline["lake"].read("gold.data_quality").collect()
    assert {(row["stage"], row["table_name"]) for row in checks} == {
        ("forecast", "bronze.sales"),
        ("inventory", "gold.forecast"),
        ("inventory", "bronze.inventory"),
    }
    assert {row["status"] for row in checks} == {"pass"}, [row["message"] for row in checks if row["status"] != "pass"]
