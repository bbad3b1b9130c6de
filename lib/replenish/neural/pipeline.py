"""The LSTM's Spark orchestration: plan, training windows, barrier training, forecasts and backtest.

What a job or notebook calls (I/O stays with the caller):

1. `lstm_plan(demand, forecast_plan, settings)`: the frequency's window shape, the backtest cutoffs
   of the rolling-origin protocol the statistical models use (`forecast.backtest`), and the training
   end. The model is **trained once, on the periods before the first backtest cutoff**, and that
   model forecasts every fold and the future: no fold sees its own test window, and the backtest
   error is the error of the model that makes the forecast.
2. `training_windows(...)` → written by the caller as `silver.lstm_windows`.
3. `train_lstm(spark, windows, plan, ...)`: Petastorm (or Arrow) loaders, `BarrierTrainer` with
   `train.train_windows`, progress printed per epoch; returns per-epoch losses.
4. `lstm_forecast_tables(...)`: `gold.forecast`, `gold.backtest_forecast`, `gold.forecast_backtest`
   rows with `model = 'lstm'` (the four tables' schemas) and the run's `gold.model_registry` row.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from replenish.errors import ValidationError
from replenish.neural.settings import LstmSettings
from replenish.neural.windows import (
    TRAIN_CUT,
    TRAINED_SPLITS,
    WindowSpec,
    date_of,
    index_of,
    inference_windows,
    period_date,
)
from replenish.neural.windows import training_windows as _training_windows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from replenish.forecast.settings import ForecastPlan

log = logging.getLogger(__name__)
MODEL_NAME = "lstm"


@dataclass(frozen=True)
class LstmPlan:
    """One run of the LSTM at one frequency, resolved (see the module docstring).

    Attributes:
        window: the window shape (history, horizon = max(forecast, backtest horizon)).
        settings: `forecast.lstm`.
        horizon, backtest_horizon: periods forecast and backtested.
        season_length, train_periods: for the MASE scale of each fold (as the other models).
        last_date: the last period of the demand.
        cutoffs: the backtest origins, earliest first (fold 1 first).
        train_end: the last period the model trains on (the period before the first cutoff).
    """

    window: WindowSpec
    settings: LstmSettings
    horizon: int
    backtest_horizon: int
    season_length: int
    train_periods: int
    last_date: dt.date
    cutoffs: tuple[dt.date, ...] = field(default_factory=tuple)
    train_end: dt.date = dt.date(1970, 1, 1)

    @property
    def freq(self) -> str:
        return self.window.freq

    @property
    def window_sampling(self) -> dict[str, Any]:
        """How the training windows are drawn: recorded with a model, so one drawn otherwise is not reused."""
        return {
            "stride": self.settings.stride_for(self.freq),
            "max_origins": self.settings.max_origins,
            "min_history": self.settings.min_history,
            "short_history_share": self.settings.short_history_share,
            "seed": self.settings.seed,
        }


def lstm_plan(demand: DataFrame, plan: ForecastPlan, settings: LstmSettings) -> LstmPlan:
    """Resolve the run from `silver.demand` (one scalar, its last date, reaches the driver).

    Raises:
        ValidationError: no demand row of the frequency.
    """
    from pyspark.sql import functions as F

    row = demand.where(F.col("freq") == F.lit(plan.freq)).agg(F.max("date")).first()
    last = None if row is None else row[0]
    if last is None:
        raise ValidationError(f"silver.demand has no rows of frequency {plan.freq}")
    horizon = max(plan.horizon, plan.backtest_horizon if plan.folds else 1)
    window = WindowSpec(
        freq=plan.freq,
        history=settings.history_for(plan.freq),
        horizon=horizon,
        hash_buckets=settings.hash_buckets,
        projection_dim=settings.projection_dim,
    )
    last_idx = index_of(last, plan.freq)
    cutoffs = [
        last_idx + 1 - plan.backtest_horizon - (plan.folds - fold) * plan.backtest_step
        for fold in range(1, plan.folds + 1)
    ]
    first = min(cutoffs) if cutoffs else last_idx + 1
    return LstmPlan(
        window=window,
        settings=settings,
        horizon=plan.horizon,
        backtest_horizon=plan.backtest_horizon,
        season_length=plan.windows.season_length,
        train_periods=plan.windows.train_periods,
        last_date=last,
        cutoffs=tuple(date_of(c, plan.freq) for c in cutoffs),
        train_end=date_of(first - 1, plan.freq),
    )


def training_windows(
    demand: DataFrame, plan: LstmPlan, *, factors: DataFrame | None = None, holidays: DataFrame | None = None
) -> DataFrame:
    """The `silver.lstm_windows` rows of `plan` (train and valid splits; see `windows.training_windows`)."""
    return _training_windows(
        demand,
        plan.window,
        train_end=plan.train_end,
        stride=plan.settings.stride_for(plan.freq),
        max_origins=plan.settings.max_origins,
        min_history=plan.settings.min_history,
        short_history_share=plan.settings.short_history_share,
        seed=plan.settings.seed,
        factors=factors,
        holidays=holidays,
    )


def _file_uri(path: str) -> str:
    return path if "://" in path or path.startswith("file:") else "file://" + os.path.abspath(path)


class _ProgressPrinter(threading.Thread):
    """Prints the chief's per-epoch lines (progress.jsonl) while the barrier stage runs."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.done = threading.Event()
        self.offset = 0

    def poll(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path) as handle:
            handle.seek(self.offset)
            for line in handle:
                record = json.loads(line)
                losses = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if "loss" in k)
                print(f"lstm: epoch {record['epoch']}/{record['epochs']}: {losses}", flush=True)
            self.offset = handle.tell()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.poll()
        self.poll()


