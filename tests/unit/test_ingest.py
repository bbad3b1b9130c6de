"""Ingest pieces that need no Spark session: declared schemas, column resolution, mapping, formats."""

from __future__ import annotations

import dataclasses

import pytest

from replenish import config
from replenish.errors import ConfigError, ValidationError
from replenish.ingest.read import detect_format, entity_sources, format_of
from replenish.ingest.schemas import AS_OF, SCHEMAS, ColumnSpec, entity_schema
from replenish.ingest.validate import IngestConfig, IngestCounts, parse_mapping, resolve_columns
from replenish.io.catalog import INGEST_ENTITIES, table

# docs/tables.md, "Raw input files": required and optional columns per entity.
DOCUMENTED = {
    "sales": (("sku", "date", "quantity"), ("location", "price", "promo", "in_stock", "is_return")),
    "products": (
        ("sku",),
        ("name", "category", "subcategory", "brand", "unit_cost", "unit_price", "launch_date"),
    ),
    "locations": (("location",), ("name", "region", "location_type")),
    "interactions": (("user_id", "sku", "event", "timestamp"), ("location",)),
    "suppliers": (
        ("sku",),
        (
            "location",
            "supplier_id",
            "lead_time_mean_days",
            "lead_time_std_days",
            "moq",
            "pack_size",
            "ordering_cost",
            "unit_cost",
        ),
    ),
    "inventory": (("sku", "on_hand"), ("location", "snapshot_date", "on_order", "backorders")),
    "inventory_movements": (("event_id", "sku", "timestamp", "movement", "quantity"), ("location", "reference")),
}


@pytest.mark.parametrize("entity", INGEST_ENTITIES)
def test_every_entity_declares_the_documented_columns_and_catalog_keys(entity: str) -> None:
    schema = entity_schema(entity)
    required, optional = DOCUMENTED[entity]
    assert set(schema.required) == set(required)
    assert set(schema.optional) == set(optional)
    assert schema.keys == table(f"bronze.{entity}").keys


def test_bronze_types_follow_the_tables_doc() -> None:
    sales = {f.name: f.dataType.simpleString() for f in SCHEMAS["sales"].bronze_schema().fields}
    assert sales == {
        "sku": "string",
        "location": "string",
        "date": "date",
        "quantity": "double",
        "price": "double",
        "promo": "boolean",
        "in_stock": "boolean",
        "is_return": "boolean",
        "ingested_at": "timestamp",
        "source_file": "string",
    }
    interactions = {f.name: f.dataType.simpleString() for f in SCHEMAS["interactions"].bronze_schema().fields}
    assert interactions["timestamp"] == "timestamp"
    inventory = {f.name: f.dataType.simpleString() for f in SCHEMAS["inventory"].bronze_schema().fields}
    assert inventory["snapshot_date"] == "date" and inventory["on_hand"] == "double"


def test_quarantine_schema_is_raw_text_plus_reject_details() -> None:
    fields = {f.name: f.dataType.simpleString() for f in SCHEMAS["inventory"].quarantine_schema().fields}
    assert fields == {
        "sku": "string",
        "location": "string",
        "snapshot_date": "string",
        "on_hand": "string",
        "on_order": "string",
        "backorders": "string",
        "reason": "string",
        "row_number": "bigint",
        "source_file": "string",
        "ingested_at": "timestamp",
    }


def test_sales_defaults_for_missing_optional_columns() -> None:
    sales = SCHEMAS["sales"]
    defaults = {name: sales.column(name).default for name in sales.optional}
    assert defaults == {"location": "ALL", "price": None, "promo": False, "in_stock": True, "is_return": False}
    assert SCHEMAS["inventory"].column("snapshot_date").default is AS_OF


def test_column_spec_rejects_rules_that_do_not_fit_the_type() -> None:
    with pytest.raises(ConfigError, match="sign"):
        ColumnSpec("name", "string", sign="non_negative")
    with pytest.raises(ConfigError, match="allowed"):
        ColumnSpec("quantity", "double", allowed=("a",))


def test_unknown_entity_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="sales, products"):
        entity_schema("orders")


def test_resolve_columns_matches_exact_case_insensitive_and_bom_prefixed_names() -> None:
    plan = resolve_columns(["\ufeffSKU", " Date ", "quantity", "notes"], "sales", source="s.csv")
    assert plan.sources["sku"] == "\ufeffSKU"
    assert plan.sources["date"] == " Date "
    assert plan.sources["quantity"] == "quantity"
    assert plan.ignored == ("notes",)
    assert set(plan.missing) == {"location", "price", "promo", "in_stock", "is_return"}


def test_resolve_columns_applies_the_mapping_before_own_names() -> None:
    mapping = {"item": "sku", "day": "date", "qty": "quantity"}
    plan = resolve_columns(["item", "day", "qty", "quantity"], "sales", mapping)
    assert plan.sources["sku"] == "item" and plan.sources["date"] == "day" and plan.sources["quantity"] == "qty"
    assert plan.ignored == ("quantity",)


