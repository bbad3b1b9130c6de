"""Where runs go without a tracking URI: the SQLite store ./mlruns/mlflow.db, artifacts beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from replenish.tracking import TrackingConfig, configure


@pytest.fixture()
def no_tracking_uri(monkeypatch, tmp_path: Path):
    import mlflow

    previous = mlflow.get_tracking_uri()
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(None)  # forgets a process-wide URI
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    mlflow.set_tracking_uri(previous)


def test_the_default_store_is_sqlite_under_mlruns_with_artifacts_beside_it(no_tracking_uri: Path) -> None:
    import mlflow

    uri = configure(TrackingConfig(experiment="default-store"))
    assert uri == f"sqlite:///{no_tracking_uri.resolve() / 'mlruns' / 'mlflow.db'}"
    assert (no_tracking_uri / "mlruns" / "mlflow.db").is_file()
    experiment = mlflow.get_experiment_by_name("default-store")
    assert experiment.artifact_location == (no_tracking_uri.resolve() / "mlruns" / "artifacts").as_uri()


def test_a_configured_uri_wins_over_the_environment(no_tracking_uri: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{no_tracking_uri / 'env.db'}")
    chosen = f"sqlite:///{no_tracking_uri / 'chosen.db'}"
    assert configure(TrackingConfig(uri=chosen, experiment="chosen")) == chosen
    assert (no_tracking_uri / "chosen.db").is_file() and not (no_tracking_uri / "env.db").exists()