def train_lstm(
    spark: SparkSession,
    windows: DataFrame,
    plan: LstmPlan,
    *,
    model_dir: str,
    work_dir: str,
    cache_dir: str,
) -> dict[str, Any]:
    """Train the global model on `windows` (train/valid splits) in a barrier stage; the chief saves it.

    Args:
        windows: `silver.lstm_windows` rows of `plan.freq`.
        model_dir: the model's folder (versioned by the caller, e.g. by run id).
        work_dir: backups and step logs; training with the same work_dir resumes after a failure.
        cache_dir: parent folder of the Petastorm / Arrow materialization (under the lake).

    Returns:
        The chief's result (`train.train_windows`): loss and val_loss per epoch, epochs, steps,
        samples/s, the model path, plus the window counts.

    Raises:
        ValidationError: no training or no validation window (no series long enough).
    """
    from pyspark.sql import functions as F

    from replenish.neural.loader import ArrowLoader, PetastormLoader
    from replenish.neural.model import ModelSpec
    from replenish.neural.train import TrainJob, steps_for, train_windows
    from replenish.neural.trainer import BarrierTrainer

    settings = plan.settings
    counts = {row["split"]: row["count"] for row in windows.groupBy("split").count().collect()}
    trained = sum(counts.get(split, 0) for split in TRAINED_SPLITS)
    if not counts.get("train") or not counts.get("valid"):
        raise ValidationError(
            f"no {plan.freq} series is long enough for an LSTM window: one needs {settings.min_history} observed "
            f"periods before a {plan.window.horizon}-period target window ending by {plan.train_end} (the period "
            f"before the first backtest cutoff); windows found: {counts or 'none'}. Lower forecast.lstm.min_history "
            "or forecast.backtest.folds, or add history"
        )
    loader_cls: Any = PetastormLoader if settings.loader == "petastorm" else ArrowLoader
    if "://" not in work_dir:
        os.makedirs(work_dir, exist_ok=True)
    cache = _file_uri(cache_dir).rstrip("/")
    train = loader_cls.from_dataframe(
        windows.where(F.col("split").isin(*TRAINED_SPLITS)),
        cache_dir=cache if loader_cls is PetastormLoader else f"{cache}/train",
        row_group_bytes=settings.row_group_bytes,
        min_row_groups=2 * settings.workers,
        memory_cache_bytes=settings.memory_cache_bytes,
    )
    valid = loader_cls.from_dataframe(
        windows.where(F.col("split") == "valid"),
        cache_dir=cache if loader_cls is PetastormLoader else f"{cache}/valid",
        row_group_bytes=settings.row_group_bytes,
        memory_cache_bytes=settings.memory_cache_bytes,
    )
    spec = ModelSpec(
        history=plan.window.history,
        horizon=plan.window.horizon,
        hidden=settings.hidden,
        embedding_dim=settings.embedding_dim,
        hash_buckets=settings.hash_buckets,
        projection_dim=settings.projection_dim,
        season=plan.season_length,
        seasonal_base=settings.seasonal_base,
    )
    global_batch = settings.batch_size * settings.workers
    job = TrainJob(
        spec=spec,
        train=train,
        valid=valid,
        model_dir=model_dir,
        work_dir=work_dir,
        epochs=settings.epochs,
        steps_per_epoch=settings.steps_per_epoch
        or max(
            steps_for(trained, batch_size=settings.batch_size, workers=settings.workers),
            math.ceil(settings.min_steps / settings.epochs),
        ),
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        patience=settings.patience,
        seed=settings.seed,
        validation_steps=max(1, math.ceil(counts["valid"] / global_batch)),
    )
    print(
        f"lstm: training on {trained} windows ({counts.get(TRAIN_CUT, 0)} of them cut short; {counts['valid']} "
        f"validation), {settings.workers} worker(s), "
        f"{job.steps_per_epoch} steps x {settings.epochs} epochs at most",
        flush=True,
    )
    printer = _ProgressPrinter(os.path.join(work_dir, "progress.jsonl"))
    printer.start()
    try:
        result = BarrierTrainer(spark, num_workers=settings.workers, use_gpu=settings.use_gpu).run(train_windows, job)
    finally:
        printer.done.set()
        printer.join(timeout=5)
        for loader in (train, valid):
            if hasattr(loader, "delete"):
                loader.delete()
    return {
        **result,
        "train_windows": trained,
        "train_cut_windows": counts.get(TRAIN_CUT, 0),
        "valid_windows": counts["valid"],
        "spec": json.loads(spec.to_json()),
    }


