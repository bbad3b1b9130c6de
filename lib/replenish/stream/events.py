"""The event contract of the stream: every source row becomes one change of a series' stock.

Two bronze tables feed the stream, both append-only:

* `bronze.sales`: a row sells `quantity` units on `date` (a return, `is_return` with a negative
  quantity, puts them back): net stock − quantity.
* `bronze.inventory_movements`: `receipt` (net stock + q, on order − q: an order arrived), `adjustment`
  (net stock + q, q signed: counts, damage, returns to stock), `order_placed` (on order + q),
  `order_cancelled` (on order − q).

Net stock is on hand − backorders: a sale beyond the stock on hand is a backorder, and a receipt fills
backorders first. Every change is additive, so the position of a series is its snapshot plus the sum
of its changes, whatever order and however many batches the events arrive in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Columns of a stock change: the series, the business date of the event (compared with the
# snapshot's), its source and the two additive changes.
CHANGE_COLUMNS = ("sku", "location", "event_date", "source", "net_stock_change", "on_order_change")

_NET_STOCK_SIGN = {"receipt": 1.0, "adjustment": 1.0, "order_placed": 0.0, "order_cancelled": 0.0}
_ON_ORDER_SIGN = {"receipt": -1.0, "adjustment": 0.0, "order_placed": 1.0, "order_cancelled": -1.0}


def sales_changes(sales: DataFrame) -> DataFrame:
    """Rows of `bronze.sales` as stock changes: net stock − quantity on the sales date."""
    return sales.select(
        "sku",
        "location",
        F.col("date").alias("event_date"),
        F.lit("sales").alias("source"),
        (-F.coalesce(F.col("quantity"), F.lit(0.0))).alias("net_stock_change"),
        F.lit(0.0).alias("on_order_change"),
    )


def _by_movement(signs: dict[str, float]) -> F.Column:
    lookup = F.create_map(*[F.lit(item) for pair in signs.items() for item in pair])
    return F.coalesce(lookup[F.col("movement")], F.lit(0.0)) * F.col("quantity")


def movement_changes(movements: DataFrame) -> DataFrame:
    """Rows of `bronze.inventory_movements` as stock changes, dated by the day of their timestamp (UTC).

    An unknown movement changes nothing (ingest quarantines such rows before they reach bronze).
    """
    return movements.select(
        "sku",
        "location",
        F.to_date("timestamp").alias("event_date"),
        F.lit("movement").alias("source"),
        _by_movement(_NET_STOCK_SIGN).alias("net_stock_change"),
        _by_movement(_ON_ORDER_SIGN).alias("on_order_change"),
    )


def stock_changes(sales: DataFrame, movements: DataFrame) -> DataFrame:
    """Both sources in the one contract (`CHANGE_COLUMNS`); streaming or static frames alike."""
    return sales_changes(sales).unionByName(movement_changes(movements))
