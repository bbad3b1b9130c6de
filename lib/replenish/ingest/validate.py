"""Validate a raw entity file: type every value, split good rows from quarantined ones, say why.

`validate` is a pure DataFrame transform (no I/O): it takes the raw frame that `read_raw` returns (the
file's own columns as text, or typed for Parquet, plus `_row_number` and `_source_file`) and returns
every input row exactly once, either typed for bronze or, with a human reason, for the quarantine.
A bad value never fails the job: numbers, dates and booleans are parsed with `try_cast`-style
expressions, which give null instead of raising, also under ANSI mode.

Example:
    ```python
    raw = read_raw(spark, "data/raw/sales")
    validated = validate(raw, "sales", IngestConfig(), source="data/raw/sales")
    validated.good          # bronze.sales rows
    validated.quarantine    # raw text, reason, row_number, source_file, ingested_at
    ```
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from replenish.errors import ConfigError, ValidationError
from replenish.ingest.schemas import (
    AS_OF,
    BRONZE_SOURCE_FILE,
    INGESTED_AT,
    MALFORMED_RECORD,
    METADATA_COLUMNS,
    QUARANTINE_REASON,
    QUARANTINE_ROW_NUMBER,
    ROW_NUMBER,
    SCHEMAS,
    SOURCE_FILE,
    ColumnSpec,
    EntitySchema,
    entity_schema,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

ISO_DATE_PATTERN = r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
TIME_PARSER_POLICY = "spark.sql.legacy.timeParserPolicy"

# Internal columns of `Validated.rows`.
_TEXT = "_text_"  # raw value as text, untouched: what the quarantine keeps
_VALUE = "_value_"  # trimmed text, empty -> null: what gets parsed
_TYPED = "_typed_"  # the source's own value when it is not text (Parquet): parsed without a round trip
_REASONS = "_reasons"
_KINDS = "_reason_kinds"


@dataclass(frozen=True)
class IngestConfig:
    """Settings of `replenish ingest` (the `ingest:` section of the settings).

    Attributes:
        allow_returns: when false, a negative sales quantity is accepted only on a row whose
            `is_return` is true. When true, a negative quantity is itself a return: `is_return`
            becomes true where the file leaves it empty (an explicit false still quarantines the row).
        column_mapping: per entity, the user's column names onto ours, e.g.
            `{"sales": {"qty": "quantity", "store": "location"}}`.
        date_format: a Spark datetime pattern (`dd/MM/yyyy`) for date columns; None accepts ISO
            dates (`yyyy-MM-dd`, optionally followed by a time, which is dropped).
        timestamp_format: a Spark datetime pattern for timestamp columns; None accepts ISO timestamps
            (`yyyy-MM-dd HH:mm:ss`, `T` separator, optional fraction and zone offset).
        csv_delimiter: the field separator of CSV files (one character).
    """

    allow_returns: bool = False
    column_mapping: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    date_format: str | None = None
    timestamp_format: str | None = None
    csv_delimiter: str = ","

    def __post_init__(self) -> None:
        for entity, mapping in self.column_mapping.items():
            schema = entity_schema(entity)
            if not isinstance(mapping, Mapping):
                raise ConfigError(f"ingest.column_mapping.{entity}: expected {{their_name: our_name}}, got {mapping!r}")
            check_mapping(mapping, schema, where=f"ingest.column_mapping.{entity}")
        if len(self.csv_delimiter) != 1:
            raise ConfigError(f"ingest.csv_delimiter must be one character, got {self.csv_delimiter!r}")
        for name in ("date_format", "timestamp_format"):
            if getattr(self, name) == "":
                raise ConfigError(f"ingest.{name} must be a datetime pattern or null, got an empty string")

    def mapping_for(self, entity: str) -> dict[str, str]:
        """The column mapping of `entity`: their column name -> our column name."""
        return dict(self.column_mapping.get(entity, {}))

    def with_mapping(self, entity: str, mapping: Mapping[str, str]) -> IngestConfig:
        """A copy whose mapping of `entity` is extended by `mapping` (e.g. from `--map`), which wins where
        both name the same column of theirs or of ours."""
        if not mapping:
            return self
        kept = {theirs: ours for theirs, ours in self.mapping_for(entity).items() if ours not in mapping.values()}
        merged = {**self.column_mapping, entity: {**kept, **mapping}}
        return dataclasses.replace(self, column_mapping=merged)


def check_mapping(mapping: Mapping[str, str], schema: EntitySchema, *, where: str) -> None:
    """Raise ConfigError when a mapping targets an undeclared column, or two names target one column."""
    unknown = sorted(target for target in mapping.values() if target not in schema.names)
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(map(repr, unknown))} is not a {schema.entity} column; "
            f"map onto one of {', '.join(schema.names)}"
        )
    by_target: dict[str, list[str]] = {}
    for theirs, ours in mapping.items():
        by_target.setdefault(ours, []).append(theirs)
    clashes = {ours: theirs for ours, theirs in by_target.items() if len(theirs) > 1}
    if clashes:
        text = "; ".join(f"{', '.join(theirs)} -> {ours}" for ours, theirs in sorted(clashes.items()))
        raise ConfigError(f"{where}: several columns map onto one: {text}")


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """Parse `--map their_name=our_name` options into a mapping."""
    mapping: dict[str, str] = {}
    for item in items:
        theirs, sep, ours = item.partition("=")
        if not sep or not theirs.strip() or not ours.strip():
            raise ConfigError(f"--map expects their_name=our_name, got {item!r}")
        mapping[theirs.strip()] = ours.strip()
    return mapping


@dataclass(frozen=True)
class ColumnPlan:
    """Which column of the file feeds each declared column.

    Attributes:
        sources: declared column -> the file's column, or None when the file lacks it (a default applies).
        ignored: the file's columns that feed nothing (they are not kept).
    """

    sources: dict[str, str | None]
    ignored: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for name, source in self.sources.items() if source is None)


def _normalized(name: str) -> str:
    return name.lstrip("\ufeff").strip().lower()


def resolve_columns(
    file_columns: Sequence[str],
    entity: str,
    mapping: Mapping[str, str] | None = None,
    *,
    source: str = "input",
) -> ColumnPlan:
    """Match a file's columns to the declared columns of `entity`.

    A declared column is fed by the file column mapped onto it, else by the column of the same name,
    else by the one column whose name matches ignoring case and surrounding spaces (`SKU `).

    Args:
        file_columns: the file's header (metadata columns of `read_raw` are skipped).
        entity: the entity the file holds.
        mapping: their column name -> our column name.
        source: the file or folder, for error messages.

    Raises:
        ValidationError: a required column is missing (the message names it and the file), or a
            declared column matches several file columns.
        ConfigError: the mapping targets an undeclared column or maps two columns onto one.
    """
    schema = entity_schema(entity)
    mapping = dict(mapping or {})
    check_mapping(mapping, schema, where=f"column mapping of {entity}")
    available = [name for name in file_columns if name not in METADATA_COLUMNS]
    sources: dict[str, str | None] = {name: None for name in schema.names}
    used: set[str] = set()
    for theirs, ours in mapping.items():
        if theirs in available:
            sources[ours] = theirs
            used.add(theirs)
    for name in schema.names:
        if sources[name] is not None:
            continue
        candidates = [c for c in available if c not in used and c == name] or [
            c for c in available if c not in used and _normalized(c) == name
        ]
        if len(candidates) > 1:
            raise ValidationError(
                f"{source}: columns {', '.join(map(repr, candidates))} all match {entity} column {name!r}; "
                f"rename or map one of them"
            )
        if candidates:
            sources[name] = candidates[0]
            used.add(candidates[0])
    missing = [name for name in schema.required if sources[name] is None]
    if missing:
        mapped = ", ".join(f"{theirs}={ours}" for theirs, ours in mapping.items()) or "none"
        raise ValidationError(
            f"{source}: required {entity} column(s) {', '.join(map(repr, missing))} missing; "
            f"the file has {', '.join(map(repr, available)) or 'no columns'} (mapping: {mapped}). "
            f"Map your own names with --map their_name={missing[0]} or ingest.column_mapping.{entity}"
        )
    return ColumnPlan(sources=sources, ignored=tuple(c for c in available if c not in used))


@dataclass(frozen=True)
class IngestCounts:
    """What one ingest of one entity saw.

    Attributes:
        rows_read: data rows in the input.
        good: rows that passed every check (bound for bronze).
        quarantined: rows with at least one reason.
        by_reason: rows per kind of reason; a row with several reasons counts under each.
    """

    rows_read: int
    good: int
    quarantined: int
    by_reason: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "good": self.good,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(sorted(self.by_reason.items())),
        }


@dataclass(frozen=True)
class Validated:
    """The outcome of `validate`: every input row once, typed and with its reasons (none when good).

    Attributes:
        entity: the entity validated.
        rows: all rows, with the bronze columns, the raw text and the reasons (internal columns start
            with `_`); `good` and `quarantine` are its two halves.
        columns: which file column fed each declared column.
    """

    entity: str
    rows: DataFrame
    columns: ColumnPlan

    @property
    def schema(self) -> EntitySchema:
        return SCHEMAS[self.entity]

    @property
    def good(self) -> DataFrame:
        """Rows for `bronze.<entity>`: the declared columns typed, then `ingested_at`, `source_file`."""
        return self.rows.where(F.size(_KINDS) == 0).select(
            *[_nullable(F.col(name), name) for name in self.schema.names],
            _nullable(F.col(INGESTED_AT), INGESTED_AT),
            _nullable(F.col(SOURCE_FILE), BRONZE_SOURCE_FILE),
        )

    @property
    def quarantine(self) -> DataFrame:
        """Rows for `quarantine.<entity>`: the declared columns as raw text, then `reason`, `row_number`,
        `source_file`, `ingested_at`."""
        return self.rows.where(F.size(_KINDS) > 0).select(
            *[_nullable(F.col(_TEXT + name), name) for name in self.schema.names],
            _nullable(F.concat_ws("; ", _REASONS), QUARANTINE_REASON),
            _nullable(F.col(ROW_NUMBER), QUARANTINE_ROW_NUMBER),
            _nullable(F.col(SOURCE_FILE), BRONZE_SOURCE_FILE),
            _nullable(F.col(INGESTED_AT), INGESTED_AT),
        )

    def persist(self) -> Validated:
        """Keep the validated rows (memory, spilling to disk) for the counts and the two writes."""
        from pyspark import StorageLevel

        return dataclasses.replace(self, rows=self.rows.persist(StorageLevel.MEMORY_AND_DISK))

    def unpersist(self) -> None:
        self.rows.unpersist()

    def counts(self) -> IngestCounts:
        """Count rows read, good and quarantined by reason: one small aggregate (a Spark job).

        Each row is exploded into its reason kinds (a good row into one null kind); a row's first kind
        (position 0) counts the row itself once.
        """
        exploded = self.rows.select(F.posexplode_outer(_KINDS).alias("position", "kind"))
        totals = exploded.groupBy("kind").agg(
            F.count(F.lit(1)).alias("rows"), F.sum(F.when(F.col("position") == 0, 1).otherwise(0)).alias("first")
        )
        good, quarantined, by_reason = 0, 0, {}
        for row in totals.collect():
            if row["kind"] is None:
                good = int(row["rows"])
            else:
                by_reason[row["kind"]] = int(row["rows"])
                quarantined += int(row["first"])
        return IngestCounts(rows_read=good + quarantined, good=good, quarantined=quarantined, by_reason=by_reason)


@dataclass(frozen=True)
class _Check:
    """One row rule: when `failed`, the row gets `message` (text) under the reason kind `kind`."""

    kind: str
    failed: Column
    message: Column


def _nullable(column: Column, name: str) -> Column:
    """`column` declared nullable: a default (`in_stock` true) would otherwise make Spark type the column
    NOT NULL for one file and nullable for the next, and appends to one table need one schema."""
    return F.when(column.isNotNull(), column).alias(name)


def _quoted(column: Column) -> Column:
    return F.concat(F.lit("'"), column, F.lit("'"))


def _sql(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _reads_natively(spec: ColumnSpec, source_type: T.DataType) -> bool:
    """True when a typed (Parquet) source column converts to the bronze type without a text round trip."""
    numeric = isinstance(source_type, T.NumericType)
    temporal = isinstance(source_type, (T.DateType, T.TimestampType, T.TimestampNTZType))
    return {
        "string": False,
        "double": numeric,
        "boolean": numeric or isinstance(source_type, T.BooleanType),
        "date": temporal,
        "timestamp": temporal,
    }[spec.type]


def _parse(spec: ColumnSpec, source_type: T.DataType, cfg: IngestConfig) -> Column:
    """The typed value of `spec`, from its trimmed text or, for a typed Parquet column, from its own value."""
    text = F.col(_VALUE + spec.name)
    value = _sql(_VALUE + spec.name)
    if _reads_natively(spec, source_type):
        return F.expr(f"try_cast({_sql(_TYPED + spec.name)} AS {spec.type})")
    if spec.type == "string":
        return F.lower(text) if spec.allowed else text
    if spec.type in ("double", "boolean"):
        return F.expr(f"try_cast({value} AS {spec.type})")
    if spec.type == "date":
        if cfg.date_format:
            return F.to_date(F.expr(f"try_to_timestamp({value}, '{_escape(cfg.date_format)}')"))
        return F.when(text.rlike(ISO_DATE_PATTERN), F.expr(f"try_cast({value} AS date)"))
    if cfg.timestamp_format:
        return F.expr(f"try_to_timestamp({value}, '{_escape(cfg.timestamp_format)}')")
    return F.when(text.rlike(ISO_DATE_PATTERN), F.expr(f"try_cast({value} AS timestamp)"))


def _escape(pattern: str) -> str:
    return pattern.replace("\\", "\\\\").replace("'", "\\'")


def _type_word(spec: ColumnSpec, cfg: IngestConfig) -> str:
    if spec.type == "date":
        return f"a date ({cfg.date_format or 'yyyy-MM-dd'})"
    if spec.type == "timestamp":
        return f"a timestamp ({cfg.timestamp_format or 'yyyy-MM-dd HH:mm:ss'})"
    return {"double": "a number", "boolean": "true/false"}[spec.type]


def _column_checks(spec: ColumnSpec, schema: EntitySchema, cfg: IngestConfig) -> list[_Check]:
    name = spec.name
    value, parsed = F.col(_VALUE + name), F.col(name)
    checks: list[_Check] = []
    if spec.required or name in schema.keys:
        checks.append(_Check(f"{name} is empty", parsed.isNull() & value.isNull(), F.lit(f"{name} is empty")))
    if spec.type != "string":
        unparsed = parsed.isNull()
        if spec.type == "double":
            unparsed = unparsed | F.isnan(parsed) | (F.abs(parsed) == float("inf"))
        word = _type_word(spec, cfg)
        checks.append(
            _Check(
                f"{name} is not {word}",
                value.isNotNull() & unparsed,
                F.concat(F.lit(f"{name} is not {word}: "), _quoted(value)),
            )
        )
    if spec.allowed:
        expected = ", ".join(spec.allowed)
        checks.append(
            _Check(
                f"{name} is not one of {expected}",
                parsed.isNotNull() & ~parsed.isin(*spec.allowed),
                F.concat(F.lit(f"{name} is not one of {expected}: "), _quoted(value)),
            )
        )
    if spec.sign is not None:
        problem = "is negative" if spec.sign == "non_negative" else "is not positive"
        failed = parsed < 0 if spec.sign == "non_negative" else parsed <= 0
        checks.append(_Check(f"{name} {problem}", failed, F.concat(F.lit(f"{name} {problem}: "), _quoted(value))))
    return checks


def _returns_check() -> _Check:
    """Sales: a negative quantity is a return, so it needs `is_return` true."""
    return _Check(
        "negative quantity without is_return",
        (F.col("quantity") < 0) & ~F.coalesce(F.col("is_return"), F.lit(False)),
        F.concat(F.lit("quantity is negative ("), F.col(_VALUE + "quantity"), F.lit(") and is_return is not true")),
    )


def _movements_check() -> _Check:
    """Inventory movements: only an adjustment may take stock away; every other movement is a positive amount."""
    signed = F.col("movement") == F.lit("adjustment")
    return _Check(
        "quantity is not positive",
        (F.col("quantity") <= 0) & ~F.coalesce(signed, F.lit(False)),
        F.concat(
            F.lit("quantity is not positive ("),
            F.col(_VALUE + "quantity"),
            F.lit(") for movement "),
            F.coalesce(F.col("movement"), F.lit("?")),
            F.lit("; only an adjustment may be negative"),
        ),
    )


def _check_time_parser_policy(raw: DataFrame, cfg: IngestConfig) -> None:
    if not (cfg.date_format or cfg.timestamp_format):
        return
    policy = (raw.sparkSession.conf.get(TIME_PARSER_POLICY, "EXCEPTION") or "EXCEPTION").upper()
    if policy != "CORRECTED":
        raise ConfigError(
            f"ingest.date_format / timestamp_format need {TIME_PARSER_POLICY}=CORRECTED (it is {policy}): "
            "otherwise Spark raises on some unparseable values instead of returning null"
        )


def validate(
    raw: DataFrame,
    entity: str,
    cfg: IngestConfig,
    *,
    source: str = "input",
    ingested_at: dt.datetime | None = None,
    as_of: dt.date | None = None,
) -> Validated:
    """Type and check every row of a raw entity frame; nothing is dropped.

    Checks, each giving the row a reason (several are joined with '; '): empty key or required
    values; values that are not numbers (NaN and infinities included), dates, timestamps or
    true/false; negative numbers where the schema forbids them; sales quantities below zero unless
    `is_return` is true; interaction events outside view / add_to_cart / purchase; CSV records with
    the wrong number of fields; and a key repeated within this input, where the first occurrence
    (by source file, then row number) is kept among the otherwise valid rows.

    Args:
        raw: the frame `read_raw` returns: the file's columns plus `_row_number` and `_source_file`
            (and `_malformed_record` for CSV).
        entity: sales, products, locations, interactions, suppliers or inventory.
        cfg: ingest settings (column mapping, date formats, returns policy).
        source: the file or folder, named in errors.
        ingested_at: the ingest timestamp stamped on every row; default: now.
        as_of: the business date of an undated inventory snapshot; default: the date of `ingested_at`.

    Returns:
        Validated: `good` rows for bronze and `quarantine` rows, as lazy DataFrames.

    Raises:
        ValidationError: a required column is missing (no rows are validated then).
    """
    schema = entity_schema(entity)
    for column in (ROW_NUMBER, SOURCE_FILE):
        if column not in raw.columns:
            raise ValidationError(f"{source}: the raw frame lacks {column}; read the file with read_raw")
    _check_time_parser_policy(raw, cfg)
    plan = resolve_columns(raw.columns, entity, cfg.mapping_for(entity), source=source)
    if plan.ignored:
        log.info("%s: ignoring column(s) %s, which are not %s columns", source, ", ".join(plan.ignored), entity)
    source_types = {f.name: f.dataType for f in raw.schema.fields}
    ingested_at = ingested_at or dt.datetime.now(dt.UTC)
    stamp = F.lit(ingested_at).cast("timestamp")
    snapshot_date = F.lit(as_of or ingested_at.astimezone(dt.UTC).date())

    # 1. text: the raw value as a string (kept for the quarantine), and trimmed with empty -> null (parsed).
    staged: list[Column] = [F.col(_sql(ROW_NUMBER)), F.col(_sql(SOURCE_FILE)), stamp.alias(INGESTED_AT)]
    if MALFORMED_RECORD in raw.columns:
        staged.append(F.col(_sql(MALFORMED_RECORD)))
    else:
        staged.append(F.lit(None).cast("string").alias(MALFORMED_RECORD))
    for spec in schema.columns:
        origin = plan.sources[spec.name]
        text = F.col(_sql(origin)).cast("string") if origin is not None else F.lit(None).cast("string")
        staged += [text.alias(_TEXT + spec.name), F.when(F.trim(text) != "", F.trim(text)).alias(_VALUE + spec.name)]
        if origin is not None and _reads_natively(spec, source_types[origin]):
            staged.append(F.col(_sql(origin)).alias(_TYPED + spec.name))
    frame = raw.select(*staged)

    # 2. typed values; defaults for absent columns and for empty cells of optional non-key columns.
    for group in _typing_order(schema):
        if not group:
            continue
        typed = []
        for spec in group:
            origin = plan.sources[spec.name]
            default = snapshot_date if spec.default is AS_OF else F.lit(spec.default).cast(spec.spark_type)
            if origin is None:
                value = default
            else:
                value = _parse(spec, source_types[origin], cfg)
                if spec.name not in schema.keys and spec.default is not None:
                    value = F.when(F.col(_VALUE + spec.name).isNull(), default).otherwise(value)
            if entity == "sales" and spec.name == "is_return" and cfg.allow_returns:
                is_negative = F.coalesce(F.col("quantity") < 0, F.lit(False))
                value = F.when(F.col(_VALUE + spec.name).isNull(), is_negative).otherwise(value)
            typed.append(value.cast(spec.spark_type).alias(spec.name))
        frame = frame.select("*", *typed)

    # 3. row rules.
    checks = [check for spec in schema.columns for check in _column_checks(spec, schema, cfg)]
    if entity == "sales":
        checks.append(_returns_check())
    if entity == "inventory_movements":
        checks.append(_movements_check())
    file_fields = len([c for c in raw.columns if c not in METADATA_COLUMNS])
    checks.append(
        _Check(
            "malformed CSV record",
            F.col(MALFORMED_RECORD).isNotNull(),
            F.lit(f"malformed CSV record: expected {file_fields} fields"),
        )
    )
    kept = [INGESTED_AT, ROW_NUMBER, SOURCE_FILE, *schema.names, *[_TEXT + name for name in schema.names]]
    frame = frame.select(
        *kept,
        F.array_compact(F.array(*[F.when(c.failed, c.message) for c in checks])).alias(_REASONS),
        F.array_compact(F.array(*[F.when(c.failed, F.lit(c.kind)) for c in checks])).alias(_KINDS),
    )

    # 4. duplicate keys among the otherwise valid rows: the first by (source file, row number) is kept.
    valid = F.size(_KINDS) == 0
    window = Window.partitionBy(valid, *schema.keys).orderBy(SOURCE_FILE, ROW_NUMBER)
    first_row, first_file = F.first(ROW_NUMBER).over(window), F.first(SOURCE_FILE).over(window)
    in_file = F.when(first_file != F.col(SOURCE_FILE), F.concat(F.lit(" of "), first_file)).otherwise(F.lit(""))
    duplicate = valid & (F.row_number().over(window) > 1)
    message = F.concat(
        F.lit(f"duplicate key ({', '.join(schema.keys)}) first seen at row "), first_row.cast("string"), in_file
    )
    frame = frame.select(
        *kept,
        F.when(duplicate, F.array(message)).otherwise(F.col(_REASONS)).alias(_REASONS),
        F.when(duplicate, F.array(F.lit("duplicate key"))).otherwise(F.col(_KINDS)).alias(_KINDS),
    )
    return Validated(entity=entity, rows=frame, columns=plan)


def _typing_order(schema: EntitySchema) -> list[list[ColumnSpec]]:
    """Columns to type in two passes: sales' `is_return` may follow from the typed quantity."""
    later = [spec for spec in schema.columns if schema.entity == "sales" and spec.name == "is_return"]
    return [[spec for spec in schema.columns if spec not in later], later]
