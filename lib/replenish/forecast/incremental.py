"""An incremental forecast run: refit only the series whose inputs changed, carry the others' rows.

A series' rows of a run are a function of its own inputs and of settings every series shares:

* its rows of the training window as the tasks read them (`distributed.prepare_input`: demand,
  censoring, regressors, and the profile's demand class, `is_new` and revenue rank, which ranks the
  series against all others);
* the window itself (it ends at the data's last period) and the run's settings (frequency, mode,
  horizon, warm start, and the configuration hash, which covers every other setting);
* its stored ARIMA orders and the run date, through the warm start's age limit.

So the run compares the inputs with those of the last forecast run, recorded in that run's
commits (`userMetadata`: the silver.demand and silver.series_profile versions it read and its
settings). Settings that differ, a moved window, or a previous run whose inputs can no longer be
read make the run a full one, and its summary says why. Otherwise the changed series are found
exactly, not by fingerprints: the prepared input rows of both versions are compared with
`exceptAll` both ways (the training window is a small part of `silver.demand`). Those are refitted,
and so is every series with stored ARIMA orders (or a stored ARIMA failure) when the warm start is on:
a full run re-estimates those from the last run's coefficients, which moves them within the
optimizer's tolerance and records a warm refit, so only refitting them gives the full run's rows (it
also covers orders that have aged past `max_order_age_days`). Every other series' rows of the previous
run are carried into the new run, restamped with its run_id, run_date, input_versions and
mlflow_run_id. The rows of the cold-start analog model and the LSTM are not carried: they pool series,
so they are recomputed every run as in a full run.

What stays different from a full run (`RUN_DEPENDENT`): a carried row keeps the `fit_seconds` of the
run that fitted it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from replenish.forecast.distributed import _window_start, prepare_input

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import DataFrame

    from replenish.forecast.settings import ForecastPlan

log = logging.getLogger(__name__)

SERIES = ("sku", "location")
RUN_DEPENDENT = ("fit_seconds",)
"""Columns a carried row keeps from the run that fitted it (everything else equals a full run's row)."""
POOLED_MODELS = ("analog", "lstm")
"""Models whose rows pool series (analog levels, the global LSTM): recomputed every run, never carried."""
HISTORY_DEPTH = 100


@dataclass(frozen=True)
class ForecastInputs:
    """What one forecast run read and how it was set: where the next incremental run starts."""

    run_id: str
    freq: str
    mode: str
    horizon: int
    warm_start: bool
    config_hash: str
    demand_version: int | None
    profile_version: int | None
    run_date: str | None = None

    def as_commit_info(self) -> dict[str, str]:
        return {"forecast_inputs": json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)}

    @classmethod
    def from_commit(cls, commit: Mapping[str, Any]) -> ForecastInputs | None:
        try:
            info = json.loads(commit.get("userMetadata") or "{}")
            return cls(**json.loads(info["forecast_inputs"]))
        except (ValueError, KeyError, TypeError):
            return None

    def settings_changed(self, other: ForecastInputs) -> list[str]:
        """`name a -> b` for each setting that shapes forecasts and differs."""
        names = ("freq", "mode", "horizon", "warm_start", "config_hash")
        return [
            f"{name} {getattr(self, name)} -> {getattr(other, name)}"
            for name in names
            if getattr(self, name) != getattr(other, name)
        ]


@dataclass
class Increment:
    """The decision of an incremental run.

    Attributes:
        reason: why, for the log and the job summary.
        series: (sku, location) of the series to refit (persisted), or None for a full run.
        series_count: how many rows `series` has (counted once, with the reason's figures).
        previous_run_id: the run whose other rows are carried, or None for a full run.
        previous_run_date: its run_date (the gold tables' partition: the carried rows are read from it).
    """

    reason: str
    series: DataFrame | None = None
    series_count: int = 0
    previous_run_id: str | None = None
    previous_run_date: str | None = None

    @property
    def full(self) -> bool:
        return self.series is None

    def release(self) -> None:
        if self.series is not None:
            self.series.unpersist()


def last_forecast_run(lake: Any, *, freq: str) -> ForecastInputs | None:
    """The inputs of the newest forecast run of `freq` recorded in gold.model_registry's commits."""
    if not lake.exists("gold.model_registry"):
        return None
    for commit in lake.history("gold.model_registry", limit=HISTORY_DEPTH):
        inputs = ForecastInputs.from_commit(commit)
        if inputs is not None and inputs.freq == freq:
            return inputs
    return None


