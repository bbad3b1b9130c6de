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


def test_the_recommendations_notebook_publishes_and_shows_a_user_and_their_first_skus_neighbours(
    pipeline: dict, spark, tmp_path: Path
) -> None:
    """03_recommendations.py on a lake that holds only interactions (the nightly run's, copied): its own
    lake, so the nightly tables other tests read stay as they were."""
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    interactions = pipeline["lake"].read("bronze.interactions")
    lake.write(interactions, "bronze.interactions", mode="overwrite")
    run = run_notebook(
        NOTEBOOKS / "03_recommendations.py", spark=spark, parameters={"lake": lake.root, "run_date": "2025-03-01"}
    )
    run_id, result = run["run_id"], run["result"]
    evaluation = run["evaluation"].toPandas()
    assert set(evaluation["run_id"]) == {run_id} and set(evaluation["model"]) == {"als", "popularity"}
    chosen = evaluation[evaluation["chosen"]]
    assert len(chosen) == 1 and chosen["ndcg_at_k"].iat[0] == pytest.approx(result.metrics["als"]["ndcg_at_k"])
    assert str(result.metrics) in run.output
    # the user shown: their recommendations, best first, none of them a SKU they purchased
    user = run["user"].user_id
    shown = lake.read("gold.recommendations").where(F.col("user_id") == user).orderBy("rank").toPandas()
    assert list(shown["rank"]) == list(range(1, len(shown) + 1)) and len(shown) > 0
    bought = interactions.where((F.col("user_id") == user) & (F.col("event") == "purchase"))
    purchased = {row.sku for row in bought.collect()}
    assert purchased.isdisjoint(shown["sku"])
    # the neighbours of their first SKU: ranked, never the SKU itself, and its factors projected
    first = run["first_sku"]
    assert first == shown["sku"].iat[0]
    neighbours = lake.read("gold.similar_items").where(F.col("sku") == first).orderBy("rank").toPandas()
    assert len(neighbours) > 0 and first not in set(neighbours["similar_sku"])
    assert neighbours["similarity"].is_monotonic_decreasing
    assert lake.read("gold.item_factors").where(F.col("sku") == first).count() == 1


def test_the_lstm_notebook_trains_saves_and_forecasts_every_series_on_cpu(
    pipeline: dict, spark, tmp_path: Path
) -> None:
    """04_lstm_training.py outside Databricks: one CPU worker, a lake that holds only the nightly demand."""
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    demand = pipeline["lake"].read("silver.demand")
    lake.write(demand, "silver.demand", mode="overwrite")
    settings = "forecast.lstm.epochs=2 forecast.horizon=14 forecast.backtest.folds=2"
    run = run_notebook(
        NOTEBOOKS / "04_lstm_training.py", spark=spark, parameters={"lake": lake.root, "settings": settings}
    )
    result = run["result"]
    assert 1 <= result["epochs"] <= 2 and result["gpus"] in ([], None, 0)
    assert all(loss == loss for loss in result["loss"])  # finite: no NaN
    assert Path(run["model_path"]).is_dir()
    forecast = run["tables"]["gold.forecast"].toPandas()
    series = demand.where("freq = 'D'").select("sku", "location").distinct().count()
    assert set(forecast["model"]) == {"lstm"} and len(forecast) == 14 * series
    assert (forecast["yhat_lo_95"] <= forecast["yhat"]).all() and (forecast["yhat"] <= forecast["yhat_hi_95"]).all()
    folds = run["tables"]["gold.forecast_backtest"].select("fold").distinct().count()
    assert folds == 2
    assert lake.read("silver.lstm_windows").count() > 0
