"""Inventory position per SKU-location and the reorder points it crosses: pure DataFrame transforms.

A position row holds its snapshot (the latest `bronze.inventory` row when the series was first seen)
and the sum of every stock change dated after that snapshot: net stock (on hand − backorders) and on
order. On hand, backorders and the position follow from those two:

    on_hand = max(net, 0), backorders = max(−net, 0), position = net + on_order

(the position is on hand + on order − backorders, as in `gold.replenishment_plan`). An event dated on
or before the series' snapshot date is already counted in the snapshot, which is taken at the end of
its day; a series with no snapshot starts from zero and counts every event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from replenish.inventory import formulas
from replenish.inventory.ops import SPARK, col, sql
from replenish.io.catalog import table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEYS = ("sku", "location")

# The catalog's columns of the two tables the stream keeps (docs/tables.md, "gold streaming").
POSITION_SCHEMA = table("gold.inventory_position").schema
ALERT_SCHEMA = table("gold.reorder_alerts").schema

# Columns of the latest plan that an alert needs.
PLAN_COLUMNS = (
    "run_id",
    "sku",
    "location",
    "policy",
    "reorder_point",
    "order_up_to_level",
    "lot_size",
    "moq",
    "pack_size",
)


@dataclass(frozen=True)
class BatchStamp:
    """Which micro-batch of which stream a change comes from.

    Attributes:
        stream_id: the streaming query's id, kept in its checkpoint (stable across restarts).
        batch_id: the micro-batch number within that query.
        at: when the batch ran (UTC).
    """

    stream_id: str
    batch_id: int
    at: dt.datetime


def _derived(net: Column, on_order: Column) -> list[Column]:
    """on_hand, on_order, backorders and inventory_position from net stock and on order."""
    return [
        F.greatest(net, F.lit(0.0)).alias("on_hand"),
        on_order.alias("on_order"),
        F.greatest(-net, F.lit(0.0)).alias("backorders"),
        (net + on_order).alias("inventory_position"),
    ]


def seed_positions(inventory: DataFrame) -> DataFrame:
    """One position per series from its latest `bronze.inventory` snapshot, before any event.

    Columns: `POSITION_SCHEMA`; stream_id, batch_id, last_event_date and updated_at are null.
    """
    latest = inventory.groupBy(*KEYS).agg(
        F.max("snapshot_date").alias("snapshot_date"),
        F.max_by(
            F.struct(
                F.coalesce("on_hand", F.lit(0.0)).alias("on_hand"),
                F.coalesce("on_order", F.lit(0.0)).alias("on_order"),
                F.coalesce("backorders", F.lit(0.0)).alias("backorders"),
            ),
            "snapshot_date",
        ).alias("s"),
    )
    net = F.col("s.on_hand") - F.col("s.backorders")
    return latest.select(
        *KEYS,
        "snapshot_date",
        net.alias("net_stock"),
        *_derived(net, F.col("s.on_order")),
        F.lit(0).cast("long").alias("events_applied"),
        F.lit(None).cast("date").alias("last_event_date"),
        F.lit(None).cast("timestamp").alias("updated_at"),
        F.lit(None).cast("string").alias("stream_id"),
        F.lit(None).cast("long").alias("batch_id"),
    )


def apply_changes(positions: DataFrame, changes: DataFrame, stamp: BatchStamp) -> DataFrame:
    """The new position of every series a batch of stock changes moves.

    Stages:
        1. each change meets its series' current row (none for a series seen the first time) and is
           kept when dated after the series' snapshot;
        2. per series, the sums of the kept changes, their count and latest date;
        3. the new net stock and on order, and from them on hand, backorders and the position.

    Args:
        positions: the current `gold.inventory_position`.
        changes: stock changes (`events.CHANGE_COLUMNS`) of one micro-batch.
        stamp: the batch, stamped on every changed row.

    Returns:
        `POSITION_SCHEMA` columns plus `previous_position` (the position before this batch), one row
        per series with at least one kept change.
    """
    current = positions.select(
        *KEYS,
        "snapshot_date",
        F.col("net_stock").alias("previous_net_stock"),
        F.col("on_order").alias("previous_on_order"),
        F.col("events_applied").alias("previous_events"),
        F.col("last_event_date").alias("previous_event_date"),
    )
    after_snapshot = F.col("snapshot_date").isNull() | (F.col("event_date") > F.col("snapshot_date"))
    kept = changes.join(current, list(KEYS), "left").where(after_snapshot)
    summed = kept.groupBy(*KEYS).agg(
        F.first("snapshot_date", ignorenulls=True).alias("snapshot_date"),
        F.coalesce(F.first("previous_net_stock", ignorenulls=True), F.lit(0.0)).alias("previous_net_stock"),
        F.coalesce(F.first("previous_on_order", ignorenulls=True), F.lit(0.0)).alias("previous_on_order"),
        F.coalesce(F.first("previous_events", ignorenulls=True), F.lit(0).cast("long")).alias("previous_events"),
        F.first("previous_event_date", ignorenulls=True).alias("previous_event_date"),
        F.sum("net_stock_change").alias("net_stock_change"),
        F.sum("on_order_change").alias("on_order_change"),
        F.count("*").alias("events"),
        F.max("event_date").alias("latest_event_date"),
    )
    net = F.col("previous_net_stock") + F.col("net_stock_change")
    on_order = F.col("previous_on_order") + F.col("on_order_change")
    return summed.select(
        *KEYS,
        "snapshot_date",
        net.alias("net_stock"),
        *_derived(net, on_order),
        (F.col("previous_events") + F.col("events")).alias("events_applied"),
        F.greatest("previous_event_date", "latest_event_date").alias("last_event_date"),
        F.lit(stamp.at).cast("timestamp").alias("updated_at"),
        F.lit(stamp.stream_id).alias("stream_id"),
        F.lit(stamp.batch_id).cast("long").alias("batch_id"),
        (F.col("previous_net_stock") + F.col("previous_on_order")).alias("previous_position"),
    )


def latest_plan(plan: DataFrame) -> DataFrame:
    """The rows of the latest run of `gold.replenishment_plan` (greatest run_date, then run_id), `PLAN_COLUMNS`."""
    latest = plan.select("run_date", "run_id").distinct().orderBy(F.desc("run_date"), F.desc("run_id")).limit(1)
    return plan.join(latest, ["run_date", "run_id"], "left_semi").select(*PLAN_COLUMNS)


def _at_or_below_reorder_point(position: str) -> Column:
    """The (s, Q) trigger of `formulas.continuous_order`: at or below s, and s > 0 or the position negative."""
    position_col, reorder_point = F.col(position), F.col("reorder_point")
    return (position_col <= reorder_point) & ((reorder_point > 0) | (position_col < 0))


def crossing_alerts(changed: DataFrame, plan: DataFrame, stamp: BatchStamp) -> DataFrame:
    """An alert for every changed series whose position went from above the plan's reorder point to at or below it.

    A series already at or below its reorder point before the batch raises no new alert until it has
    been above it again; a series without a plan row raises none. The order is what the plan's policy
    orders at this position: S − position for (R, S), the fewest lots of Q that lift it above s for
    (s, Q), raised to the MOQ and whole packs.

    Args:
        changed: the output of `apply_changes`.
        plan: `latest_plan` rows.
        stamp: the batch.

    Returns:
        `ALERT_SCHEMA` rows.
    """
    joined = changed.join(plan, list(KEYS), "inner").where(
        _at_or_below_reorder_point("inventory_position") & ~_at_or_below_reorder_point("previous_position")
    )
    periodic = formulas.periodic_order(col("order_up_to_level"), col("inventory_position"), SPARK)
    continuous = formulas.continuous_order(col("reorder_point"), col("lot_size"), col("inventory_position"), SPARK)
    pack = sql("coalesce(`pack_size`, 1.0)")
    moq = sql("coalesce(`moq`, 0.0)")
    periodic_order = formulas.round_order(periodic, moq, pack, SPARK)
    continuous_order = formulas.round_order(continuous, moq, pack, SPARK)
    order = F.expr(f"CASE WHEN `policy` = 'periodic' THEN {periodic_order.text} ELSE {continuous_order.text} END")
    return joined.select(
        F.lit(stamp.stream_id).alias("stream_id"),
        F.lit(stamp.batch_id).cast("long").alias("batch_id"),
        F.lit(stamp.at).cast("timestamp").alias("alerted_at"),
        *KEYS,
        F.col("run_id").alias("plan_run_id"),
        "policy",
        "reorder_point",
        "order_up_to_level",
        "previous_position",
        "inventory_position",
        "on_hand",
        "on_order",
        "backorders",
        order.cast("double").alias("order_quantity"),
    )
