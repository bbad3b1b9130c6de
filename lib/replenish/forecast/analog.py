"""Cold start: forecasts for recently launched SKUs from their most similar established SKUs.

A series that `silver.series_profile` marks `is_new` has too little history for its own model; the
routed fallback (`recent_mean`) averages the few periods it has, which during a launch ramp
understates demand and before the first sale says nothing. The `analog` model borrows a level from
established series at the same location:

1. Analogs: the SKU's top `cold_start.analogs` neighbours in `gold.similar_items` (cosine of ALS item
   factors) that are established series at the location; for a SKU without interactions (no row in
   gold.similar_items), the established SKUs of its category (bronze.products) closest in log unit
   price. The registry's reason says which.
2. Level at a cutoff: each analog's mean uncensored demand over the `recent_periods` before the cutoff,
   weighted by similarity (equal weights for category analogs), shrunk towards the series' own mean
   as its history grows: `(n × own_mean + k × analog_mean) / (n + k)`, k = `cold_start.prior_periods`.
3. Intervals: the pooled analog demand divided by each analog's level gives the spread of a period
   around its level; its 2.5/10/90/97.5% quantiles times the level give the 95% and 80% intervals.

It is backtested on the same rolling origins as the routed models (the series' own periods, only data
before each cutoff, analogs included), so `gold.forecast_backtest` and selection judge it like any
model; a series gets it when its demand class is in `cold_start.demand_classes` (its routing).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from replenish.errors import ConfigError
from replenish.forecast.backtest import mase_scale, rolling_origin

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from replenish.forecast.settings import ForecastPlan

MODEL = "analog"
QUANTILES = (0.025, 0.1, 0.9, 0.975)


@dataclass(frozen=True)
class ColdStartConfig:
    """Settings of the analog model (the `cold_start:` section of conf/base.yaml).

    Attributes:
        enabled: forecast new series with `analog` as well as their routed fallback.
        analogs: established SKUs borrowed from per new series.
        prior_periods: weight of the analogs' level, in periods of the series' own history.
        demand_classes: the demand classes (silver.series_profile) whose new series get the model.
    """

    enabled: bool = True
    analogs: int = 5
    prior_periods: int = 14
    demand_classes: tuple[str, ...] = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")

    def __post_init__(self) -> None:
        if self.analogs < 1 or self.prior_periods < 0:
            raise ConfigError(f"cold_start: analogs must be >= 1 and prior_periods >= 0, got {self}")


def analog_pairs(
    profile: DataFrame, similar: DataFrame | None, products: DataFrame | None, *, analogs: int, classes: tuple[str, ...]
) -> DataFrame:
    """sku, location (a new series), analog_sku, weight, source (`similar_items` or `category_price`).

    Category analogs are only looked for where the SKU has no similar-items analog at the location.
    The category join pairs a new series with the established series of its category and location
    only, never the catalogue with itself.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    new = profile.where(F.col("is_new") & F.col("demand_class").isin(*classes)).select("sku", "location")
    # a series that has sold something is an analog; a profile without the count (a hand-built one) keeps all
    sold = F.col("n_nonzero") > 0 if "n_nonzero" in profile.columns else F.lit(True)
    established = profile.where(~F.col("is_new") & sold).select(F.col("sku").alias("analog_sku"), "location")
    order = Window.partitionBy("sku", "location").orderBy(F.desc("weight"), "analog_sku")
    found = new.limit(0).select("sku", "location", F.lit("").alias("analog_sku"), F.lit(0.0).alias("weight"))
    if similar is not None:
        neighbours = similar.select(
            "sku", F.col("similar_sku").alias("analog_sku"), F.col("similarity").alias("weight")
        )
        found = new.join(neighbours, "sku").join(established, ["analog_sku", "location"]).where(F.col("weight") > 0)
        found = found.select("sku", "location", "analog_sku", "weight")
    found = found.withColumn("source", F.lit("similar_items"))
    if products is not None and {"category", "unit_price"} <= set(products.columns):
        attributes = products.select("sku", "category", F.log(F.greatest(F.col("unit_price"), F.lit(0.01))).alias("lp"))
        missing = new.join(found.select("sku", "location").distinct(), ["sku", "location"], "left_anti")
        pool = established.join(
            attributes.select(F.col("sku").alias("analog_sku"), "category", F.col("lp").alias("analog_lp")),
            "analog_sku",
        )
        by_price = (
            missing.join(attributes, "sku")
            .join(pool, ["category", "location"])
            .where(F.col("sku") != F.col("analog_sku"))
        )
        by_price = by_price.select(
            "sku",
            "location",
            "analog_sku",
            (-F.abs(F.col("lp") - F.col("analog_lp"))).alias("weight"),
            F.lit("category_price").alias("source"),
        )
        found = found.unionByName(by_price)
    ranked = found.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") <= analogs)
    # Category analogs weigh equally; neighbours by their (positive) similarity.
    weight = F.when(F.col("source") == "similar_items", F.col("weight")).otherwise(F.lit(1.0))
    return ranked.select("sku", "location", "analog_sku", weight.alias("weight"), "source")


