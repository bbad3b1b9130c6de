"""What every stage shares: the series keys, the frequencies, input column checks, run ids and stamps,
and scoped Spark settings.

One definition each, imported by the stages and the jobs (no job imports another job's helpers).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from replenish.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The key of a demand series: one SKU at one location.
SERIES_KEYS: tuple[str, ...] = ("sku", "location")

Frequency = Literal["D", "W", "M", "Q"]
FREQUENCIES: tuple[str, ...] = ("D", "W", "M", "Q")
MONTHS_PER_PERIOD: dict[str, int] = {"M": 1, "Q": 3}
"""The frequencies counted in calendar months (periods dated on the 1st), and their length."""


def check_freq(freq: str) -> None:
    """Raise ConfigError unless `freq` is D, W, M or Q."""
    if freq not in FREQUENCIES:
        raise ConfigError(f"freq must be one of {', '.join(FREQUENCIES)}, got {freq!r}")


def require_columns(df: DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    """Raise ValidationError naming the input and the columns it lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValidationError(f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunStamp:
    """Run metadata stamped on every output row of the inventory stages.

    Attributes:
        run_id: this run.
        run_date: its business date.
        config_hash: hash of the settings it ran with.
        forecast_run_id: the `gold.forecast` run it planned from.
    """

    run_id: str
    run_date: dt.date
    config_hash: str
    forecast_run_id: str


def latest_run_id(runs: DataFrame) -> str | None:
    """The latest run of a run-stamped table: the greatest run_id on the latest run_date.

    run_date is the partition column, so finding the latest date reads no data files' columns; run ids
    made by `replenish` start with a UTC timestamp, so within a day the greatest is the latest.
    """
    from pyspark.sql import functions as F

    latest_date = runs.agg(F.max("run_date")).collect()[0][0]
    if latest_date is None:
        return None
    row = runs.where(F.col("run_date") == F.lit(latest_date)).agg(F.max("run_id")).collect()[0]
    return None if row[0] is None else str(row[0])


@contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set runtime SQL settings for the duration of a block, then restore what was there before."""
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
