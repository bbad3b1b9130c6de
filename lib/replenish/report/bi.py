"""The gold tables under the same view names in Spark SQL as in DuckDB (`replenish.io.bi.duckdb_connect`).

With the same names, one SQL text runs on both engines; docs/bi.md shows such queries and the test
suite runs exactly those on both and compares the answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from replenish.io.bi import view_name
from replenish.io.catalog import TABLES, table

INVENTORY_TABLES: tuple[str, ...] = (
    "gold.replenishment_plan",
    "gold.safety_stock",
    "gold.model_selection",
    "gold.forecast_accuracy",
    "gold.inventory_simulation",
)


def spark_views(lake: Any, names: Iterable[str] | None = None) -> list[str]:
    """Register each existing table as a Spark temporary view named like DuckDB's (`gold_safety_stock`).

    Args:
        lake: a `replenish.io.lake.Lake`.
        names: catalog names (default: every table of the catalog).

    Returns:
        The view names registered.
    """
    registered = []
    for name in names if names is not None else TABLES:
        spec = table(name)
        if lake.exists(spec):
            view = view_name(spec)
            lake.read(spec).createOrReplaceTempView(view)
            registered.append(view)
    return registered