def test_resolve_columns_skips_read_metadata_columns() -> None:
    plan = resolve_columns(["sku", "_row_number", "_source_file", "_malformed_record"], "products")
    assert plan.ignored == ()


def test_missing_required_column_names_the_column_and_the_file() -> None:
    with pytest.raises(ValidationError) as error:
        resolve_columns(["sku", "date", "qty"], "sales", source="/data/sales.csv")
    message = str(error.value)
    assert "'quantity'" in message and "/data/sales.csv" in message and "--map" in message


def test_ambiguous_columns_are_an_error() -> None:
    with pytest.raises(ValidationError, match="all match"):
        resolve_columns(["sku", "date", "Quantity", "QUANTITY"], "sales")


def test_mapping_onto_an_unknown_column_or_twice_onto_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'qty' is not a sales column"):
        resolve_columns(["sku"], "sales", {"x": "qty"})
    with pytest.raises(ConfigError, match="several columns map onto one"):
        IngestConfig(column_mapping={"sales": {"a": "sku", "b": "sku"}})
    with pytest.raises(ConfigError, match="unknown entity"):
        IngestConfig(column_mapping={"orders": {"a": "sku"}})


def test_parse_mapping() -> None:
    assert parse_mapping(["qty=quantity", " store = location "]) == {"qty": "quantity", "store": "location"}
    for bad in ("qty", "=quantity", "qty="):
        with pytest.raises(ConfigError, match="their_name=our_name"):
            parse_mapping([bad])


def test_cli_mapping_extends_and_overrides_the_configured_one() -> None:
    cfg = IngestConfig(column_mapping={"sales": {"qty": "quantity", "item": "sku"}})
    merged = cfg.with_mapping("sales", {"units": "quantity", "item": "sku"})
    assert merged.mapping_for("sales") == {"item": "sku", "units": "quantity"}
    assert cfg.with_mapping("sales", {"qty": "sku"}).mapping_for("sales") == {"qty": "sku"}
    assert cfg.with_mapping("sales", {}) is cfg


def test_ingest_settings_load_from_the_profile_and_overrides() -> None:
    settings = config.load("local", ["ingest.column_mapping.sales.qty=quantity", "ingest.date_format=dd/MM/yyyy"])
    cfg = config.section(settings, "ingest", IngestConfig)
    assert cfg.mapping_for("sales") == {"qty": "quantity"}
    assert cfg.date_format == "dd/MM/yyyy" and cfg.allow_returns is False and cfg.csv_delimiter == ","
    with pytest.raises(ConfigError, match="unknown setting"):
        config.section(config.load("local", ["ingest.date_fmt=x"]), "ingest", IngestConfig)
    with pytest.raises(ConfigError, match="one character"):
        dataclasses.replace(cfg, csv_delimiter=";;")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sales.csv", "csv"),
        ("SALES.CSV", "csv"),
        ("part-0.csv.gz", "csv"),
        ("x.parquet", "parquet"),
        ("part-00000-abc.snappy.parquet", "parquet"),
        ("notes.txt", None),
        ("sales", None),
    ],
)
def test_format_of(name: str, expected: str | None) -> None:
    assert format_of(name) == expected


def test_detect_format_of_a_folder_by_its_files() -> None:
    assert detect_format("/raw/sales", ["_SUCCESS", ".part-0.csv.crc", "part-0.csv", "part-1.csv"]) == "csv"
    assert detect_format("/raw/sales", ["part-0.snappy.parquet", "_SUCCESS"]) == "parquet"
    assert detect_format("/raw/sales.csv") == "csv"
    with pytest.raises(ValidationError, match="mixes CSV and Parquet"):
        detect_format("/raw/sales", ["a.csv", "b.parquet"])
    with pytest.raises(ValidationError, match=r"no \.csv or \.parquet files"):
        detect_format("/raw/sales", ["_SUCCESS", "README.md"])
    with pytest.raises(ValidationError, match="--format"):
        detect_format("/raw/sales.txt")


def test_entity_sources_finds_folders_and_files_in_entity_order() -> None:
    entries = [("sales", True), ("products.csv", False), ("inventory.parquet", False), ("notes.txt", False)]
    assert entity_sources("/raw/", entries) == {
        "sales": "/raw/sales",
        "products": "/raw/products.csv",
        "inventory": "/raw/inventory.parquet",
    }


def test_entity_sources_rejects_ambiguity_and_emptiness() -> None:
    with pytest.raises(ValidationError, match="more than one input"):
        entity_sources("/raw", [("sales", True), ("sales.csv", False)])
    with pytest.raises(ValidationError, match="no entity inputs"):
        entity_sources("/raw", [("orders.csv", False)])


def test_counts_as_dict_sorts_reasons() -> None:
    counts = IngestCounts(rows_read=10, good=7, quarantined=3, by_reason={"sku is empty": 1, "duplicate key": 2})
    assert counts.as_dict() == {
        "rows_read": 10,
        "good": 7,
        "quarantined": 3,
        "quarantined_by_reason": {"duplicate key": 2, "sku is empty": 1},
    }
