"""The forecast job's progress line: series done of total, counted by its Spark tasks."""

from __future__ import annotations

import logging

import pytest

from replenish.io.lake import Lake
from replenish_jobs import forecast

from .test_forecast import SETTINGS, _write_inputs

pytestmark = pytest.mark.spark


def test_the_forecast_job_logs_series_done_of_total(spark, tmp_path, caplog) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    panel = _write_inputs(spark, lake)
    n_series = panel.groupby(["sku", "location"]).ngroups
    caplog.set_level(logging.INFO, logger="replenish.progress")
    argv = ["--lake", lake.root, "--run-id", "progress-1", *SETTINGS, "--set", "tracking.enabled=false"]
    assert forecast.main(argv, spark=spark) == 0
    lines = [record.getMessage() for record in caplog.records if record.name == "replenish.progress"]
    assert lines, "no progress line was logged"
    assert lines[-1].startswith(f"forecast: {n_series}/{n_series} series (100%), ")
