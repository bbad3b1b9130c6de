"""The declared schema of each raw entity: its columns, their bronze types, defaults and value rules.

One `EntitySchema` per entity is the single source of what ingest accepts (docs/tables.md, "Raw input
files" and "bronze"): which columns a file must have, what a missing optional column becomes, and which
values send a row to the quarantine. Validation, the bronze and quarantine table schemas and the
documentation all follow from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import types as T

from replenish.errors import ConfigError
from replenish.io.catalog import INGEST_ENTITIES, table

ColumnType = Literal["string", "date", "timestamp", "double", "boolean"]
Sign = Literal["non_negative", "positive"]

# Columns that read_raw adds to every raw frame; the leading underscore keeps them apart from user columns.
ROW_NUMBER = "_row_number"
SOURCE_FILE = "_source_file"
MALFORMED_RECORD = "_malformed_record"
METADATA_COLUMNS = (ROW_NUMBER, SOURCE_FILE, MALFORMED_RECORD)

# Columns ingest adds to the bronze and quarantine tables.
INGESTED_AT = "ingested_at"
BRONZE_SOURCE_FILE = "source_file"
QUARANTINE_REASON = "reason"
QUARANTINE_ROW_NUMBER = "row_number"
QUARANTINE_KEYS = (BRONZE_SOURCE_FILE, QUARANTINE_ROW_NUMBER)


class _AsOf:
    """Default of a column that takes the ingest run's business date (an undated snapshot)."""

    def __repr__(self) -> str:
        return "AS_OF"


AS_OF: Any = _AsOf()

