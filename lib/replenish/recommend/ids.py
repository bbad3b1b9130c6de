"""String user and SKU ids to the integer indices ALS needs, stable across runs.

The map is a table (`silver.user_index`, `silver.sku_index`): a run keeps every index already
assigned and numbers only the ids it has not seen, after the current maximum, so an id keeps its
index for as long as the table lives. Indices are computed with Spark (`zipWithIndex` on the sorted
new ids), nothing is collected to the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from replenish.errors import ValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MAX_INDEX = 2**31 - 1  # ALS takes Int ids


def id_map_schema(id_column: str, index_column: str) -> StructType:
    return StructType([StructField(id_column, StringType(), False), StructField(index_column, IntegerType(), False)])


def extend_id_map(ids: DataFrame, existing: DataFrame | None, *, id_column: str, index_column: str) -> DataFrame:
    """The rows to add to an id map: the ids of `ids` not yet in `existing`, numbered after its maximum.

    Args:
        ids: any frame with `id_column` (duplicates and nulls are ignored).
        existing: the current map (`id_column`, `index_column`) or None on the first run.

    Returns:
        (`id_column`, `index_column`) for the new ids only; empty when every id is known.

    Raises:
        ValidationError: the map would pass 2^31 - 1 entries (ALS cannot index more).
    """
    spark = ids.sparkSession
    distinct = ids.select(F.col(id_column).cast("string").alias(id_column)).where(F.col(id_column).isNotNull())
    distinct = distinct.distinct()
    offset = 0
    if existing is not None:
        distinct = distinct.join(existing.select(id_column), id_column, "left_anti")
        top = existing.agg(F.max(index_column)).first()
        offset = 0 if top is None or top[0] is None else int(top[0]) + 1
    new_count = distinct.count()
    if offset + new_count - 1 > MAX_INDEX:
        raise ValidationError(
            f"{id_column}: {offset + new_count} distinct ids exceed the {MAX_INDEX + 1} that ALS's integer "
            f"indices can hold ({offset} already mapped, {new_count} new)"
        )
    schema = id_map_schema(id_column, index_column)
    if new_count == 0:
        return spark.createDataFrame([], schema)
    numbered = distinct.orderBy(id_column).rdd.map(lambda row: row[0]).zipWithIndex()
    return spark.createDataFrame(numbered.map(lambda pair: (pair[0], int(pair[1]) + offset)), schema)


def to_indices(frame: DataFrame, id_map: DataFrame, *, id_column: str, index_column: str) -> DataFrame:
    """Add `index_column` to `frame` by its `id_column` (an inner join: unmapped ids are dropped)."""
    return frame.join(id_map, id_column)


def to_ids(frame: DataFrame, id_map: DataFrame, *, id_column: str, index_column: str) -> DataFrame:
    """Replace `index_column` of `frame` by `id_column`, the inverse of `to_indices`."""
    return frame.join(id_map, index_column).drop(index_column)
