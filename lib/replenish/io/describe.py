"""What the lake holds: per catalog table its version, rows, files and size, read from the Delta logs.

Rows come from the per-file statistics in the log, so no data is scanned (`replenish tables`, the
closing summary of `run-all`, the pipeline notebook).
"""

from __future__ import annotations

from typing import Any

from replenish.io.catalog import TABLES


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
