"""Ingest: raw entity files (CSV or Parquet) -> typed bronze tables, bad rows -> quarantine with a reason."""

from replenish.ingest.read import detect_format, entity_sources, prepare_session, read_raw
from replenish.ingest.schemas import SCHEMAS, ColumnSpec, EntitySchema, entity_schema
from replenish.ingest.validate import (
    ColumnPlan,
    IngestConfig,
    IngestCounts,
    Validated,
    parse_mapping,
    resolve_columns,
    validate,
)

__all__ = [
    "SCHEMAS",
    "ColumnPlan",
    "ColumnSpec",
    "EntitySchema",
    "IngestConfig",
    "IngestCounts",
    "Validated",
    "detect_format",
    "entity_schema",
    "entity_sources",
    "parse_mapping",
    "prepare_session",
    "read_raw",
    "resolve_columns",
    "validate",
]
