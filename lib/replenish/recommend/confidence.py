"""Implicit feedback: how sure we are that a user likes a SKU, from their events.

Each event adds its type's weight (view < add_to_cart < purchase, `recommend.*_weight`) decayed by
age: `weight × 0.5 ** (age_days / half_life_days)`, where age is measured from the newest event of
the input (not the wall clock, so a rerun on the same file gives the same numbers). The sum over a
(user, SKU) pair is ALS's implicit rating r; ALS turns it into confidence `1 + alpha × r`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from replenish.errors import ValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

INTERACTION_COLUMNS = ("user_id", "sku", "event", "timestamp")


def require_interactions(interactions: DataFrame) -> None:
    """Fail with the missing column names, before any Spark job runs."""
    missing = [c for c in INTERACTION_COLUMNS if c not in interactions.columns]
    if missing:
        raise ValidationError(f"interactions lack column(s) {missing}; have {interactions.columns}")


def event_weights(
    interactions: DataFrame, *, weights: dict[str, float], half_life_days: float, as_of: F.Column | None = None
) -> DataFrame:
    """Add `weight`: the event type's weight decayed by the event's age in days.

    Events of a type not in `weights` weigh 0 (and are dropped). `as_of` defaults to the newest
    timestamp of `interactions`.
    """
    require_interactions(interactions)
    type_weight = F.lit(None).cast("double")
    for name, value in weights.items():
        type_weight = F.when(F.col("event") == name, F.lit(float(value))).otherwise(type_weight)
    if as_of is None:
        newest = interactions.agg(F.max("timestamp")).first()
        as_of = F.lit(newest[0] if newest is not None else None).cast("timestamp")
    reference = as_of
    age_days = (F.col("timestamp").cast("double") - reference.cast("double")) / -86_400.0
    decay = F.lit(1.0) if half_life_days <= 0 else F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / half_life_days)
    rows = interactions.where(F.col("user_id").isNotNull() & F.col("sku").isNotNull())
    return rows.withColumn("weight", type_weight * decay).where(F.col("weight") > 0)


def confidence(weighted: DataFrame, *, keys: tuple[str, str] = ("user_id", "sku")) -> DataFrame:
    """Sum the event weights per (user, SKU) `keys` into `rating`; also `purchased` (any purchase)."""
    return weighted.groupBy(*keys).agg(
        F.sum("weight").alias("rating"),
        F.max(F.col("event") == "purchase").alias("purchased"),
        F.max("timestamp").alias("last_timestamp"),
    )


def time_split(weighted: DataFrame, *, holdout_share: float) -> tuple[DataFrame, DataFrame]:
    """Split events in time per user: each user's last `holdout_share` of events is the test set.

    A user with a single event keeps it in training (nothing to learn from otherwise). Ties in
    time are broken by SKU and event so the split is deterministic.
    """
    order = Window.partitionBy("user_id").orderBy("timestamp", "sku", "event")
    ranked = weighted.select(
        "*",
        F.row_number().over(order).alias("_position"),
        F.count(F.lit(1)).over(Window.partitionBy("user_id")).alias("_events"),
    )
    cut = F.greatest(F.lit(1), F.ceil(F.col("_events") * (1.0 - holdout_share)))
    held_out = (F.col("_events") > 1) & (F.col("_position") > cut)
    train = ranked.where(~held_out).drop("_position", "_events")
    test = ranked.where(held_out).drop("_position", "_events")
    return train, test
