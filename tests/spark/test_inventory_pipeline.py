"""inventory → simulate → report as jobs on a tiny lake, and the BI queries of docs/bi.md on both engines.

The lake holds six daily series (Poisson demand, one of them intermittent) with two forecast runs of
two simple models and their rolling-origin backtests (3 folds of 28 days), written the way the forecast
stage writes them.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake

from replenish.ingest.schemas import SCHEMAS
from replenish.inventory.schemas import (
    FORECAST_ACCURACY_SCHEMA,
    INVENTORY_SIMULATION_SCHEMA,
    MODEL_SELECTION_SCHEMA,
    REPLENISHMENT_PLAN_SCHEMA,
    SAFETY_STOCK_SCHEMA,
)
from replenish.io.bi import duckdb_connect, spark_views
from replenish.io.catalog import table
from replenish.io.lake import Lake

pytestmark = pytest.mark.spark

INVENTORY_TABLES: tuple[str, ...] = (
    "gold.replenishment_plan",
    "gold.safety_stock",
    "gold.model_selection",
    "gold.forecast_accuracy",
    "gold.inventory_simulation",
)

LAST = dt.date(2024, 2, 28)
DAYS = 150
HORIZON = 28
FOLDS = 3
RATES = {"P1": 20.0, "P2": 8.0, "P3": 3.0, "P4": 0.25, "P5": 12.0, "P6": 5.0}
CLASSES = {"P1": "AX", "P2": "AY", "P3": "BY", "P4": "CZ", "P5": "AX", "P6": "BX"}
ROOT = Path(__file__).resolve().parents[2]
BI_DOCS = (ROOT / "README.md", ROOT / "docs" / "bi.md")


def _predict(history: np.ndarray, model: str, steps: int) -> np.ndarray:
    if model == "mean28":
        return np.full(steps, history[-28:].mean())
    return np.resize(history[-7:], steps)  # naive7: last week repeated


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    dates = [LAST - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    demand, forecast, backtest, metrics = [], [], [], []
    for sku, rate in RATES.items():
        y = rng.poisson(rate, DAYS).astype(float)
        demand += [("D", sku, "L1", d, v) for d, v in zip(dates, y, strict=True)]
        for model in ("mean28", "naive7"):
            spread = 1.2816 * np.sqrt(max(rate, 0.1))
            for run_id, run_date, bump in (("fr0", dt.date(2024, 2, 1), 999.0), ("fr1", LAST, 0.0)):
                predicted = _predict(y, model, HORIZON) + bump
                for step, value in enumerate(predicted, start=1):
                    day = LAST + dt.timedelta(days=step)
                    forecast.append(
                        (
                            run_id,
                            run_date,
                            "D",
                            sku,
                            "L1",
                            model,
                            day,
                            step,
                            value,
                            value - spread,
                            value + spread,
                            value - 2 * spread,
                            value + 2 * spread,
                        )
                    )
            for fold in range(1, FOLDS + 1):
                start = DAYS - HORIZON * (FOLDS - fold + 1)
                predicted = _predict(y[:start], model, HORIZON)
                actual = y[start : start + HORIZON]
                for step in range(HORIZON):
                    value = predicted[step]
                    backtest.append(
                        (
                            "fr1",
                            LAST,
                            "D",
                            sku,
                            "L1",
                            model,
                            fold,
                            dates[start],
                            dates[start + step],
                            step + 1,
                            actual[step],
                            value,
                            value - spread,
                            value + spread,
                            value - 2 * spread,
                            value + 2 * spread,
                        )
                    )
                error = actual - predicted
                wape = np.abs(error).sum() / max(actual.sum(), 1e-9)
                metrics.append(
                    (
                        "fr1",
                        LAST,
                        "D",
                        sku,
                        "L1",
                        model,
                        fold,
                        dates[start],
                        HORIZON,
                        float(np.abs(error).mean() / max(rate, 0.1)),
                        float(wape),
                        float(-error.sum() / max(actual.sum(), 1e-9)),
                        float(np.sqrt((error**2).mean())),
                        0.8,
                        0.95,
                    )
                )
    frames = {
        "silver.demand": pd.DataFrame(demand, columns=["freq", "sku", "location", "date", "demand"]),
        "gold.forecast": pd.DataFrame(forecast, columns=list(table("gold.forecast").column_names)),
        "gold.backtest_forecast": pd.DataFrame(
            backtest,
            columns=[
                "run_id",
                "run_date",
                "freq",
                "sku",
                "location",
                "model",
                "fold",
                "cutoff",
                "date",
                "step",
                "y",
                "yhat",
                "yhat_lo_80",
                "yhat_hi_80",
                "yhat_lo_95",
                "yhat_hi_95",
            ],
        ),
        "gold.forecast_backtest": pd.DataFrame(
            metrics,
            columns=[
                "run_id",
                "run_date",
                "freq",
                "sku",
                "location",
                "model",
                "fold",
                "cutoff",
                "horizon",
                "mase",
                "wape",
                "bias",
                "rmse",
                "coverage_80",
                "coverage_95",
            ],
        ),
        "silver.series_profile": pd.DataFrame(
            [
                (
                    "D",
                    sku,
                    "L1",
                    "cat-a" if i < 3 else "cat-b",
                    "intermittent" if sku == "P4" else "smooth",
                    CLASSES[sku],
                )
                for i, sku in enumerate(RATES)
            ],
            columns=["freq", "sku", "location", "category", "demand_class", "abc_xyz"],
        ),
        "bronze.suppliers": pd.DataFrame(
            [(sku, "L1", "S1", 5.0, 1.5, 0.0, 1.0, 40.0, 2.0) for sku in RATES if sku != "P6"],
            columns=list(SCHEMAS["suppliers"].names),
        ),
        "bronze.inventory": pd.DataFrame(
            [(sku, "L1", LAST, 10.0, 0.0, 0.0) for sku in RATES],
            columns=list(SCHEMAS["inventory"].names),
        ),
        "bronze.products": pd.DataFrame([(sku, "cat", 3.0) for sku in RATES], columns=["sku", "category", "unit_cost"]),
    }
    return frames


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory) -> dict:
    from replenish_jobs import inventory, report, simulate

    root = tmp_path_factory.mktemp("pipeline")
    lake = Lake(spark, str(root / "lakehouse"))
    for name, frame in _tables().items():
        # delta-rs writes the inputs directly: the same Delta tables, without a Spark job each.
        write_deltalake(lake.path(name), frame, mode="overwrite")
    common = [
        "--lake",
        lake.root,
        "--run-date",
        "2024-02-29",
        "--set",
        "inventory.simulation.min_class_series=1",
        "--set",
        "inventory.simulation.naive_cover_weeks=[1, 2, 4]",
    ]
    codes = {
        "inventory": inventory.main(["--run-id", "20240229T000000-inv", *common], spark=spark),
        "simulate": simulate.main(["--run-id", "20240229T000000-sim", *common], spark=spark),
        "report": report.main(["--out", str(root / "report.html"), "--samples", "2", *common], spark=spark),
    }
    return {"lake": lake, "codes": codes, "report": root / "report.html"}


def test_jobs_succeed_and_each_writes_its_own_run(pipeline) -> None:
    assert pipeline["codes"] == {"inventory": 0, "simulate": 0, "report": 0}
    lake = pipeline["lake"]

    def run_ids(name: str) -> set[str]:
        return {row["run_id"] for row in lake.read(name).select("run_id").distinct().collect()}

    for name in ("gold.model_selection", "gold.safety_stock", "gold.replenishment_plan", "gold.forecast_accuracy"):
        assert run_ids(name) == {"20240229T000000-inv"}, name
    assert run_ids("gold.inventory_simulation") == {"20240229T000000-sim"}
    # The report shows the inventory run just written, not an empty shell.
    assert "inventory run 20240229T000000-inv" in pipeline["report"].read_text()


def test_inventory_job_writes_the_documented_tables_from_the_latest_run(pipeline) -> None:
    lake = pipeline["lake"]
    schemas = {
        "gold.model_selection": MODEL_SELECTION_SCHEMA,
        "gold.safety_stock": SAFETY_STOCK_SCHEMA,
        "gold.replenishment_plan": REPLENISHMENT_PLAN_SCHEMA,
        "gold.forecast_accuracy": FORECAST_ACCURACY_SCHEMA,
    }
    for name, schema in schemas.items():
        assert lake.read(name).columns == schema.fieldNames(), name
    plan = lake.read("gold.replenishment_plan").toPandas()
    assert len(plan) == len(RATES)
    assert set(plan["forecast_run_id"]) == {"fr1"}  # the latest run, not fr0 with its +999
    assert plan["demand_per_period"].max() < 100
    assert plan.set_index("sku").loc["P6", "notes"].startswith("no supplier row")
    safety = lake.read("gold.safety_stock").toPandas().set_index("sku")
    assert safety.loc["P1", "distribution"] == "normal"
    assert (safety["error_std_source"] == "backtest").all()


def test_simulation_replays_both_policies(pipeline) -> None:
    simulation = pipeline["lake"].read("gold.inventory_simulation").toPandas()
    assert list(simulation.columns) == INVENTORY_SIMULATION_SCHEMA.fieldNames()
    assert len(simulation) == len(RATES) * 4  # optimized + three covers
    assert (simulation["holdout_start"] == LAST - dt.timedelta(days=2 * HORIZON - 1)).all()
    assert (simulation["periods"] == 2 * HORIZON).all()
    optimized = simulation[simulation["policy"] == "optimized"]
    assert optimized["fill_rate"].between(0.5, 1.0).all()
    naive = simulation[simulation["policy"] == "naive"].groupby("cover_weeks")["average_on_hand"].sum()
    assert naive.is_monotonic_increasing  # more cover, more stock


def test_report_is_self_contained(pipeline) -> None:
    text = pipeline["report"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count('src="data:image/png;base64,') >= 6  # 4 figures + 2 sample series
    for heading in (
        "Service level achieved vs target",
        "Inventory vs the naive policy",
        "Forecast accuracy",
        "Forecast vs actual",
        "Largest recommended orders",
    ):
        assert heading in text
    assert "http://" not in text and "https://" not in text


def bi_queries() -> list[tuple[str, str]]:
    """(title, SQL) of every ```sql block in README.md and docs/bi.md, titled by the heading above it."""
    queries = []
    for doc in BI_DOCS:
        title = ""
        for block in re.split(r"^(#+ .*)$", doc.read_text(), flags=re.MULTILINE):
            if block.startswith("#"):
                title = f"{doc.name}: {block.lstrip('# ').strip()}"
                continue
            found = re.findall(r"```sql\n(.*?)```", block, flags=re.DOTALL)
            queries += [(title if len(found) == 1 else f"{title} {i}", sql.strip()) for i, sql in enumerate(found)]
    return queries


def test_bi_doc_has_queries() -> None:
    titles = [title for title, _ in bi_queries()]
    assert len(titles) >= 7 and len(set(titles)) == len(titles)
    assert any(title.startswith("README.md") for title in titles)


@pytest.mark.parametrize(("title", "query"), bi_queries(), ids=[t for t, _ in bi_queries()])
def test_bi_queries_agree_on_duckdb_and_spark(spark, pipeline, title: str, query: str) -> None:
    lake = pipeline["lake"]
    connection = duckdb_connect(lake.root, tables=INVENTORY_TABLES)
    duck = connection.sql(query).df()
    spark_views(lake, INVENTORY_TABLES)
    sparky = spark.sql(query).toPandas()
    assert len(duck) > 0, title
    assert list(duck.columns) == list(sparky.columns)
    assert len(duck) == len(sparky)
    for column in duck.columns:
        left, right = duck[column].reset_index(drop=True), sparky[column].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
            assert left.astype(float).to_numpy() == pytest.approx(right.astype(float).to_numpy(), nan_ok=True)
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), column


def test_a_resubmitted_inventory_run_commits_nothing_new(pipeline, spark) -> None:
    """The same run id again (as after a driver died mid-run): every table already holds the run."""
    from replenish_jobs import inventory

    lake = pipeline["lake"]
    tables = [
        "gold.model_selection",
        "gold.safety_stock",
        "gold.replenishment_plan",
        "gold.forecast_accuracy",
        "gold.data_quality",
    ]
    before = lake.versions(tables)
    argv = ["--run-id", "20240229T000000-inv", "--lake", lake.root, "--run-date", "2024-02-29"]
    assert inventory.main(argv, spark=spark) == 0
    assert lake.versions(tables) == before
