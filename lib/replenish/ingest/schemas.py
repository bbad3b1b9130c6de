"""The declared schema of each raw entity: its columns, their bronze types, defaults and value rules.

The columns and their types are the catalog's `bronze.<entity>` (replenish.io.catalog); this module adds
what ingest enforces on them (docs/tables.md, "Raw input files" and "bronze"): which columns a file must
have, what a missing optional column becomes, and which values send a row to the quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from pyspark.sql import types as T

from replenish.errors import ConfigError
from replenish.io.catalog import BRONZE_COLUMNS, INGEST_ENTITIES, parse_columns, table

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
        """The schema of `bronze.<entity>` (the catalog's): the typed columns, then `ingested_at` and `source_file`."""
        return table(f"bronze.{self.entity}").schema

    def quarantine_schema(self) -> T.StructType:
        """The schema of `quarantine.<entity>` (the catalog's): declared columns as raw text, then reject details.

        The columns are the declared ones (not the file's own), so the table keeps one schema whatever
        files land in it; a column absent from the file is null here.
        """
        return table(f"quarantine.{self.entity}").schema


EVENTS = ("view", "add_to_cart", "purchase")
# What an inventory movement does (docs/streaming.md): receipt (on hand up, on order down), adjustment
# (on hand up or down: counts, damage, returns to stock), order_placed / order_cancelled (on order).
MOVEMENTS = ("receipt", "adjustment", "order_placed", "order_cancelled")
ALL_LOCATIONS = "ALL"


@dataclass(frozen=True)
class _Rule:
    """What ingest enforces on one catalog column of an entity (the fields of `ColumnSpec` but its type)."""

    name: str
    required: bool = False
    default: Any = None
    sign: Sign | None = None
    allowed: tuple[str, ...] = ()


_RULES: dict[str, tuple[_Rule, ...]] = {
    "sales": (
        _Rule("sku", required=True),
        _Rule("location", default=ALL_LOCATIONS),
        _Rule("date", required=True),
        _Rule("quantity", required=True),
        _Rule("price", sign="non_negative"),
        _Rule("promo", default=False),
        _Rule("in_stock", default=True),
        _Rule("is_return", default=False),
    ),
    "products": (
        _Rule("sku", required=True),
        _Rule("unit_cost", sign="non_negative"),
        _Rule("unit_price", sign="non_negative"),
    ),
    "locations": (_Rule("location", required=True),),
    "interactions": (
        _Rule("user_id", required=True),
        _Rule("sku", required=True),
        _Rule("event", required=True, allowed=EVENTS),
        _Rule("timestamp", required=True),
    ),
    "suppliers": (
        _Rule("sku", required=True),
        _Rule("location", default=ALL_LOCATIONS),
        _Rule("lead_time_mean_days", sign="non_negative"),
        _Rule("lead_time_std_days", sign="non_negative"),
        _Rule("moq", sign="non_negative"),
        _Rule("pack_size", sign="positive"),
        _Rule("ordering_cost", sign="non_negative"),
        _Rule("unit_cost", sign="non_negative"),
    ),
    "inventory": (
        _Rule("sku", required=True),
        _Rule("location", default=ALL_LOCATIONS),
        _Rule("snapshot_date", default=AS_OF),
        _Rule("on_hand", required=True, sign="non_negative"),
        _Rule("on_order", default=0.0, sign="non_negative"),
        _Rule("backorders", default=0.0, sign="non_negative"),
    ),
    "inventory_movements": (
        _Rule("event_id", required=True),
        _Rule("sku", required=True),
        _Rule("location", default=ALL_LOCATIONS),
        _Rule("timestamp", required=True),
        _Rule("movement", required=True, allowed=MOVEMENTS),
        _Rule("quantity", required=True),
    ),
}


def _columns(entity: str) -> tuple[ColumnSpec, ...]:
    """The catalog's columns of `bronze.<entity>` (names, order, types) with this module's rules on them."""
    rules = {rule.name: rule for rule in _RULES[entity]}
    types = dict(parse_columns(BRONZE_COLUMNS[entity]))
    unknown = sorted(set(rules) - set(types))
    if unknown:
        raise ConfigError(f"{entity}: rules for column(s) {unknown} that bronze.{entity} does not declare")
    columns = []
    for name, kind in types.items():
        rule = rules.get(name, _Rule(name))
        columns.append(ColumnSpec(name, cast(ColumnType, kind), rule.required, rule.default, rule.sign, rule.allowed))
    return tuple(columns)


SCHEMAS: dict[str, EntitySchema] = {
    entity: EntitySchema(entity, _columns(entity), table(f"bronze.{entity}").keys) for entity in INGEST_ENTITIES
}


def entity_schema(entity: str) -> EntitySchema:
    """The declared schema of `entity`; raises ConfigError naming the known entities otherwise."""
    try:
        return SCHEMAS[entity]
    except KeyError:
        raise ConfigError(f"unknown entity {entity!r}; choose one of {', '.join(INGEST_ENTITIES)}") from None
