"""Writes that happen once per run: re-submitting a run with the same run id adds no duplicate rows.

Every `Lake` write is one atomic commit, so after a crash a table either holds all of a run's rows or
none of them. A job that appends its run's rows through `append_once` can therefore be re-submitted
with the same `--run-id` after its driver died: the tables that were committed are left as they are and
the others are written, so no row is duplicated and none is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from replenish.io.catalog import TableSpec, table
from replenish.io.lake import WriteResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from replenish.io.lake import Lake

log = logging.getLogger(__name__)


def run_committed(lake: Lake, name: str | TableSpec, match: Mapping[str, Any]) -> bool:
    """True when table `name` exists and has a row whose columns equal `match` (e.g. the run id)."""
    from pyspark.sql import functions as F

    if not lake.exists(name):
        return False
    rows = lake.read(name)
    for column, value in match.items():
        rows = rows.where(F.col(column) == F.lit(value))
    return bool(rows.limit(1).count())


def append_once(lake: Lake, df: DataFrame, name: str | TableSpec, *, match: Mapping[str, Any]) -> WriteResult:
    """Append `df` to `name` unless the table already holds rows matching `match`.

    Args:
        lake: the lake.
        df: this run's rows; each must carry the values of `match`.
        name: the table.
        match: the columns that identify this run's rows, e.g. `{"run_id": ctx.run_id}`.

    Returns:
        The commit's result; when the rows were there already, the current version and no rows.
    """
    spec = table(name)
    missing = [column for column in match if column not in df.columns]
    if missing:
        raise ValueError(f"{spec.name}: match column(s) {missing} not in the data")
    if run_committed(lake, spec, match):
        version = lake.version(spec)
        log.info("%s already holds the rows of %s: left at version %s", spec.name, dict(match), version)
        return WriteResult(version=-1 if version is None else version, rows_written=0)
    return lake.write_with_result(df, spec, mode="append")
