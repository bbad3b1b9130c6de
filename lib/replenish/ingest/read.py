"""Read a raw entity file, or a folder of part files, with each row's source file and row number.

CSV is read with every column as text (nothing is inferred, so a bad value cannot fail the read) and
records with the wrong number of fields are flagged in `_malformed_record`, not dropped. Parquet keeps
its own types; `validate` casts them.

Row numbers are the 1-based data row within the source file (the header and blank lines are not
counted). Parquet has them natively (`_metadata.row_index`). For CSV they are computed without
collecting any data: Spark reads a large file as several splits, each split's rows arrive in file
order within one task, so a row's number is the number of rows in the earlier splits of its file (a
small aggregate over `_metadata.file_block_start`) plus its position within its split (from
`monotonically_increasing_id`, consecutive within a task). `rdd.zipWithIndex` would send every row
through Python and does not give per-file numbers when Spark packs splits of several files into one
task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from replenish.errors import ValidationError
from replenish.ingest.schemas import MALFORMED_RECORD, METADATA_COLUMNS, ROW_NUMBER, SOURCE_FILE
from replenish.io.catalog import INGEST_ENTITIES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

FileFormat = Literal["csv", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "parquet")
# longest suffix first: `.csv.gz` before `.gz`-less forms
EXTENSIONS: dict[str, FileFormat] = {".csv.gz": "csv", ".csv.bz2": "csv", ".csv": "csv", ".parquet": "parquet"}
_GLOBS: dict[str, str] = {"csv": "*.{csv,csv.gz,csv.bz2}", "parquet": "*.parquet"}
_RESERVED = (*METADATA_COLUMNS, "_metadata")
SESSION_SETTINGS: dict[str, str] = {
    "spark.sql.csv.parser.columnPruning.enabled": "false",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
}


def format_of(name: str) -> FileFormat | None:
    """The format a file name's extension says (case-insensitive), or None."""
    lowered = name.lower().rstrip("/")
    for extension, file_format in EXTENSIONS.items():
        if lowered.endswith(extension):
            return file_format
    return None


def is_data_file(name: str) -> bool:
    """Spark skips names starting with `_` or `.` (`_SUCCESS`, `.part-0.crc`); so does ingest."""
    return not name.startswith(("_", "."))


def detect_format(path: str, names_inside: Iterable[str] | None = None) -> FileFormat:
    """The format of a file (by its extension) or of a folder (by the extensions of the files in it).

    Raises:
        ValidationError: no recognised extension, or a folder mixing CSV and Parquet.
    """
    own = format_of(path)
    if own is not None:
        return own
    if names_inside is None:
        raise ValidationError(f"{path}: cannot tell CSV from Parquet by the extension; pass --format csv|parquet")
    found = {fmt for name in names_inside if is_data_file(name) and (fmt := format_of(name)) is not None}
    if len(found) > 1:
        raise ValidationError(f"{path}: the folder mixes CSV and Parquet files; keep one format per entity")
    if not found:
        raise ValidationError(f"{path}: no .csv or .parquet files in the folder")
    return found.pop()


def entity_sources(root: str, entries: Iterable[tuple[str, bool]]) -> dict[str, str]:
    """Find each entity's input in a folder's entries: `<entity>/` or `<entity>.csv` / `.parquet` ...

    Args:
        root: the folder.
        entries: (name, is_folder) of each thing in it.

    Returns:
        entity -> path, for the entities found, in the order of INGEST_ENTITIES.

    Raises:
        ValidationError: an entity has both a folder and a file, or nothing is found at all.
    """
    found: dict[str, list[str]] = {}
    for name, is_folder in entries:
        stem = name if is_folder else _stem(name)
        if stem in INGEST_ENTITIES:
            found.setdefault(stem, []).append(name)
    ambiguous = {entity: names for entity, names in found.items() if len(names) > 1}
    if ambiguous:
        text = "; ".join(f"{entity}: {', '.join(sorted(names))}" for entity, names in sorted(ambiguous.items()))
        raise ValidationError(f"{root}: more than one input for an entity ({text}); keep one")
    if not found:
        raise ValidationError(
            f"{root}: no entity inputs found; expected folders or files named {', '.join(INGEST_ENTITIES)} "
            "(e.g. sales/ or sales.csv)"
        )
    base = root.rstrip("/")
    return {entity: f"{base}/{found[entity][0]}" for entity in INGEST_ENTITIES if entity in found}


def _stem(name: str) -> str | None:
    lowered = name.lower()
    for extension in EXTENSIONS:
        if lowered.endswith(extension):
            return name[: -len(extension)]
    return None