def latest_lstm_model(registry: DataFrame, plan: LstmPlan) -> dict[str, Any] | None:
    """The params of the newest trained model usable for `plan` (same network, trained by `plan.train_end`).

    A model trained on periods after the first backtest cutoff would see the test windows, so it is
    not reused; neither is one of another window shape, another `seasonal_base` or windows drawn
    otherwise (`LstmPlan.window_sampling`; a model recorded without it predates the record): the
    next run trains. Reads at most 20 registry rows.
    """
    from pyspark.sql import functions as F

    rows = (
        registry.where(
            (F.col("model") == MODEL_NAME)
            & (F.col("freq") == plan.freq)
            & (F.col("status") == "trained")
            & (F.col("train_end") <= F.lit(plan.train_end))
        )
        .orderBy(F.col("run_id").desc())
        .select("params")
        .limit(20)
        .collect()
    )
    for row in rows:
        params = json.loads(row["params"])
        spec = params.get("spec", {})
        shaped = spec.get("history") == plan.window.history and spec.get("horizon", 0) >= plan.window.horizon
        shaped = shaped and bool(spec.get("seasonal_base", False)) == plan.settings.seasonal_base
        shaped = shaped and params.get("window_sampling") == plan.window_sampling
        if shaped and (os.path.exists(params["model_path"]) or "://" in params["model_path"]):
            return dict(params)
    return None


def registry_row(
    spark: SparkSession,
    plan: LstmPlan,
    *,
    run_id: str,
    run_date: dt.date,
    status: str,
    params: dict[str, Any],
    fit_seconds: float,
    input_versions: dict[str, int | None],
    config_hash: str,
    reason: str = "",
    mlflow_run_id: str | None = None,
) -> DataFrame:
    """The one `gold.model_registry` row of a global model (sku and location `*`)."""
    from pyspark.sql import functions as F

    from replenish.forecast.distributed import TABLE_COLUMNS

    values = {
        "run_id": F.lit(run_id),
        "run_date": F.lit(run_date).cast("date"),
        "freq": F.lit(plan.freq),
        "sku": F.lit("*"),
        "location": F.lit("*"),
        "model": F.lit(MODEL_NAME),
        "demand_class": F.lit(None).cast("string"),
        "params": F.lit(json.dumps(params, sort_keys=True, default=str)),
        "status": F.lit(status),
        "reason": F.lit(reason),
        "fit_seconds": F.lit(float(fit_seconds)).cast("double"),
        "train_start": F.lit(params.get("train_start")).cast("date"),
        "train_end": F.lit(plan.train_end).cast("date"),
        "n_obs": F.lit(int(params.get("train_windows", 0))).cast("long"),
        "input_versions": F.lit(json.dumps(input_versions, sort_keys=True)),
        "config_hash": F.lit(config_hash),
        "mlflow_run_id": F.lit(mlflow_run_id).cast("string"),
    }
    return spark.range(1).select(*[values[name].alias(name) for name in TABLE_COLUMNS["gold.model_registry"]])


