"""Finding the forecast run a stage works from."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def latest_run_id(runs: DataFrame) -> str | None:
    """The latest run of a run-stamped table: the greatest run_id on the latest run_date.

    run_date is the partition column, so finding the latest date reads no data files' columns; run ids
    made by `replenish` start with a UTC timestamp, so within a day the greatest is the latest.
    """
    latest_date = runs.agg(F.max("run_date")).collect()[0][0]
    if latest_date is None:
        return None
    row = runs.where(F.col("run_date") == F.lit(latest_date)).agg(F.max("run_id")).collect()[0]
    return None if row[0] is None else str(row[0])
