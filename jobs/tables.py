"""List the lake's tables: version, rows, files and size, read from the Delta logs.

Rows come from the per-file statistics in the log, so no data is scanned. `--json` prints one JSON
object per table for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from replenish.io.describe import format_table_summary, table_summary
from replenish_jobs.harness import JobContext, job_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per table instead of a table")
    parser.add_argument("--all", action="store_true", help="also list catalog tables that do not exist yet")


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