def mase_scales(demand: DataFrame, plan: LstmPlan) -> DataFrame:
    """(sku, location, origin_idx, mase_scale): the fold's in-sample seasonal-naive MAE, as `backtest.mase_scale`.

    Over the `train_periods` before each cutoff, lag `season_length` when the window is longer than
    a season, else lag 1; censored periods count as missing; NULL when the scale is 0 or undefined.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from replenish.neural.windows import period_index

    m = plan.season_length
    series = Window.partitionBy("sku", "location").orderBy("idx")
    value = F.when(~F.coalesce(F.col("censored").cast("boolean"), F.lit(False)), F.col("demand").cast("double"))
    rows = (
        demand.where(F.col("freq") == F.lit(plan.freq))
        .select("sku", "location", period_index(F.col("date"), plan.freq).alias("idx"), value.alias("v"))
        .withColumn("d_season", F.abs(F.col("v") - F.lag("v", m).over(series)))
        .withColumn("d_one", F.abs(F.col("v") - F.lag("v", 1).over(series)))
    )
    cutoffs = rows.sparkSession.createDataFrame([(index_of(day, plan.freq),) for day in plan.cutoffs], "origin_idx int")
    joined = rows.join(
        F.broadcast(cutoffs),
        (rows["idx"] < cutoffs["origin_idx"]) & (rows["idx"] >= cutoffs["origin_idx"] - plan.train_periods),
    )
    scales = joined.groupBy("sku", "location", "origin_idx").agg(
        F.count(F.lit(1)).alias("n"), F.avg("d_season").alias("s"), F.avg("d_one").alias("o")
    )
    scale = F.when(F.col("n") > m, F.col("s")).otherwise(F.col("o"))
    return scales.select("sku", "location", "origin_idx", F.when(scale > 0, scale).alias("mase_scale"))


def lstm_forecast_tables(
    demand: DataFrame,
    plan: LstmPlan,
    *,
    model_path: str,
    run_id: str,
    run_date: dt.date,
    factors: DataFrame | None = None,
    holidays: DataFrame | None = None,
    partitions: int | None = None,
) -> dict[str, DataFrame]:
    """The LSTM's rows of gold.forecast, gold.backtest_forecast and gold.forecast_backtest.

    The model at `model_path` forecasts each series from the period after its last (future
    covariates: no promotion, regular price, the holiday calendar) and from every backtest cutoff
    (covariates as observed when `planned_promotions`, else as the statistical models see them).
    Intervals: 80% = [P10, P90], 95% = [P2.5, P97.5]; the point forecast is P50. Returns table
    name -> rows (no backtest tables when `forecast.backtest.folds` is 0); the caller writes
    `registry_row` too.
    """
    from pyspark.sql import functions as F

    from replenish.forecast.distributed import TABLE_COLUMNS
    from replenish.neural.inference import predict_windows

    stamp = {
        "run_id": F.lit(run_id),
        "run_date": F.lit(run_date).cast("date"),
        "freq": F.lit(plan.freq),
        "model": F.lit(MODEL_NAME),
    }
    interval = {
        "yhat": F.col("q50"),
        "yhat_lo_80": F.col("q10"),
        "yhat_hi_80": F.col("q90"),
        "yhat_lo_95": F.col("q025"),
        "yhat_hi_95": F.col("q975"),
    }
    final = predict_windows(
        inference_windows(demand, plan.window, factors=factors, holidays=holidays, since=plan.last_date),
        model_path,
        partitions=partitions,
    ).where(F.col("step") <= plan.horizon)
    date = period_date(F.col("origin_idx") + F.col("step") - 1, plan.freq)
    values = {
        **stamp,
        "sku": F.col("sku"),
        "location": F.col("location"),
        "date": date,
        "step": F.col("step"),
        **interval,
    }
    forecast = final.select(*[values[name].alias(name) for name in TABLE_COLUMNS["gold.forecast"]])

    tables = {"gold.forecast": forecast}
    if plan.cutoffs:
        from pyspark.sql import Window

        predicted = predict_windows(
            inference_windows(
                demand,
                plan.window,
                origins=list(plan.cutoffs),
                factors=factors,
                holidays=holidays,
                neutral_future=not plan.settings.planned_promotions,
            ),
            model_path,
            partitions=partitions,
        ).where(F.col("step") <= plan.backtest_horizon)
        folds = Window.partitionBy("sku", "location").orderBy("origin_idx")
        scored = predicted.join(mase_scales(demand, plan), on=["sku", "location", "origin_idx"], how="left")
        scored = scored.withColumn("fold", F.dense_rank().over(folds).cast("int"))
        values = {
            **stamp,
            "sku": F.col("sku"),
            "location": F.col("location"),
            "fold": F.col("fold"),
            "cutoff": F.col("origin"),
            "date": date,
            "step": F.col("step"),
            "y": F.when(~F.isnan("y"), F.col("y")),
            "censored": F.isnan("y"),
            **interval,
            "mase_scale": F.col("mase_scale"),
        }
        backtest = scored.select(*[values[name].alias(name) for name in TABLE_COLUMNS["gold.backtest_forecast"]])
        tables.update({"gold.backtest_forecast": backtest, "gold.forecast_backtest": lstm_backtest_scores(backtest)})
    return tables


def lstm_backtest_scores(backtest: DataFrame) -> DataFrame:
    """gold.forecast_backtest rows from the LSTM's gold.backtest_forecast rows.

    A job scores the rows it has written (read back at their version), not the frame that made them:
    that frame is the model's inference over every cutoff, which Spark would run a second time.
    """
    from replenish.forecast.distributed import TABLE_COLUMNS, backtest_metrics

    keys = ("run_id", "run_date", "freq", "sku", "location", "model", "fold")
    return backtest_metrics(backtest, keys=keys).select(*TABLE_COLUMNS["gold.forecast_backtest"])


def timed(seconds_since: float) -> float:
    return round(time.monotonic() - seconds_since, 1)
