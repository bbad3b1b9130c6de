"""BI access: the lake's tables as views of the same names in DuckDB (no Spark) and in Spark SQL.

With the same names, one SQL text runs on both engines; docs/bi.md shows such queries and the test
suite runs exactly those on both and compares the answers.

DuckDB reads each table with its own `delta` extension (`delta_scan`, built on delta-kernel-rs), loaded
from the `duckdb-ext-delta` wheel because these machines cannot download extensions at run time. Where
that wheel is not available (other platforms), the view scans exactly the Parquet files that delta-rs
lists for the table's current version, so the answer is the same snapshot either way.

Example:
    ```python
    con = duckdb_connect("./lakehouse")
    con.sql("SELECT abc_xyz, avg(safety_stock) FROM gold_safety_stock GROUP BY 1").show()
    ```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from replenish.io.catalog import TABLES, TableSpec, table

if TYPE_CHECKING:
    import duckdb

    from replenish.io.lake import Lake

log = logging.getLogger(__name__)


def delta_extension_path() -> Path | None:
    """The DuckDB delta extension shipped in the `duckdb-ext-delta` wheel, if installed for this DuckDB."""
    import duckdb

    try:
        import importlib.util

        spec = importlib.util.find_spec("duckdb_ext")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        candidates = sorted(Path(root).glob(f"extensions/v{duckdb.__version__}/*/delta.duckdb_extension"))
        if candidates:
            return candidates[0]
    return None


def view_name(spec: TableSpec) -> str:
    """`gold.safety_stock` → `gold_safety_stock`: a view name that needs no quoting."""
    return spec.name.replace(".", "_")


def duckdb_connect(
    lake_root: str | os.PathLike[str],
    *,
    tables: Iterable[str | TableSpec] | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per existing Delta table of the lake (`gold_forecast`, ...).

    Args:
        lake_root: the lake root folder.
        tables: the tables to expose (default: every catalog table that exists).
        connection: an existing connection to add the views to.
    """
    import duckdb
    from deltalake import DeltaTable

    extension = delta_extension_path()
    con = connection or duckdb.connect(config={"allow_unsigned_extensions": "true"} if extension else {})
    if extension is not None:
        con.execute(f"LOAD '{extension.as_posix()}'")
    root = os.path.abspath(os.fspath(lake_root))
    for name in tables if tables is not None else TABLES:
        spec = table(name)
        uri = f"{root}/{spec.relative_path}"
        if not DeltaTable.is_deltatable(uri):
            continue
        if extension is not None:
            source = f"delta_scan('{uri}')"
        else:
            files = DeltaTable(uri).file_uris()
            if not files:
                continue
            source = f"read_parquet({files!r}, hive_partitioning = true, union_by_name = true)"
        con.execute(f"CREATE OR REPLACE VIEW {view_name(spec)} AS SELECT * FROM {source}")
    return con


def spark_views(lake: Lake, names: Iterable[str] | None = None) -> list[str]:
    """Register each existing table as a Spark temporary view named like DuckDB's (`gold_safety_stock`).

    Args:
        lake: the lake whose tables to register.
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
