"""The `tracking:` settings: where job runs are logged to MLflow, and whether they are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCAL_STORE = "mlruns"
"""Folder, relative to the working directory, of the default local store (`make clean` removes it)."""


@dataclass(frozen=True)
class TrackingConfig:
    """Resolved `tracking:` section.

    Attributes:
        enabled: False: jobs log nothing to MLflow (`--set tracking.enabled=false`).
        uri: MLflow tracking URI (`databricks`, `http://host:5000`, `sqlite:///path/mlflow.db`). None:
            the `MLFLOW_TRACKING_URI` environment variable when set, else the local SQLite store
            `./mlruns/mlflow.db` (SQLite is MLflow 3's default backend; the file store is legacy).
        registry_uri: model registry URI; None: the tracking URI (on Databricks with Unity Catalog:
            `databricks-uc`, with three-level model names through `model_prefix`).
        experiment: experiment name (on Databricks a workspace path such as `/Shared/replenish`);
            None: MLflow's active or default experiment (a notebook's own experiment on Databricks).
        artifact_location: where a new experiment keeps artifacts; None: next to a SQLite store
            (`<store folder>/artifacts`), else the server's default.
        model_prefix: prepended to registered model names (`main.replenish.` for Unity Catalog).
    """

    enabled: bool = True
    uri: str | None = None
    registry_uri: str | None = None
    experiment: str | None = "replenish"
    artifact_location: str | None = None
    model_prefix: str = ""

    def registered_name(self, name: str) -> str:
        """The registry name of model `name` (`lstm` -> `main.replenish.lstm` with a UC prefix)."""
        return f"{self.model_prefix}{name}"


def local_store_uri(folder: str | Path = LOCAL_STORE) -> str:
    """The SQLite tracking URI of a store in `folder` (created), as an absolute path."""
    path = Path(folder).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


def sqlite_artifact_location(uri: str) -> str | None:
    """`<folder of the database>/artifacts` as a file URI for a `sqlite:///` URI, else None."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    database = Path(uri[len(prefix) :]).resolve()
    return (database.parent / "artifacts").as_uri()
