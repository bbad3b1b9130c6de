"""MLflow tracking of the jobs: runs read back through `MlflowClient`, checked against the gold tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from replenish.io.lake import Lake
from replenish_jobs import inventory

pytestmark = [pytest.mark.spark, pytest.mark.slow]

STAGES = ["ingest", "features", "recommend", "forecast", "inventory", "simulate", "report"]
FAILING_EXPERIMENT = "replenish-tracking-failures"


@pytest.fixture(scope="module")
def tracked(nightly) -> dict:
    """The MLflow runs of the session's shared run-all (tests/conftest.py), by job."""
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(nightly.experiment)
    runs = client.search_runs([experiment.experiment_id], f"tags.`replenish.run_id` = '{nightly.run_id}'")
    by_job = {run.data.tags["replenish.job"]: run for run in runs}
    return {"lake": nightly.lake, "client": client, "runs": by_job, "root": nightly.root, "run_id": nightly.run_id}


def _of_run(tracked: dict, name: str):
    lake: Lake = tracked["lake"]
    return lake.read(name).where(F.col("run_id") == tracked["run_id"])


def test_run_all_is_one_parent_run_with_a_nested_run_per_stage(tracked: dict) -> None:
    runs = tracked["runs"]
    assert set(runs) == {"run-all", *STAGES}
    parent = runs["run-all"]
    assert "mlflow.parentRunId" not in parent.data.tags
    assert {job: run.data.tags.get("mlflow.parentRunId") for job, run in runs.items() if job != "run-all"} == {
        job: parent.info.run_id for job in STAGES
    }
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert parent.data.metrics["stage_seconds/forecast"] > 0


def test_params_are_the_profile_config_hash_settings_and_arguments(tracked: dict) -> None:
    forecast = tracked["runs"]["forecast"].data.params
    registry_hash = _of_run(tracked, "gold.model_registry").select("config_hash").distinct().collect()
    assert [row.config_hash for row in registry_hash] == [forecast["config_hash"]]
    assert forecast["profile"] == "local"
    assert forecast["forecast.horizon"] == "14"
    assert forecast["forecast.arima.max_p"] == "2"
    assert forecast["arg.freq"] == "D"
    assert json.loads(forecast["arg.overrides"])[:1] == ["generate.skus=12"]


def test_forecast_metrics_equal_the_means_of_gold_forecast_backtest(tracked: dict) -> None:
    lake: Lake = tracked["lake"]
    metrics = tracked["runs"]["forecast"].data.metrics
    backtest = _of_run(tracked, "gold.forecast_backtest")
    overall = {
        row.model: row
        for row in backtest.groupBy("model")
        .agg(F.avg("mase").alias("mase"), F.avg("wape").alias("wape"), F.avg("coverage_80").alias("cov"))
        .collect()
    }
    assert overall, "the forecast wrote no backtest rows"
    for model, row in overall.items():
        assert metrics[f"backtest/{model}/mase"] == pytest.approx(row.mase)
        assert metrics[f"backtest/{model}/wape"] == pytest.approx(row.wape)
        assert metrics[f"backtest/{model}/coverage_80"] == pytest.approx(row.cov)
    profile = lake.read("silver.series_profile").select("freq", "sku", "location", "demand_class")
    by_class = (
        backtest.join(profile, ["freq", "sku", "location"])
        .groupBy("model", "demand_class")
        .agg(F.avg("bias").alias("bias"))
    )
    checked = 0
    for row in by_class.collect():
        if row.bias is not None:
            assert metrics[f"backtest/{row.model}/demand_class/{row.demand_class}/bias"] == pytest.approx(row.bias)
            checked += 1
    assert checked > 0


def test_model_registry_rows_carry_the_forecast_runs_mlflow_run_id(tracked: dict) -> None:
    registry = _of_run(tracked, "gold.model_registry")
    assert [row.mlflow_run_id for row in registry.select("mlflow_run_id").distinct().collect()] == [
        tracked["runs"]["forecast"].info.run_id
    ]


def test_simulate_logs_achieved_service_against_target_and_inventory_against_naive(tracked: dict) -> None:
    metrics = tracked["runs"]["simulate"].data.metrics
    simulation = _of_run(tracked, "gold.inventory_simulation").where(F.col("policy") == "optimized")
    pooled = simulation.agg(
        (1 - F.sum("stockout_cycles") / F.sum("cycles")).alias("cycle_service"),
        F.avg("service_target").alias("target"),
        F.sum("average_on_hand").alias("on_hand"),
    ).first()
    # the job reports service levels to 4 decimals
    assert metrics["classes/ALL/cycle_service_level"] == pytest.approx(pooled.cycle_service, abs=5e-5)
    assert metrics["classes/ALL/service_target"] == pytest.approx(pooled.target, abs=5e-5)
    assert metrics["classes/ALL/average_on_hand"] == pytest.approx(pooled.on_hand)
    assert "classes/ALL/naive_average_on_hand" in metrics or "classes/ALL/naive_cover_weeks" not in metrics
    for row in simulation.groupBy("abc_xyz").agg(F.avg("service_target").alias("target")).collect():
        assert metrics[f"classes/{row.abc_xyz}/service_target"] == pytest.approx(row.target, abs=5e-5)


def test_artifacts_are_the_report_its_figures_and_the_selection_summary(tracked: dict) -> None:
    client = tracked["client"]
    report_run = tracked["runs"]["report"].info.run_id
    names = {item.path for item in client.list_artifacts(report_run)}
    assert {"report.html", "figures", "result.json"} <= names
    figures = client.list_artifacts(report_run, "figures")
    assert len(figures) == tracked["runs"]["report"].data.metrics["report/figures"] > 0
    local = Path(client.download_artifacts(report_run, figures[0].path, str(tracked["root"])))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    inventory_run = tracked["runs"]["inventory"].info.run_id
    summary_path = client.download_artifacts(inventory_run, "selection_summary.csv", str(tracked["root"]))
    import pandas as pd

    summary = pd.read_csv(summary_path)
    selection = _of_run(tracked, "gold.model_selection")
    assert summary["series"].sum() == selection.count() > 0
    expected = {row.selected_model: row["count"] for row in selection.groupBy("selected_model").count().collect()}
    assert summary.groupby("selected_model")["series"].sum().to_dict() == expected


def test_a_failed_job_ends_its_run_failed_and_tracking_can_be_switched_off(spark, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    lake = ["--lake", str(tmp_path / "empty"), "--set", f"tracking.experiment={FAILING_EXPERIMENT}"]
    assert inventory.main([*lake, "--run-id", "failing-run"], spark=spark) == 2  # no forecast to plan from
    experiment = client.get_experiment_by_name(FAILING_EXPERIMENT)
    failed = client.search_runs([experiment.experiment_id], "tags.`replenish.run_id` = 'failing-run'")
    assert [run.info.status for run in failed] == ["FAILED"]

    off = [*lake, "--run-id", "untracked-run", "--set", "tracking.enabled=false"]
    assert inventory.main(off, spark=spark) == 2
    assert not client.search_runs([experiment.experiment_id], "tags.`replenish.run_id` = 'untracked-run'")
