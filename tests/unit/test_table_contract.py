"""docs/tables.md documents exactly the catalog's columns, and the modules that list columns take them from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replenish.data.generate import OUTPUT_COLUMNS, TRUTH_COLUMNS
from replenish.errors import ConfigError
from replenish.forecast.distributed import TABLE_COLUMNS
from replenish.ingest.schemas import SCHEMAS
from replenish.io.catalog import (
    BRONZE_COLUMNS,
    ENTITIES,
    INGEST_ENTITIES,
    TABLES,
    parse_columns,
    schema,
    table,
    with_required,
)
from replenish.quality import QUALITY_COLUMNS, QUALITY_TABLE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
# `### layer.table` (or `### \`quarantine.<entity>\``) opens a table's section; any other heading closes it.
TABLE_HEADING = re.compile(r"^#{2,3} `?([a-z]+\.[a-z_<>]+)`?\s*$")
QUARANTINE = "quarantine.<entity>"
ENTITY_COLUMNS = "<entity columns>"


def documented_columns() -> dict[str, list[tuple[str, str]]]:
    """(column, type) rows of the `| column | type | meaning |` table under each table heading, in order."""
    tables: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            match = TABLE_HEADING.match(line)
            current = match.group(1) if match else None
            continue
        if current is None or not line.startswith("|"):
            continue
        cells = [cell.strip().strip("`") for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if cells[0] == "column" or set(cells[0]) <= {"-"}:
            continue
        assert len(cells) == 3, f"{current}: a column row needs column, type and meaning: {line!r}"
        tables.setdefault(current, []).append((cells[0], cells[1]))
    return tables


def expanded() -> dict[str, list[tuple[str, str]]]:
    """`documented_columns` with `quarantine.<entity>` written out for every ingest entity."""
    tables = documented_columns()
    template = tables.pop(QUARANTINE, [])
    for entity in INGEST_ENTITIES:
        rows: list[tuple[str, str]] = []
        for name, kind in template:
            if name == ENTITY_COLUMNS:
                rows += [(column, kind) for column, _ in parse_columns(BRONZE_COLUMNS[entity])]
            else:
                rows.append((name, kind))
        tables[f"quarantine.{entity}"] = rows
    return tables


def test_every_catalog_table_is_documented_and_nothing_else() -> None:
    assert set(expanded()) == set(TABLES)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_documented_columns_are_the_catalog_columns(name: str) -> None:
    spec = table(name)
    rows = expanded()[name]
    fixed = [(column, kind) for column, kind in rows if "<" not in column]
    assert fixed == list(parse_columns(spec.columns)), name
    patterns = {column.split("<", 1)[0] for column, _ in rows if "<" in column}
    assert patterns == set(spec.open_prefixes), name


def test_every_catalog_table_declares_its_columns_and_keys_among_them() -> None:
    for spec in TABLES.values():
        assert spec.columns, spec.name
        names = spec.column_names
        assert len(set(names)) == len(names), spec.name
        assert set(spec.keys) <= set(names), spec.name
        assert set(spec.partition_by) <= set(names), spec.name
        assert not any(spec.is_open_column(name) for name in names), spec.name


def test_open_columns_are_recognised_by_prefix() -> None:
    demand = table("silver.demand")
    assert demand.is_open_column("lag_7") and demand.is_open_column("rolling_std_28")
    assert not demand.is_open_column("views_lag_1")
    assert not table("gold.forecast").is_open_column("lag_7")


def test_modules_that_list_columns_take_them_from_the_catalog() -> None:
    for entity in INGEST_ENTITIES:
        assert SCHEMAS[entity].bronze_schema() == table(f"bronze.{entity}").schema
        assert SCHEMAS[entity].quarantine_schema() == table(f"quarantine.{entity}").schema
        assert (*SCHEMAS[entity].names, "ingested_at", "source_file") == table(f"bronze.{entity}").column_names
    for entity in ENTITIES:
        assert OUTPUT_COLUMNS[entity] == (*SCHEMAS[entity].names, *TRUTH_COLUMNS.get(entity, ()))
    for name, columns in TABLE_COLUMNS.items():
        assert columns == table(name).column_names
    assert table(QUALITY_TABLE).column_names == QUALITY_COLUMNS


def test_schema_text_parses_without_a_jvm_and_rejects_unknown_types() -> None:
    parsed = schema("sku string, n long, factors array<float>")
    assert parsed.simpleString() == "struct<sku:string,n:bigint,factors:array<float>>"
    assert all(field.nullable for field in parsed.fields)
    with pytest.raises(ConfigError, match="unknown type"):
        schema("sku varchar")


def test_with_required_marks_only_the_named_columns_not_null() -> None:
    strict = with_required(table("silver.sku_index").schema, ("sku",))
    assert [(f.name, f.nullable) for f in strict.fields] == [("sku", False), ("sku_index", True)]
    with pytest.raises(ConfigError, match="not in the schema"):
        with_required(table("silver.sku_index").schema, ("user_id",))
