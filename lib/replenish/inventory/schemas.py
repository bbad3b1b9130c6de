"""The inventory stage's gold tables: their schemas are the catalog's (replenish.io.catalog, docs/tables.md).

BI reads these tables directly, so every output is projected onto its schema with `conform`: the
column order and types declared in the catalog are the contract, whatever the computation adds along the way.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from replenish.errors import ValidationError
from replenish.io.catalog import schema, table

__all__ = [
    "FORECAST_ACCURACY_SCHEMA",
    "INVENTORY_SIMULATION_SCHEMA",
    "MODEL_SELECTION_SCHEMA",
    "REPLENISHMENT_PLAN_SCHEMA",
    "SAFETY_STOCK_SCHEMA",
    "conform",
    "schema",
]

MODEL_SELECTION_SCHEMA = table("gold.model_selection").schema
SAFETY_STOCK_SCHEMA = table("gold.safety_stock").schema
REPLENISHMENT_PLAN_SCHEMA = table("gold.replenishment_plan").schema
FORECAST_ACCURACY_SCHEMA = table("gold.forecast_accuracy").schema
INVENTORY_SIMULATION_SCHEMA = table("gold.inventory_simulation").schema


def conform(df: DataFrame, target: StructType) -> DataFrame:
    """Select `target`'s columns from `df`, in its order and cast to its types.

    Raises:
        ValidationError: `df` lacks a column of the schema (a programming error worth a clear message).
    """
    missing = [f.name for f in target.fields if f.name not in df.columns]
    if missing:
        raise ValidationError(f"cannot conform to the output schema: missing column(s) {', '.join(missing)}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in target.fields])