def _step(freq: str) -> pd.DateOffset:
    months = {"M": 1, "Q": 3}
    return pd.DateOffset(months=months[freq]) if freq in months else pd.DateOffset(days=7 if freq == "W" else 1)


class AnalogModel:
    """The level and interval arithmetic of one new series, on numpy arrays (no Spark).

    `fit(own, analogs, weights)` with the series' own uncensored demand before the cutoff and each
    analog's uncensored demand over its recent window; `predict(h)` returns the statsforecast-style
    dict (`mean`, `lo-80`, `hi-80`, `lo-95`, `hi-95`).
    """

    def __init__(self, *, prior_periods: int) -> None:
        self.prior_periods = prior_periods
        self.level_: float = 0.0
        self.ratios_: np.ndarray = np.ones(1)

    def fit(self, own: np.ndarray, analogs: list[np.ndarray], weights: np.ndarray) -> AnalogModel:
        levels = np.array([np.mean(a) if a.size else np.nan for a in analogs], dtype=float)
        usable = np.isfinite(levels)
        if usable.any():
            w = np.where(weights[usable] > 0, weights[usable], 0.0)
            w = w if w.sum() > 0 else np.ones(usable.sum())
            analog_level = float(np.average(levels[usable], weights=w))
            ratios = [
                a / level
                for a, level in zip(np.array(analogs, dtype=object)[usable], levels[usable], strict=True)
                if level > 0
            ]
            self.ratios_ = np.concatenate(ratios) if ratios else np.ones(1)
        else:
            analog_level = float(np.mean(own)) if own.size else 0.0
        n = own.size
        own_mean = float(np.mean(own)) if n else 0.0
        k = self.prior_periods if usable.any() else 0
        self.level_ = (n * own_mean + k * analog_level) / (n + k) if n + k > 0 else 0.0
        return self

    def predict(self, h: int) -> dict[str, np.ndarray]:
        q = np.quantile(self.ratios_, QUANTILES) * self.level_
        mean = np.full(h, self.level_)
        return {
            "mean": mean,
            "lo-95": np.full(h, min(q[0], self.level_)),
            "lo-80": np.full(h, min(q[1], self.level_)),
            "hi-80": np.full(h, max(q[2], self.level_)),
            "hi-95": np.full(h, max(q[3], self.level_)),
        }


OUTPUT_SCHEMA = (
    "kind string, sku string, location string, fold int, cutoff date, date date, step int, y double, "
    "censored boolean, yhat double, yhat_lo_80 double, yhat_hi_80 double, yhat_lo_95 double, yhat_hi_95 double, "
    "mase_scale double, reason string, n_obs long, train_start date, train_end date"
)


