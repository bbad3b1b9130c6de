"""Ingest raw entity files into typed bronze tables; bad rows go to the quarantine with a reason.

`replenish ingest ENTITY PATH` reads one entity's file, or folder of part files, CSV or Parquet (by
extension), and checks every row against the entity's contract (docs/tables.md). Good rows are added
to bronze.<entity>, skipping keys the table already has, so ingesting a file twice adds nothing. Bad
rows go to quarantine.<entity> with their raw values, a reason, the source file and row number. A file
that lacks a required column is rejected as a whole and nothing is written.

`replenish ingest --all DIR` ingests every entity found in DIR (DIR/sales/, DIR/sales.csv, ...).
Entities: sales, products, locations, interactions, suppliers, inventory, inventory_movements.

Examples:
  replenish ingest sales ./exports/sales.csv --map qty=quantity --map store=location
  replenish ingest --all ./data/raw
  replenish ingest sales ./exports/sales.csv --set ingest.date_format=dd/MM/yyyy
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from replenish import config
from replenish.errors import ConfigError, ValidationError
from replenish.ingest.read import FORMATS, SESSION_SETTINGS, entity_sources, list_folder, read_raw
from replenish.ingest.schemas import QUARANTINE_KEYS
from replenish.ingest.validate import IngestConfig, IngestCounts, Validated, parse_mapping, validate
from replenish.io.catalog import INGEST_ENTITIES
from replenish.shared import session_conf
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

HEADER_MISMATCH = "CSV header does not conform to the schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "entity", nargs="?", metavar="ENTITY", help=f"what the file holds: {', '.join(INGEST_ENTITIES)}"
    )
    parser.add_argument("path", nargs="?", metavar="PATH", help="a CSV or Parquet file, or a folder of part files")
    group = parser.add_argument_group("ingest options")
    group.add_argument(
        "--all",
        dest="all_dir",
        metavar="DIR",
        help="ingest every entity found in DIR: a folder or file named after it (sales/, sales.csv, ...)",
    )
    group.add_argument(
        "--map",
        dest="mapping",
        action="append",
        default=[],
        metavar="THEIRS=OURS",
        help="read your column THEIRS as our column OURS, e.g. --map qty=quantity; repeatable "
        "(for --all, use --set ingest.column_mapping.<entity>.<theirs>=<ours>)",
    )
    group.add_argument("--format", choices=FORMATS, help="file format, when the extension does not tell")
    group.add_argument(
        "--incremental",
        action="store_true",
        help="read only the files not ingested yet (their path is in no bronze or quarantine row); "
        "an entity without new files is skipped (docs/lake.md)",
    )


def _absolute(path: str) -> str:
    """Local paths become absolute, so the summary names the same file as `source_file`; URIs stay."""
    return path if "://" in path or path.startswith("dbfs:") else str(Path(path).expanduser().resolve())


def _sources(ctx: JobContext, args: argparse.Namespace) -> dict[str, str]:
    if args.all_dir:
        if args.entity or args.path:
            raise ConfigError("give either ENTITY PATH or --all DIR, not both")
        if args.mapping:
            raise ConfigError("--map applies to one entity; with --all use --set ingest.column_mapping.<entity>...")
        root = _absolute(args.all_dir)
        entries = list_folder(ctx.spark, root)
        if entries is None:
            raise ValidationError(f"{root}: --all expects a folder")
        return entity_sources(root, entries)
    if not (args.entity and args.path):
        raise ConfigError("give ENTITY PATH (e.g. `replenish ingest sales data/sales.csv`) or --all DIR")
    if args.entity not in INGEST_ENTITIES:
        raise ConfigError(f"unknown entity {args.entity!r}; choose one of {', '.join(INGEST_ENTITIES)}")
    return {args.entity: _absolute(args.path)}


def _counts(validated: Validated, source: str) -> IngestCounts:
    """The first action over the input, where Spark finds part files whose headers disagree."""
    try:
        return validated.counts()
    except Exception as exc:  # a Py4J error from a task; the reason is only in its text
        text = str(exc)
        start = text.find(HEADER_MISMATCH)
        if start < 0:
            raise
        detail = " ".join(line.strip() for line in text[start:].splitlines()[1:5])
        raise ValidationError(f"{source}: part files have different headers; {detail}") from None


def _write(ctx: JobContext, validated: Validated, source: str) -> dict[str, Any]:
    """Quarantine first, bronze last, both idempotent: a run killed in between is completed by a rerun,
    and bronze (what later stages read) gains rows only once their rejects are on record."""
    entity = validated.entity
    validated = validated.persist()
    try:
        counts = _counts(validated, source)
        quarantined = ctx.lake.insert_new(validated.quarantine, f"quarantine.{entity}", keys=QUARANTINE_KEYS)
        bronze = ctx.lake.insert_new(validated.good, f"bronze.{entity}")
    finally:
        validated.unpersist()
    summary = {
        **counts.as_dict(),
        "added_to_bronze": bronze.rows_written,
        "already_in_bronze": counts.good - bronze.rows_written,
        "added_to_quarantine": quarantined.rows_written,
        "bronze_version": bronze.version,
        "quarantine_version": quarantined.version,
        "defaulted_columns": list(validated.columns.missing),
        "ignored_columns": list(validated.columns.ignored),
    }
    reasons = ", ".join(f"{kind}: {n}" for kind, n in summary["quarantined_by_reason"].items()) or "none"
    log.info(
        "ingest %s: %d rows read, %d good (%d added to bronze), %d quarantined (%s)",
        entity,
        counts.rows_read,
        counts.good,
        bronze.rows_written,
        counts.quarantined,
        reasons,
    )
    return summary


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    # Ingest's parser settings hold for this job only, not for the jobs after it in the session (run-all).
    with session_conf(ctx.spark, SESSION_SETTINGS):
        return _ingest(ctx, args)


def _ingest(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    cfg = config.section(ctx.settings, "ingest", IngestConfig)
    sources = _sources(ctx, args)
    if not args.all_dir:
        cfg = cfg.with_mapping(args.entity, parse_mapping(args.mapping))
    ingested_at = dt.datetime.now(dt.UTC)
    only: dict[str, list[str] | None] = {entity: None for entity in sources}
    if args.incremental:
        from replenish.io.incremental import new_files

        only = {entity: new_files(ctx.lake, entity, path) for entity, path in sources.items()}
        for entity in [e for e, files in only.items() if not files]:
            log.info("ingest %s: no new files in %s", entity, sources[entity])
            del sources[entity]
    # Every input is read and its columns checked before anything is written.
    validated = {
        entity: validate(
            read_raw(ctx.spark, path, file_format=args.format, delimiter=cfg.csv_delimiter, files=only[entity]),
            entity,
            cfg,
            source=path,
            ingested_at=ingested_at,
            as_of=ctx.run_date,
        )
        for entity, path in sources.items()
    }
    results = {
        entity: {"source": sources[entity], **_write(ctx, checked, sources[entity])}
        for entity, checked in validated.items()
    }
    totals = {
        name: sum(result[name] for result in results.values())
        for name in ("rows_read", "good", "quarantined", "added_to_bronze", "added_to_quarantine")
    }
    summary = {"lake": ctx.lake.root, "ingested_at": ingested_at.isoformat(), **totals, "entities": results}
    if args.incremental:
        summary["new_files"] = {entity: len(files or []) for entity, files in only.items()}
    return summary


main = job_main("ingest", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
