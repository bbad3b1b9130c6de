"""Not a job: the LSTM steps two jobs run, `train-lstm` (train) and `forecast` (reuse or train, then forecast).

Kept beside the jobs because they read and write the lake through the job's context; the maths and the
Spark transforms they call are in `replenish.neural`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from replenish import config
from replenish.errors import ReplenishError
from replenish.features import FeaturesConfig
from replenish.forecast import ForecastConfig
from replenish.io.catalog import TABLES
from replenish_jobs.harness import JobContext

log = logging.getLogger(__name__)

FACTORS = "gold.item_factors"
INPUTS = ("silver.demand",)


def lake_folder(ctx: JobContext, *parts: str) -> str:
    """A folder under the lake root (absolute for a local lake, so executors find it from any cwd)."""
    root = ctx.lake.root if "://" in ctx.lake.root else os.path.abspath(ctx.lake.root)
    return "/".join([root.rstrip("/"), *parts])


def input_tables(ctx: JobContext, freq: str, horizon_periods: int, country: str | None) -> dict[str, Any]:
    """silver.demand, gold.item_factors (when the recommender wrote it) and the holiday calendar, with versions."""
    from pyspark.sql import functions as F

    from replenish.features.calendar import build_calendar

    names = [*INPUTS, *([FACTORS] if FACTORS in TABLES and ctx.lake.exists(FACTORS) else [])]
    versions = ctx.lake.versions(names)
    demand = ctx.lake.read("silver.demand", version=versions["silver.demand"])
    factors = None
    if FACTORS in versions:
        factors = ctx.lake.read(FACTORS, version=versions[FACTORS])
        if "projection" in factors.columns:
            factors = factors.select("sku", F.col("projection").cast("array<float>").alias("projection"))
            factors = factors.dropDuplicates(["sku"])
        else:
            log.warning("%s has no projection column: the LSTM trains without item factors", FACTORS)
            factors = None
    holidays = None
    if country:
        span = demand.where(F.col("freq") == freq).agg(F.min("date"), F.max("date")).first()
        if span[0] is not None:
            import datetime as dt

            end = span[1] + dt.timedelta(days=horizon_periods * {"D": 1, "W": 7, "M": 31, "Q": 92}[freq] + 31)
            holidays = build_calendar(ctx.spark, span[0], end, freq, country).select("date", "is_holiday")
    return {"demand": demand, "factors": factors, "holidays": holidays, "versions": versions}


def train_model(ctx: JobContext, lplan: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """Write silver.lstm_windows, train, save the model and its registry row; returns the training result."""
    from replenish.neural import pipeline

    started = time.monotonic()
    windows = pipeline.training_windows(inputs["demand"], lplan, factors=inputs["factors"], holidays=inputs["holidays"])
    written = ctx.lake.write_with_result(windows, "silver.lstm_windows", mode="overwrite_partitions")
    windows_seconds = time.monotonic() - started
    stored = ctx.lake.read("silver.lstm_windows", version=written.version).where(f"freq = '{lplan.freq}'")
    model_path = lake_folder(ctx, "models", "lstm", lplan.freq, ctx.run_id)
    result = pipeline.train_lstm(
        ctx.spark,
        stored,
        lplan,
        model_dir=model_path,
        work_dir=lake_folder(ctx, "_work", "lstm", lplan.freq, ctx.run_id),
        cache_dir=lake_folder(ctx, "_cache", "petastorm"),
    )
    versions = {**inputs["versions"], "silver.lstm_windows": written.version}
    params = {
        "model_path": model_path,
        "train_end": lplan.train_end.isoformat(),
        "cutoffs": [day.isoformat() for day in lplan.cutoffs],
        "epochs": result["epochs"],
        "loss": result["loss"],
        "val_loss": result["val_loss"],
        "loss_function": "pinball (quantiles 0.025, 0.1, 0.5, 0.9, 0.975), censored periods masked",
        "workers": result["workers"],
        "train_windows": result["train_windows"],
        "train_cut_windows": result["train_cut_windows"],
        "valid_windows": result["valid_windows"],
        "spec": result["spec"],
        "window_sampling": lplan.window_sampling,
        "item_factors": inputs["factors"] is not None,
        "loader": lplan.settings.loader,
        "stage_seconds": {
            "windows": round(windows_seconds, 1),
            "training": round(time.monotonic() - started - windows_seconds, 1),
            "fit": result["seconds"],
        },
    }
    row = pipeline.registry_row(
        ctx.spark,
        lplan,
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        status="trained",
        params=params,
        fit_seconds=time.monotonic() - started,
        input_versions=versions,
        config_hash=ctx.config_hash,
        mlflow_run_id=ctx.extra.get("mlflow_run_id"),
    )
    ctx.lake.write(row, "gold.model_registry", mode="append")
    return {**params, "samples_per_second": result["samples_per_second"], "input_versions": versions}


def resolve_plan(ctx: JobContext, *, freq: str | None, horizon: int | None, model: str | None = None) -> Any:
    cfg = config.section(ctx.settings, "forecast", ForecastConfig)
    features = config.section(ctx.settings, "features", FeaturesConfig)
    chosen = freq or features.freq
    return cfg, features, cfg.plan(chosen, model=model, horizon=horizon, run_date=ctx.run_date.isoformat())


def lstm_forecast(ctx: JobContext, plan: Any, *, settings: Any, country: str | None) -> dict[str, Any]:
    """`forecast --model lstm` (or the LSTM candidate of `auto`): reuse or train the model, write its rows.

    Reuses the newest model of `gold.model_registry` trained for this window shape on periods before
    the run's first backtest cutoff; trains one otherwise. Writes model='lstm' rows to gold.forecast,
    gold.backtest_forecast, gold.forecast_backtest and one gold.model_registry row (status `ok`).
    """
    from pyspark.sql import functions as F

    from replenish.neural import pipeline

    started = time.monotonic()
    inputs = input_tables(ctx, plan.freq, plan.horizon, country)
    lplan = pipeline.lstm_plan(inputs["demand"], plan, settings)
    model = None
    if ctx.lake.exists("gold.model_registry"):
        model = pipeline.latest_lstm_model(ctx.lake.read("gold.model_registry"), lplan)
    trained = model is None
    if model is None:
        model = train_model(ctx, lplan, inputs)
    else:
        print(f"lstm: reusing the model at {model['model_path']} (trained to {model['train_end']})", flush=True)
    model_seconds = time.monotonic() - started
    tables = pipeline.lstm_forecast_tables(
        inputs["demand"],
        lplan,
        model_path=model["model_path"],
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        factors=inputs["factors"],
        holidays=inputs["holidays"],
    )
    this_run = (F.col("run_id") == ctx.run_id) & (F.col("model") == pipeline.MODEL_NAME)
    written: dict[str, Any] = {
        name: ctx.lake.write_with_result(tables[name], name, mode="append")
        for name in ("gold.forecast", "gold.backtest_forecast")
        if name in tables
    }
    mase = None
    if "gold.backtest_forecast" in written:
        stored = ctx.lake.read("gold.backtest_forecast", version=written["gold.backtest_forecast"].version)
        scores = pipeline.lstm_backtest_scores(stored.where(this_run))
        written["gold.forecast_backtest"] = ctx.lake.write_with_result(scores, "gold.forecast_backtest", mode="append")
        scored = ctx.lake.read("gold.forecast_backtest", version=written["gold.forecast_backtest"].version)
        mase = scored.where(this_run).agg(F.avg("mase")).first()[0]
    row = pipeline.registry_row(
        ctx.spark,
        lplan,
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        status="ok",
        params={**{k: v for k, v in model.items() if k != "input_versions"}, "trained_in_run": trained},
        fit_seconds=time.monotonic() - started,
        input_versions=model.get("input_versions", inputs["versions"]),
        config_hash=ctx.config_hash,
        reason="trained for this run" if trained else "reused the latest trained model",
        mlflow_run_id=ctx.extra.get("mlflow_run_id"),
    )
    ctx.lake.write(row, "gold.model_registry", mode="append")
    return {
        "model_path": model["model_path"],
        "trained": trained,
        "epochs": model["epochs"],
        "loss": model["loss"],
        "val_loss": model["val_loss"],
        "backtest_mase": None if mase is None else round(mase, 3),
        "rows": {name: result.rows_written for name, result in written.items()},
        "stage_seconds": {
            "model": round(model_seconds, 1),  # reuse, or windows and training
            **({"windows": model["stage_seconds"]["windows"]} if trained and "stage_seconds" in model else {}),
            "forecast_and_backtest": round(time.monotonic() - started - model_seconds, 1),
        },
    }


def lstm_candidate(ctx: JobContext, plan: Any, *, settings: Any, country: str | None) -> dict[str, Any]:
    """The LSTM as a candidate of `forecast --model auto`: skipped with a warning when the data cannot train it."""
    try:
        return lstm_forecast(ctx, plan, settings=settings, country=country)
    except ReplenishError as exc:  # untrainable data or a failed training: the other candidates stand
        log.warning("LSTM candidate skipped: %s", exc)
        return {"skipped": str(exc)}
