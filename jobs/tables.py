"""List the lake's tables: version, rows, files and size, read from the Delta logs.

Rows come from the per-file statistics in the log, so no data is scanned. `--json` prints one JSON
object per table for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from replenish.io.catalog import TABLES
from replenish.runtime import JobContext, job_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per table instead of a table")
    parser.add_argument("--all", action="store_true", help="also list catalog tables that do not exist yet")


def table_summary(lake: Any, *, include_missing: bool = False) -> list[dict[str, Any]]:
    """Describe every catalog table of `lake` (the ones that exist, unless `include_missing`)."""
    rows = [lake.describe(name) for name in TABLES]
    return [row for row in rows if include_missing or row["version"] is not None]


def format_table_summary(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'table':<26} {'version':>7} {'rows':>12} {'files':>6} {'MB':>8}"]
    for row in rows:
        version = "-" if row["version"] is None else str(row["version"])
        lines.append(
            f"{row['table']:<26} {version:>7} {row['rows'] or 0:>12,} {row['files']:>6} {row['bytes'] / 1e6:>8.1f}"
        )
    return "\n".join(lines)


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    rows = table_summary(ctx.lake, include_missing=args.all)
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        print(f"lake: {ctx.lake.root}\n{format_table_summary(rows)}")
    return {"tables": len(rows)}


main = job_main("tables", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