def _series_forecast(frame: pd.DataFrame, plan: ForecastPlan, cfg: ColdStartConfig) -> pd.DataFrame:
    """Backtest folds and the final forecast of one new series from its rows and its analogs' rows."""
    own = frame[frame["role"] == "own"].sort_values("date")
    others = frame[frame["role"] == "analog"]
    dates = pd.to_datetime(own["date"]).to_numpy()
    y = own["demand"].to_numpy(dtype=float)
    censored = own["censored"].fillna(False).to_numpy(dtype=bool)
    recent = plan.windows.recent_periods
    weights = others.groupby("analog_sku")["weight"].first()
    by_analog = {sku: g.sort_values("date") for sku, g in others.groupby("analog_sku")}
    source = str(others["source"].iloc[0]) if len(others) else "none"

    def fit_at(cutoff: np.datetime64) -> AnalogModel:
        before = dates < cutoff
        mine = y[before & ~censored]
        histories = []
        for sku in weights.index:
            g = by_analog[sku]
            d = pd.to_datetime(g["date"]).to_numpy()
            keep = (d < cutoff) & ~g["censored"].fillna(False).to_numpy(dtype=bool)
            histories.append(g["demand"].to_numpy(dtype=float)[keep][-recent:])
        return AnalogModel(prior_periods=cfg.prior_periods).fit(mine, histories, weights.to_numpy(dtype=float))

    rows: list[dict[str, Any]] = []
    sku, location = own["sku"].iloc[0], own["location"].iloc[0]
    for fold in rolling_origin(len(y), folds=plan.folds, horizon=plan.backtest_horizon, step=plan.backtest_step):
        prediction = fit_at(dates[fold.cutoff]).predict(fold.horizon)
        scale = mase_scale(np.where(censored[: fold.cutoff], np.nan, y[: fold.cutoff]), plan.windows.season_length)
        for i, t in enumerate(range(fold.cutoff, fold.end)):
            rows.append(
                {
                    "kind": "backtest",
                    "fold": fold.fold,
                    "cutoff": dates[fold.cutoff],
                    "date": dates[t],
                    "step": i + 1,
                    "y": None if censored[t] else y[t],
                    "censored": bool(censored[t]),
                    **_interval(prediction, i),
                    "mase_scale": scale if np.isfinite(scale) else None,
                }
            )
    last = pd.Timestamp(dates[-1])
    future = [last + _step(plan.freq) * (i + 1) for i in range(plan.horizon)]
    model = fit_at(np.datetime64(future[0]))
    prediction = model.predict(plan.horizon)
    for i, when in enumerate(future):
        rows.append({"kind": "forecast", "date": when, "step": i + 1, **_interval(prediction, i)})
    reason = f"recently launched SKU: level of {len(weights)} analog(s) by {source}"
    rows.append(
        {
            "kind": "registry",
            "reason": reason,
            "n_obs": len(y),
            "train_start": dates[0],
            "train_end": dates[-1],
            "yhat": model.level_,
        }
    )
    out = pd.DataFrame(rows)
    out["sku"], out["location"] = sku, location
    for column in ("cutoff", "date", "train_start", "train_end"):
        if column in out:
            out[column] = pd.to_datetime(out[column]).dt.date
    return out.reindex(columns=[c.split()[0] for c in OUTPUT_SCHEMA.split(", ")])


def _interval(prediction: dict[str, np.ndarray], i: int) -> dict[str, float]:
    return {
        "yhat": float(prediction["mean"][i]),
        "yhat_lo_80": float(prediction["lo-80"][i]),
        "yhat_hi_80": float(prediction["hi-80"][i]),
        "yhat_lo_95": float(prediction["lo-95"][i]),
        "yhat_hi_95": float(prediction["hi-95"][i]),
    }


@dataclass
class AnalogTables:
    """The analog model's rows per forecast table (none when it is off), and the fit they share."""

    tables: dict[str, DataFrame] = field(default_factory=dict)
    cached: tuple[DataFrame, ...] = ()

    def by_table(self) -> dict[str, DataFrame]:
        return self.tables

    def release(self) -> None:
        """Unpersist the shared fit, once the tables are written (a notebook's session lives on)."""
        for frame in self.cached:
            frame.unpersist()


