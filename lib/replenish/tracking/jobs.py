"""The job harness's MLflow hook: one run per job run, nested under `run-all`'s run.

`track_job` wraps a job's `run(ctx, args)`: it starts an MLflow run (a child run when one is active,
so `run-all`'s stages nest under it), logs the profile, config hash, settings and arguments as
params, runs the job, then logs the numbers of its result dict as metrics plus what the job's tables
say (`COLLECTORS`: backtest measures per model and class for `forecast`, the selection summary for
`inventory`, the HTML report and its figures for `report`). The MLflow run id is put in
`ctx.extra["mlflow_run_id"]` before the job runs, so it can stamp its rows.

A failing job ends its MLflow run as FAILED. Logging after the job has written its tables only warns
on error: the tables are the product, the tracking is a record of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from replenish import config
from replenish.errors import ConfigError
from replenish.tracking.flatten import flatten_metrics, flatten_params
from replenish.tracking.metrics import backtest_metric_key, backtest_summary, report_images, selection_summary
from replenish.tracking.settings import TrackingConfig, local_store_uri, sqlite_artifact_location

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

log = logging.getLogger(__name__)


class JobContext(Protocol):
    """What tracking reads of a job run: the harness's context (`replenish_jobs.harness.JobContext`)
    has it, and so can a notebook's own object; the library never imports the harness."""

    settings: dict[str, Any]
    lake: Any  # replenish.io.lake.Lake
    run_id: str
    run_date: dt.date
    config_hash: str
    extra: dict[str, Any]


Context = TypeVar("Context", bound=JobContext)
Collector = Callable[["JobContext", dict[str, Any], Path], dict[str, float]]
"""`(ctx, result, artifact folder) -> extra metrics`; files written to the folder are logged as artifacts."""

COMMON_ARGUMENTS = frozenset({"lake", "profile", "overrides", "conf_dir", "run_id", "run_date", "verbose"})


def tracking_config(settings: dict[str, Any]) -> TrackingConfig:
    """The `tracking:` section of resolved settings (all defaults when absent)."""
    return config.section(settings, "tracking", TrackingConfig)


def configure(cfg: TrackingConfig) -> str:
    """Point MLflow at the store and experiment of `cfg`; return the tracking URI in use.

    Without `cfg.uri`, an `MLFLOW_TRACKING_URI` set in the environment wins over the local store.
    """
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if cfg.uri:
        mlflow.set_tracking_uri(cfg.uri)
    elif not is_tracking_uri_set():
        mlflow.set_tracking_uri(local_store_uri())
    uri = mlflow.get_tracking_uri()
    if cfg.registry_uri:
        mlflow.set_registry_uri(cfg.registry_uri)
    if cfg.experiment:
        client = mlflow.MlflowClient()
        if client.get_experiment_by_name(cfg.experiment) is None:
            location = cfg.artifact_location or sqlite_artifact_location(uri)
            try:
                client.create_experiment(cfg.experiment, artifact_location=location)
            except mlflow.exceptions.MlflowException:
                if client.get_experiment_by_name(cfg.experiment) is None:  # not a concurrent creation
                    raise
        mlflow.set_experiment(cfg.experiment)
    return uri


def job_params(name: str, ctx: JobContext, args: argparse.Namespace) -> dict[str, str]:
    """Params of a job run: job, profile, config hash, lake, every setting, and the job's own arguments."""
    params = {
        "job": name,
        "profile": str(ctx.settings.get("profile", "")),
        "config_hash": ctx.config_hash,
        "lake": str(ctx.lake.root),
        "run_date": ctx.run_date.isoformat(),
    }
    settings = {key: value for key, value in ctx.settings.items() if key not in ("profile", "lake")}
    params.update(flatten_params(settings))
    own = {key: value for key, value in vars(args).items() if key not in COMMON_ARGUMENTS}
    params.update(flatten_params(own, prefix="arg."))
    params["arg.overrides"] = json.dumps(list(getattr(args, "overrides", []) or []))
    return params


@contextmanager
def job_run(cfg: TrackingConfig, name: str, ctx: JobContext, args: argparse.Namespace) -> Iterator[Any]:
    """An active MLflow run for one job run (nested when a run is active): yields `mlflow.ActiveRun`."""
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError(
            f"MLflow is not importable ({exc}): install mlflow or run with --set tracking.enabled=false"
        ) from exc

    parent = mlflow.active_run()
    try:
        if parent is None:
            configure(cfg)
        active = mlflow.start_run(
            run_name=f"{name} {ctx.run_id}",
            nested=parent is not None,
            tags={"replenish.job": name, "replenish.run_id": ctx.run_id, "replenish.lake": str(ctx.lake.root)},
        )
    except Exception as exc:
        raise ConfigError(
            f"MLflow tracking at {cfg.uri or mlflow.get_tracking_uri()} failed to start a run: {exc}; "
            "fix tracking.uri or run with --set tracking.enabled=false"
        ) from exc
    with active:
        mlflow.log_params(job_params(name, ctx, args))
        yield active