def list_folder(spark: SparkSession, path: str) -> list[tuple[str, bool]] | None:
    """(name, is_folder) of each entry of folder `path`, or None when `path` is a file.

    Goes through Hadoop's FileSystem, so local paths, `s3a://` and `dbfs:/` all work.

    Raises:
        ValidationError: `path` does not exist.
    """
    jvm: Any = spark._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    filesystem = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not filesystem.exists(hadoop_path):
        raise ValidationError(f"{path}: no such file or folder")
    if filesystem.getFileStatus(hadoop_path).isFile():
        return None
    return [(status.getPath().getName(), status.isDirectory()) for status in filesystem.listStatus(hadoop_path)]


def read_raw(
    spark: SparkSession,
    path: str,
    *,
    file_format: FileFormat | None = None,
    delimiter: str = ",",
    files: Sequence[str] | None = None,
) -> DataFrame:
    """Read a raw entity file or folder: its columns, plus `_row_number`, `_source_file` (and, for CSV,
    `_malformed_record`: the raw line of a record with the wrong number of fields, else null).

    Args:
        spark: the session.
        path: a file, or a folder of part files of one format.
        file_format: csv or parquet; default: by extension.
        delimiter: the CSV field separator.
        files: read only these files of the folder `path` (an incremental ingest's new files).

    Raises:
        ValidationError: the path does not exist, its format is unknown, or a column name is reserved.
    """
    prepare_session(spark)
    entries = list_folder(spark, path)
    if file_format is None:
        file_format = detect_format(path, None if entries is None else [name for name, _ in entries])
    elif file_format not in FORMATS:
        raise ValidationError(f"{path}: format must be csv or parquet, got {file_format!r}")
    glob: dict[str, Any] = {"pathGlobFilter": _GLOBS[file_format]} if entries is not None else {}
    paths = [path] if files is None else list(files)
    if file_format == "parquet":
        frame = spark.read.options(**glob).parquet(*paths)
        _check_reserved(path, frame.columns)
        return frame.select(
            "*",
            F.col("_metadata.file_path").alias(SOURCE_FILE),
            (F.col("_metadata.row_index") + 1).alias(ROW_NUMBER),
        )
    options: dict[str, Any] = {"header": True, "sep": delimiter, "escape": '"', **glob}
    header = spark.read.options(**options).csv(paths).columns
    _check_reserved(path, header)
    schema = T.StructType([T.StructField(name, T.StringType()) for name in [*header, MALFORMED_RECORD]])
    frame = (
        spark.read.schema(schema)
        .options(**options, enforceSchema=False, mode="PERMISSIVE", columnNameOfCorruptRecord=MALFORMED_RECORD)
        .csv(paths)
    )
    return _number_rows(frame)


def prepare_session(spark: SparkSession) -> None:
    """Set the two session settings that make ingest's verdicts depend on the data alone.

    - `spark.sql.csv.parser.columnPruning.enabled=false`: with pruning, Spark tokenizes only the columns
      a query uses, so a record with a missing or extra field is flagged malformed by one query and not
      by another (the good and the quarantine halves would disagree about the same row).
    - `spark.sql.legacy.timeParserPolicy=CORRECTED`: otherwise a date that only the pre-3.0 parser
      understands (`2024-1-5` against `yyyy-MM-dd`) raises instead of being quarantined.
    """
    for key, value in SESSION_SETTINGS.items():
        if (spark.conf.get(key, None) or "").lower() != value.lower():
            log.info("ingest: setting %s=%s for this session", key, value)
            spark.conf.set(key, value)


def _check_reserved(path: str, columns: Iterable[str]) -> None:
    clashes = [name for name in columns if name in _RESERVED]
    if clashes:
        raise ValidationError(f"{path}: column name(s) {', '.join(clashes)} are reserved by ingest; rename them")


def _number_rows(frame: DataFrame) -> DataFrame:
    """Add `_source_file` and `_row_number` (1-based within the file) to a frame read from files."""
    located = frame.select(
        "*",
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        F.col("_metadata.file_block_start").alias("_split_start"),
        F.monotonically_increasing_id().alias("_position"),
    )
    splits = located.groupBy(SOURCE_FILE, "_split_start").agg(
        F.min("_position").alias("_split_first_position"), F.count(F.lit(1)).alias("_split_rows")
    )
    earlier = Window.partitionBy(SOURCE_FILE).orderBy("_split_start").rowsBetween(Window.unboundedPreceding, -1)
    splits = splits.select(
        SOURCE_FILE,
        "_split_start",
        "_split_first_position",
        F.coalesce(F.sum("_split_rows").over(earlier), F.lit(0)).alias("_rows_before_split"),
    )
    numbered = located.join(F.broadcast(splits), [SOURCE_FILE, "_split_start"])
    row_number = F.col("_rows_before_split") + F.col("_position") - F.col("_split_first_position") + 1
    return numbered.select(*[located[name] for name in frame.columns], SOURCE_FILE, row_number.alias(ROW_NUMBER))