def plan_increment(
    lake: Any,
    plan: ForecastPlan,
    now: ForecastInputs,
    *,
    demand: DataFrame,
    profile: DataFrame | None,
    stored_orders: DataFrame | None,
) -> Increment:
    """Which series this run refits, or why it is a full run (module docstring)."""
    previous = last_forecast_run(lake, freq=now.freq)
    if previous is None:
        return Increment("full: no earlier forecast run of this frequency is recorded")
    if previous.run_id == now.run_id:
        return Increment(f"full: run {now.run_id} was recorded already (a re-submitted run)")
    changed = previous.settings_changed(now)
    if changed:
        return Increment(f"full: the settings that shape forecasts changed ({'; '.join(changed)})")
    if previous.run_date is None:
        return Increment("full: the last run did not record its run date")
    if previous.demand_version is None or (previous.profile_version is None) != (now.profile_version is None):
        return Increment("full: the last run read other input tables (silver.series_profile appeared or went)")
    try:
        old_demand = lake.read("silver.demand", version=previous.demand_version)
        old_profile = None
        if previous.profile_version is not None:
            old_profile = lake.read("silver.series_profile", version=previous.profile_version)
        old_last, new_last = _last_period(old_demand, plan.freq), _last_period(demand, plan.freq)
    except Exception as exc:  # vacuumed or unreadable: the previous run cannot be compared with, a full run can
        log.warning("forecast: the last run's inputs cannot be read: %s", exc)
        return Increment(f"full: silver.demand version {previous.demand_version}, read by the last run, is unreadable")
    if new_last is None:
        return Increment(f"full: silver.demand has no rows of frequency {plan.freq}")
    if old_last != new_last:
        return Increment(
            f"full: the data's last period moved from {old_last} to {new_last}, so every series' window moved"
        )
    start = _window_start(new_last, plan)
    old_rows = prepare_input(old_demand, old_profile, None, plan, start=start)
    new_rows = prepare_input(demand, profile, None, plan, start=start)
    if old_rows.columns != new_rows.columns:
        return Increment(f"full: silver.demand's columns changed ({old_rows.columns} -> {new_rows.columns})")
    from pyspark.sql import functions as F

    flagged = changed_series(old_rows, new_rows).withColumn("changed", F.lit(1)).withColumn("warm", F.lit(0))
    warm = warm_started(lake.spark, stored_orders, plan).withColumn("changed", F.lit(0)).withColumn("warm", F.lit(1))
    flagged = flagged.unionByName(warm)
    # one row per series, with where it came from: the diff runs once, and one aggregate counts all three
    series = flagged.groupBy(*SERIES).agg(F.max("changed").alias("changed"), F.max("warm").alias("warm")).persist()
    counts = series.agg(F.count("*"), F.sum("changed"), F.sum("warm")).collect()[0]
    refit, inputs_changed, warm_count = (int(value or 0) for value in counts)
    reason = (
        f"incremental: {refit} series refitted ({inputs_changed} with changed inputs, {warm_count} warm-started "
        f"from stored ARIMA orders); the others carried from run {previous.run_id}"
    )
    return Increment(
        reason,
        series=series,
        series_count=refit,
        previous_run_id=previous.run_id,
        previous_run_date=previous.run_date,
    )


def _last_period(demand: DataFrame, freq: str) -> dt.date | None:
    from pyspark.sql import functions as F

    value: dt.date | None = demand.where(F.col("freq") == freq).agg(F.max("date")).collect()[0][0]
    return value


def changed_series(old_rows: DataFrame, new_rows: DataFrame) -> DataFrame:
    """(sku, location) of the series whose prepared input rows differ between two versions, exactly."""
    keys = list(SERIES)
    gone = old_rows.exceptAll(new_rows).select(*keys)
    came = new_rows.exceptAll(old_rows).select(*keys)
    return gone.unionByName(came).distinct()


def warm_started(spark: Any, stored_orders: DataFrame | None, plan: ForecastPlan) -> DataFrame:
    """(sku, location) of the series a full run would warm-start: those with stored ARIMA orders or failure.

    A full run re-estimates them from the stored coefficients (or searches again once the orders are
    too old, or skips a recently failed search with its own reason), so they are refitted, not carried.
    """
    if stored_orders is None or not plan.warm_start or "routed" not in plan.candidates:
        return spark.createDataFrame([], "sku string, location string")
    return stored_orders.select(*SERIES)


def carried_rows(
    lake: Any,
    name: str,
    *,
    previous_run_id: str,
    previous_run_date: str,
    freq: str,
    refitted: DataFrame,
    like: DataFrame,
    stamp: Mapping[str, Any],
) -> DataFrame:
    """The previous run's rows of table `name` for the series not refitted, restamped, in `like`'s columns.

    Args:
        refitted: (sku, location) of the refitted series, whose old rows are left behind.
        like: this run's rows of the table: the columns and types to match.
        stamp: column -> this run's value (run_id, run_date, mlflow_run_id, input_versions).
    """
    from pyspark.sql import functions as F

    old = lake.read(name).where(  # run_date first: the partition, so only the previous run's files are read
        (F.col("run_date") == F.lit(previous_run_date).cast("date"))
        & (F.col("run_id") == previous_run_id)
        & (F.col("freq") == freq)
        & ~F.col("model").isin(*POOLED_MODELS)
    )
    kept = old.join(F.broadcast(refitted.select(*SERIES)), list(SERIES), "left_anti")
    columns = []
    for field in like.schema.fields:
        if field.name in stamp:
            columns.append(F.lit(stamp[field.name]).cast(field.dataType).alias(field.name))
        elif field.name in kept.columns:
            columns.append(F.col(field.name).cast(field.dataType).alias(field.name))
        else:
            columns.append(F.lit(None).cast(field.dataType).alias(field.name))
    return kept.select(*columns)
