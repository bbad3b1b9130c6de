"""`silver.demand` rebuilt for the changed series only, identical to a full rebuild.

A series' features depend on its own sales, its product row, the calendar and the data's date range
(every series runs to the end of the data). So a series must be rebuilt when bronze.sales gained rows
of it (`replenish.io.incremental.changed_keys`, since the bronze version the last build read), and
every series must be when the products or the complete-period range changed. The rows of the other
series are carried over as they are, and the frequency's partition is replaced in one commit.

The bronze versions and range a build read are recorded in its commit (`userMetadata`), which is how
the next build knows where to start.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from replenish.features.calendar import complete_period_range
from replenish.features.demand import build_features, sales_date_range
from replenish.io.incremental import changed_keys

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from replenish.features.settings import FeaturesConfig

log = logging.getLogger(__name__)

SERIES = ("sku", "location")
HISTORY_DEPTH = 100


@dataclass(frozen=True)
class BuildInputs:
    """What a build of one frequency's `silver.demand` read: bronze versions and complete-period range."""

    freq: str
    sales_version: int | None
    products_version: int | None
    range_start: str
    range_end: str

    def as_commit_info(self) -> dict[str, str]:
        return {"features_inputs": json.dumps(self.__dict__, sort_keys=True)}

    @classmethod
    def from_commit(cls, commit: dict[str, Any]) -> BuildInputs | None:
        try:
            info = json.loads(commit.get("userMetadata") or "{}")
            return cls(**json.loads(info["features_inputs"]))
        except (ValueError, KeyError, TypeError):
            return None


def current_inputs(lake: Any, sales: DataFrame, *, freq: str) -> tuple[BuildInputs, tuple[dt.date, dt.date]]:
    """The inputs a build now would read, and the sales' first and last day."""
    first_day, last_day = sales_date_range(sales)
    start, end = complete_period_range(first_day, last_day, freq)
    versions = lake.versions(["bronze.sales", "bronze.products"])
    inputs = BuildInputs(freq, versions["bronze.sales"], versions["bronze.products"], str(start), str(end))
    return inputs, (first_day, last_day)


def last_build(lake: Any, *, freq: str) -> BuildInputs | None:
    """The inputs of the newest commit of silver.demand that built `freq`, if the history still has it."""
    if not lake.exists("silver.demand"):
        return None
    for commit in lake.history("silver.demand", limit=HISTORY_DEPTH):
        inputs = BuildInputs.from_commit(commit)
        if inputs is not None and inputs.freq == freq:
            return inputs
    return None


def incremental_demand(
    lake: Any, sales: DataFrame, products: DataFrame | None, cfg: FeaturesConfig, *, freq: str
) -> tuple[DataFrame | None, BuildInputs, str]:
    """This frequency's new `silver.demand` partition, rebuilding only the changed series.

    Returns:
        (the partition's rows, or None when nothing changed; the inputs read; why, for the log and
        the job summary). The rows are those of a full build on the same data.
    """
    inputs, (first_day, last_day) = current_inputs(lake, sales, freq=freq)
    previous = last_build(lake, freq=freq)
    if previous is None or previous.sales_version is None:
        return build_features(sales, products, cfg, freq=freq), inputs, "full: no earlier build of this frequency"
    if previous.products_version != inputs.products_version:
        return build_features(sales, products, cfg, freq=freq), inputs, "full: bronze.products changed"
    if (previous.range_start, previous.range_end) != (inputs.range_start, inputs.range_end):
        reason = (
            f"full: the complete periods moved from {previous.range_start}..{previous.range_end} to "
            f"{inputs.range_start}..{inputs.range_end}, so every series gains a period"
        )
        return build_features(sales, products, cfg, freq=freq), inputs, reason
    if previous.sales_version == inputs.sales_version:
        return None, inputs, "unchanged: no new bronze.sales commit"
    changed = changed_keys(lake, "bronze.sales", since_version=previous.sales_version, columns=SERIES).persist()
    try:
        count = changed.count()
        if count == 0:
            return None, inputs, "unchanged: the new commits added no sales rows"
        rebuilt = build_features(
            sales.join(F.broadcast(changed), list(SERIES), "left_semi"),
            products,
            cfg,
            freq=freq,
            date_range=(first_day, last_day),
        )
        kept = (
            lake.read("silver.demand")
            .where(F.col("freq") == freq)
            .join(F.broadcast(changed), list(SERIES), "left_anti")
            .select(*rebuilt.columns)
        )
        # the replaced files stay on disk until a vacuum, so reading them while replacing them is safe
        rows = kept.unionByName(rebuilt)
    except BaseException:
        changed.unpersist()
        raise
    return rows, inputs, f"incremental: {count} changed series rebuilt"
