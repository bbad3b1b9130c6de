"""Every notebook of notebooks/, run cell by cell on local Spark, and what each one shows.

Wiring a new notebook is one test: `run_notebook(NOTEBOOKS / "<name>.py", spark=spark, parameters={...})`
and assertions on the returned namespace, printed output or SQL cells.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from replenish.io.lake import Lake

from .runner import NotebookError, parse_cells, run_notebook

pytestmark = [pytest.mark.spark, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def pipeline(nightly) -> dict:
    """The session's nightly run (tests/conftest.py): 01_nightly_pipeline.py run on generated files."""
    return {"root": nightly.root, "lake": nightly.lake, "experiment": nightly.experiment, "run": nightly.notebook}


def test_the_runner_reads_cells_and_names_the_cell_that_fails(tmp_path: Path, spark) -> None:
    source = "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\n# MAGIC %md\n# MAGIC # Title\n"
    source += "\n# COMMAND ----------\n\n# MAGIC %sql\n# MAGIC SELECT 41 + 1 AS answer\n"
    source += "\n# COMMAND ----------\n\nprint(_sqldf.first().answer + x)\n\n# COMMAND ----------\n\n1 / 0\n"
    assert [cell.kind for cell in parse_cells(source)] == ["python", "md", "sql", "python", "python"]
    path = tmp_path / "broken.py"
    path.write_text(source)
    with pytest.raises(NotebookError, match=r"broken.py, cell 5 \(python: '1 / 0'\) failed: ZeroDivisionError"):
        run_notebook(path, spark=spark)
    path.write_text(source.rsplit("# COMMAND", 1)[0])
    assert run_notebook(path, spark=spark).output.strip().splitlines()[-1] == "43"
    with pytest.raises(NotebookError, match="not a Databricks source notebook"):
        parse_cells("x = 1\n")


def test_the_pipeline_notebook_writes_every_stage_and_shows_the_tables(pipeline: dict) -> None:
    run, lake = pipeline["run"], pipeline["lake"]
    shown = {row["table"]: row for row in run["tables"]}
    for name in (
        "bronze.sales",
        "silver.demand",
        "gold.forecast",
        "gold.replenishment_plan",
        "gold.inventory_simulation",
    ):
        assert shown[name]["rows"] == lake.read(name).count() > 0
        assert name in run.output
    assert lake.read("gold.forecast").agg(F.max("step")).first()[0] == 14  # the horizon widget reached the job
    assert lake.read("gold.forecast_backtest").agg(F.max("fold")).first()[0] == 3  # and the settings widget
    assert {str(row.run_date) for row in lake.read("gold.forecast").select("run_date").distinct().collect()} == {
        "2025-03-01"  # and the run date widget
    }
    assert Path(lake.root, "report.html").stat().st_size > 0
    assert [cell.kind for cell in run.cells][:2] == ["md", "pip"]


def test_the_results_notebook_shows_accuracy_a_series_and_the_plan(pipeline: dict, spark) -> None:
    lake: Lake = pipeline["lake"]
    run = run_notebook(NOTEBOOKS / "02_explore_results.py", spark=spark, parameters={"lake": lake.root})
    accuracy = run["accuracy"].toPandas()
    backtest = lake.read("gold.forecast_backtest")
    expected = {
        row.model: row.series
        for row in backtest.groupBy("model").agg(F.countDistinct("sku", "location").alias("series")).collect()
    }
    assert accuracy.groupby("model")["series"].sum().to_dict() == expected
    future, series = run["future"], run["series"]
    models = lake.read("gold.forecast").where(f"sku = '{series.sku}' AND location = '{series.location}'")
    assert future.count() == 14 * models.select("model").distinct().count() > 0
    assert run["history"].count() > 0
    assert "order_quantity" in run.output


def test_the_bi_notebook_answers_in_sql_cells_and_duckdb_agrees(pipeline: dict, spark) -> None:
    lake: Lake = pipeline["lake"]
    run = run_notebook(NOTEBOOKS / "05_bi_queries.py", spark=spark, parameters={"lake": lake.root})
    assert "gold_replenishment_plan" in run["views"]
    sql = [cell.result.toPandas() for cell in run.cells if cell.kind == "sql"]
    assert len(sql) == 3
    plan = lake.read("gold.replenishment_plan")
    assert len(sql[0]) == min(20, plan.where("order_quantity > 0").count())
    assert sql[1]["series"].sum() == plan.count()
    simulation = lake.read("gold.inventory_simulation").where("policy = 'optimized'")
    assert sql[2]["series"].sum() == simulation.count()
    assert run["engines_agree"] is True
    assert "Spark and DuckDB agree: True" in run.output


def test_the_tracked_runs_notebook_shows_each_nights_accuracy_and_service(pipeline: dict, spark) -> None:
    lake: Lake = pipeline["lake"]
    run = run_notebook(NOTEBOOKS / "06_tracked_runs.py", spark=spark, parameters={"experiment": pipeline["experiment"]})
    jobs = set(run["runs"]["tags.replenish.job"])
    assert {"ingest", "features", "forecast", "inventory", "simulate", "report"} <= jobs
    accuracy = run["accuracy"]
    assert len(accuracy) == 1
    backtest = lake.read("gold.forecast_backtest").groupBy("model").agg(F.avg("mase").alias("mase")).collect()
    for row in backtest:
        assert accuracy[row.model].iat[0] == pytest.approx(row.mase)
    simulation = lake.read("gold.inventory_simulation").where("policy = 'optimized'")
    target = simulation.agg(F.avg("service_target")).first()[0]
    assert run["service"]["target"].iat[0] == pytest.approx(target, abs=5e-5)  # the job reports 4 decimals
    assert accuracy["tags.replenish.run_id"].iat[0] in run.output