def analog_tables(
    demand: DataFrame,
    profile: DataFrame | None,
    similar: DataFrame | None,
    products: DataFrame | None,
    plan: ForecastPlan,
    cfg: ColdStartConfig,
    *,
    run_id: str,
    run_date: dt.date,
    config_hash: str,
) -> AnalogTables:
    """The analog model's rows of gold.forecast, gold.backtest_forecast, gold.forecast_backtest and
    gold.model_registry for the new series of `plan.freq`; no tables when disabled or without a profile."""
    from pyspark.sql import functions as F

    from replenish.forecast.distributed import backtest_metrics

    if not cfg.enabled or profile is None:
        return AnalogTables()
    profile = profile.where(F.col("freq") == plan.freq)
    pairs = analog_pairs(profile, similar, products, analogs=cfg.analogs, classes=cfg.demand_classes)
    rows = demand.where(F.col("freq") == plan.freq).select(
        "sku",
        "location",
        "date",
        F.col("demand").cast("double").alias("demand"),
        F.col("censored").cast("boolean").alias("censored"),
    )
    new = profile.where(F.col("is_new") & F.col("demand_class").isin(*cfg.demand_classes)).select("sku", "location")
    own = rows.join(new, ["sku", "location"]).select(
        "*",
        F.lit("own").alias("role"),
        F.lit(None).cast("string").alias("analog_sku"),
        F.lit(None).cast("double").alias("weight"),
        F.lit(None).cast("string").alias("source"),
    )
    borrowed = pairs.join(
        rows.withColumnRenamed("sku", "analog_sku")
        .withColumnRenamed("demand", "demand")
        .select("analog_sku", "location", "date", "demand", "censored"),
        ["analog_sku", "location"],
    ).select(
        "sku", "location", "date", "demand", "censored", F.lit("analog").alias("role"), "analog_sku", "weight", "source"
    )
    combined = own.unionByName(borrowed)

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        if not (frame["role"] == "own").any():
            return pd.DataFrame(columns=[c.split()[0] for c in OUTPUT_SCHEMA.split(", ")])
        return _series_forecast(frame, plan, cfg)

    out = combined.groupBy("sku", "location").applyInPandas(run, OUTPUT_SCHEMA).cache()
    stamp = [
        F.lit(run_id).alias("run_id"),
        F.lit(run_date).cast("date").alias("run_date"),
        F.lit(plan.freq).alias("freq"),
    ]
    keys: list[Column | str] = [*stamp, "sku", "location", F.lit(MODEL).alias("model")]
    predictions = ["yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]
    forecast = out.where("kind = 'forecast'").select(*keys, "date", "step", *predictions)
    backtest = out.where("kind = 'backtest'").select(
        *keys, "fold", "cutoff", "date", "step", "y", "censored", *predictions, "mase_scale"
    )
    params = F.to_json(
        F.struct(
            F.col("yhat").alias("level"),
            F.lit(cfg.analogs).alias("analogs"),
            F.lit(cfg.prior_periods).alias("prior_periods"),
        )
    )
    registry = (
        out.where("kind = 'registry'")
        .join(profile.select("sku", "location", "demand_class"), ["sku", "location"], "left")
        .select(
            *keys,
            "demand_class",
            params.alias("params"),
            F.lit("ok").alias("status"),
            "reason",
            F.lit(0.0).alias("fit_seconds"),
            "train_start",
            "train_end",
            "n_obs",
            F.lit(json.dumps({})).alias("input_versions"),
            F.lit(config_hash).alias("config_hash"),
        )
    )
    tables = {
        "gold.forecast": forecast,
        "gold.backtest_forecast": backtest,
        "gold.forecast_backtest": backtest_metrics(backtest),
        "gold.model_registry": registry,
    }
    return AnalogTables(tables, cached=(out,))


def with_analog_rows(tables: dict[str, DataFrame], analog: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Append the analog rows to each forecast table, cast to that table's columns and types.

    A column the analog rows lack (a run-level one such as `mlflow_run_id`) is NULL on them; the job
    sets run-level columns on the whole table.
    """
    from pyspark.sql import functions as F

    out = {}
    for name, frame in tables.items():
        extra = analog.get(name)
        if extra is not None:
            columns = [
                F.col(f.name).cast(f.dataType)
                if f.name in extra.columns
                else F.lit(None).cast(f.dataType).alias(f.name)
                for f in frame.schema.fields
            ]
            frame = frame.unionByName(extra.select(*columns))
        out[name] = frame
    return out