_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a raw entity file.

    Attributes:
        name: the column name in bronze (users map their own names onto it).
        type: the bronze type; raw text is parsed into it, and a value that does not parse
            quarantines the row.
        required: a file without this column is rejected as a whole.
        default: the value of every row when an optional column is absent from the file, and of an
            empty cell in an optional non-key column. `AS_OF` means the run's business date.
        sign: `non_negative` or `positive` for numbers that cannot be below zero (or zero).
        allowed: the accepted values of a string column, matched case-insensitively and stored in
            lower case (e.g. interaction events).
    """

    name: str
    type: ColumnType = "string"
    required: bool = False
    default: Any = None
    sign: Sign | None = None
    allowed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in _SPARK_TYPES:
            raise ConfigError(f"column {self.name}: unknown type {self.type!r}")
        if self.sign is not None and self.type != "double":
            raise ConfigError(f"column {self.name}: a sign rule needs a double column")
        if self.allowed and self.type != "string":
            raise ConfigError(f"column {self.name}: allowed values need a string column")

    @property
    def spark_type(self) -> T.DataType:
        return _SPARK_TYPES[self.type]


@dataclass(frozen=True)
class EntitySchema:
    """What a raw file of one entity holds, and what its bronze table keeps.

    Attributes:
        entity: sales, products, locations, interactions, suppliers or inventory.
        columns: the declared columns, in bronze order.
        keys: the columns that identify a row (from the catalog's `bronze.<entity>`); a key repeated
            within one ingest is a duplicate, and a key already in bronze is not added again.
    """

    entity: str
    columns: tuple[ColumnSpec, ...]
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        unknown = [key for key in self.keys if key not in names]
        if unknown:
            raise ConfigError(f"{self.entity}: key column(s) {unknown} are not declared")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if not column.required)

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.entity} has no column {name!r}")

    def bronze_schema(self) -> T.StructType:
        """The schema of `bronze.<entity>`: the typed columns, then `ingested_at` and `source_file`."""
        return T.StructType(
            [
                *[T.StructField(column.name, column.spark_type) for column in self.columns],
                T.StructField(INGESTED_AT, T.TimestampType()),
                T.StructField(BRONZE_SOURCE_FILE, T.StringType()),
            ]
        )

    def quarantine_schema(self) -> T.StructType:
        """The schema of `quarantine.<entity>`: every declared column as raw text, then the reject details.

        The columns are the declared ones (not the file's own), so the table keeps one schema whatever
        files land in it; a column absent from the file is null here.
        """
        return T.StructType(
            [
                *[T.StructField(column.name, T.StringType()) for column in self.columns],
                T.StructField(QUARANTINE_REASON, T.StringType()),
                T.StructField(QUARANTINE_ROW_NUMBER, T.LongType()),
                T.StructField(BRONZE_SOURCE_FILE, T.StringType()),
                T.StructField(INGESTED_AT, T.TimestampType()),
            ]
        )


EVENTS = ("view", "add_to_cart", "purchase")
# What an inventory movement does (docs/streaming.md): receipt (on hand up, on order down), adjustment
# (on hand up or down: counts, damage, returns to stock), order_placed / order_cancelled (on order).
MOVEMENTS = ("receipt", "adjustment", "order_placed", "order_cancelled")
ALL_LOCATIONS = "ALL"

_COLUMNS: dict[str, tuple[ColumnSpec, ...]] = {
    "sales": (
        ColumnSpec("sku", required=True),
        ColumnSpec("location", default=ALL_LOCATIONS),
        ColumnSpec("date", "date", required=True),
        ColumnSpec("quantity", "double", required=True),
        ColumnSpec("price", "double", sign="non_negative"),
        ColumnSpec("promo", "boolean", default=False),
        ColumnSpec("in_stock", "boolean", default=True),
        ColumnSpec("is_return", "boolean", default=False),
    ),
    "products": (
        ColumnSpec("sku", required=True),
        ColumnSpec("name"),
        ColumnSpec("category"),
        ColumnSpec("subcategory"),
        ColumnSpec("brand"),
        ColumnSpec("unit_cost", "double", sign="non_negative"),
        ColumnSpec("unit_price", "double", sign="non_negative"),
        ColumnSpec("launch_date", "date"),
    ),
    "locations": (
        ColumnSpec("location", required=True),
        ColumnSpec("name"),
        ColumnSpec("region"),
        ColumnSpec("location_type"),
    ),
    "interactions": (
        ColumnSpec("user_id", required=True),
        ColumnSpec("sku", required=True),
        ColumnSpec("event", required=True, allowed=EVENTS),
        ColumnSpec("timestamp", "timestamp", required=True),
        ColumnSpec("location"),
    ),
    "suppliers": (
        ColumnSpec("sku", required=True),
        ColumnSpec("location", default=ALL_LOCATIONS),
        ColumnSpec("supplier_id"),
        ColumnSpec("lead_time_mean_days", "double", sign="non_negative"),
        ColumnSpec("lead_time_std_days", "double", sign="non_negative"),
        ColumnSpec("moq", "double", sign="non_negative"),
        ColumnSpec("pack_size", "double", sign="positive"),
        ColumnSpec("ordering_cost", "double", sign="non_negative"),
        ColumnSpec("unit_cost", "double", sign="non_negative"),
    ),
    "inventory": (
        ColumnSpec("sku", required=True),
        ColumnSpec("location", default=ALL_LOCATIONS),
        ColumnSpec("snapshot_date", "date", default=AS_OF),
        ColumnSpec("on_hand", "double", required=True, sign="non_negative"),
        ColumnSpec("on_order", "double", default=0.0, sign="non_negative"),
        ColumnSpec("backorders", "double", default=0.0, sign="non_negative"),
    ),
    "inventory_movements": (
        ColumnSpec("event_id", required=True),
        ColumnSpec("sku", required=True),
        ColumnSpec("location", default=ALL_LOCATIONS),
        ColumnSpec("timestamp", "timestamp", required=True),
        ColumnSpec("movement", required=True, allowed=MOVEMENTS),
        ColumnSpec("quantity", "double", required=True),
        ColumnSpec("reference"),
    ),
}

SCHEMAS: dict[str, EntitySchema] = {
    entity: EntitySchema(entity, _COLUMNS[entity], table(f"bronze.{entity}").keys) for entity in INGEST_ENTITIES
}


def entity_schema(entity: str) -> EntitySchema:
    """The declared schema of `entity`; raises ConfigError naming the known entities otherwise."""
    try:
        return SCHEMAS[entity]
    except KeyError:
        raise ConfigError(f"unknown entity {entity!r}; choose one of {', '.join(INGEST_ENTITIES)}") from None