def log_result(name: str, ctx: JobContext, result: dict[str, Any], seconds: float) -> None:
    """Log a finished job's numbers, Delta versions, collected metrics and artifacts to the active run."""
    import mlflow
    from mlflow.entities import Metric

    run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    scalars, stepped = flatten_metrics(result)
    scalars["seconds"] = round(seconds, 3)
    tags = {
        f"delta_version.{table}": str(version)
        for key in ("input_versions", "versions")
        for table, version in (result.get(key) or {}).items()
        if isinstance(result.get(key), dict)
    }
    with tempfile.TemporaryDirectory(prefix=f"replenish-{name}-") as folder:
        out = Path(folder)
        (out / "result.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        collector = COLLECTORS.get(name)
        if collector is not None:
            scalars.update(collector(ctx, result, out))
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0) for key, value in scalars.items()]
        metrics += [
            Metric(key, value, now, step) for key, values in stepped.items() for step, value in enumerate(values)
        ]
        client = mlflow.MlflowClient()
        client.log_batch(run_id, metrics=metrics)
        if tags:
            mlflow.set_tags(tags)
        mlflow.log_artifacts(folder)


def track_job(
    name: str, ctx: Context, args: argparse.Namespace, run: Callable[[Context, argparse.Namespace], dict[str, Any]]
) -> dict[str, Any]:
    """Run `run(ctx, args)` inside an MLflow run when `tracking.enabled`; the result gains `mlflow_run_id`."""
    cfg = tracking_config(ctx.settings)
    if not cfg.enabled:
        return run(ctx, args)
    with job_run(cfg, name, ctx, args) as active:
        ctx.extra["mlflow_run_id"] = active.info.run_id
        started = time.monotonic()
        result = run(ctx, args)
        try:
            log_result(name, ctx, result, time.monotonic() - started)
        except Exception as exc:  # the tables are written; a tracking hiccup must not fail the night
            log.warning("MLflow: could not log the results of %s (run %s): %s", name, active.info.run_id, exc)
    return {**result, "mlflow_run_id": active.info.run_id}


def _forecast(ctx: JobContext, result: dict[str, Any], out: Path) -> dict[str, float]:
    from pyspark.sql import functions as F

    if not ctx.lake.exists("gold.forecast_backtest"):
        return {}
    freq = result.get("freq")
    backtest = ctx.lake.read("gold.forecast_backtest").where(
        (F.col("run_id") == ctx.run_id) & (F.col("freq") == F.lit(freq))
    )
    profile = None
    if ctx.lake.exists("silver.series_profile"):
        profile = ctx.lake.read("silver.series_profile").where(F.col("freq") == F.lit(freq))
    rows: pd.DataFrame = backtest_summary(backtest, profile).toPandas()
    rows.to_csv(out / "backtest_summary.csv", index=False)
    return {
        backtest_metric_key(row.model, row.grouping, row["class"], row.metric): float(row.value)
        for _, row in rows.iterrows()
    }


def _inventory(ctx: JobContext, result: dict[str, Any], out: Path) -> dict[str, float]:
    from pyspark.sql import functions as F

    if not ctx.lake.exists("gold.model_selection"):
        return {}
    selection = ctx.lake.read("gold.model_selection").where(F.col("run_id") == ctx.run_id)
    safety = None
    if ctx.lake.exists("gold.safety_stock"):
        safety = ctx.lake.read("gold.safety_stock").where(F.col("run_id") == ctx.run_id)
    summary: pd.DataFrame = selection_summary(selection, safety).toPandas()
    summary.to_csv(out / "selection_summary.csv", index=False)
    per_model = summary.groupby("selected_model")["series"].sum()
    return {f"selection/{model}/series": float(count) for model, count in per_model.items()}


def _report(ctx: JobContext, result: dict[str, Any], out: Path) -> dict[str, float]:
    report = Path(str(result.get("out", "")))
    if not report.is_file():
        return {}
    text = report.read_text(encoding="utf-8")
    (out / "report.html").write_text(text, encoding="utf-8")
    figures = out / "figures"
    figures.mkdir()
    images = report_images(text)
    for file_name, payload in images.items():
        (figures / file_name).write_bytes(payload)
    return {"report/figures": float(len(images))}


COLLECTORS: dict[str, Collector] = {
    "forecast": _forecast,
    "forecast-arima": _forecast,
    "inventory": _inventory,
    "report": _report,
}
"""Per job name, what is read back from its tables and files after it ran."""
