"""Every table of the lake, declared once: its name, path under the lake root, partitions and keys.

Jobs, notebooks, tests and BI queries refer to tables by these names, never by hand-built paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from replenish.errors import ConfigError

ENTITIES = ("sales", "products", "locations", "interactions", "suppliers", "inventory")
# Entities a source system appends as events while the day runs (not written by `replenish generate`);
# `replenish ingest` takes them like the others and `replenish stream` consumes them.
EVENT_ENTITIES = ("inventory_movements",)
INGEST_ENTITIES = ENTITIES + EVENT_ENTITIES


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the lake.

    Attributes:
        name: `layer.table`, e.g. `bronze.sales`.
        partition_by: partition columns, coarse enough to keep files large.
        keys: the columns that identify a row; re-ingesting a row with the same keys adds nothing.
        description: one line for the README and `replenish tables`.
    """

    name: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def relative_path(self) -> str:
        return self.name.replace(".", "/", 1)


_TABLES = [
    TableSpec("bronze.sales", keys=("sku", "location", "date"), description="daily sales per SKU-location, typed"),
    TableSpec("bronze.products", keys=("sku",), description="product master and hierarchy"),
    TableSpec("bronze.locations", keys=("location",), description="stores / warehouses and regions"),
    TableSpec(
        "bronze.interactions",
        keys=("user_id", "sku", "event", "timestamp"),
        description="user-item events: view, add_to_cart, purchase",
    ),
    TableSpec("bronze.suppliers", keys=("sku", "location"), description="supplier, lead time mean and spread, costs"),
    TableSpec("bronze.inventory", keys=("sku", "location", "snapshot_date"), description="on hand / on order snapshot"),
    TableSpec(
        "bronze.inventory_movements",
        keys=("event_id",),
        description="inventory events: receipts, adjustments, orders placed and cancelled",
    ),
    *[
        TableSpec(f"quarantine.{entity}", description=f"rejected {entity} rows with a reason")
        for entity in INGEST_ENTITIES
    ],
    TableSpec(
        "silver.demand",
        partition_by=("freq",),
        keys=("freq", "sku", "location", "date"),
        description="gap-filled demand series with calendar, lag, rolling, price and promo features",
    ),
    TableSpec(
        "silver.series_profile",
        partition_by=("freq",),
        keys=("freq", "sku", "location"),
        description="per series: demand class (ADI/CV2), ABC-XYZ segment, history span",
    ),
    TableSpec(
        "gold.forecast",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "date"),
        description="forecasts with 80/95% intervals",
    ),
    TableSpec(
        "gold.forecast_backtest",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "fold"),
        description="rolling-origin backtest errors per series, model and fold",
    ),
    TableSpec(
        "gold.backtest_forecast",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "fold", "date"),
        description="backtest predictions against actuals, per period: the error sample that sizes safety stock",
    ),
    TableSpec(
        "gold.model_registry",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location"),
        description="model, orders and fit status per series and run",
    ),
    TableSpec("gold.model_selection", keys=("run_id", "sku", "location"), description="chosen model per series"),
    TableSpec("gold.safety_stock", keys=("run_id", "sku", "location"), description="safety stock and its inputs"),
    TableSpec(
        "gold.replenishment_plan",
        keys=("run_id", "sku", "location"),
        description="reorder point, order-up-to level and the order to place",
    ),
    TableSpec("gold.forecast_accuracy", description="accuracy rolled up by category, location and class"),
    TableSpec("gold.inventory_simulation", description="replayed service level and inventory per policy"),
    TableSpec(
        "gold.inventory_position",
        keys=("sku", "location"),
        description="current on hand, on order, backorders and position per series, kept by `replenish stream`",
    ),
    TableSpec(
        "gold.reorder_alerts",
        keys=("stream_id", "batch_id", "sku", "location"),
        description="a position that crossed the latest plan's reorder point, appended by `replenish stream`",
    ),
    TableSpec(
        "gold.data_quality",
        keys=("run_id", "stage", "table_name", "check", "column_name"),
        description="every check of the data-quality gate before forecasting and planning, with its verdict",
    ),
    TableSpec(
        "silver.lstm_windows",
        partition_by=("freq",),
        keys=("freq", "sku", "location", "origin"),
        description="LSTM training windows: history, known-future covariates, targets and static features",
    ),
    TableSpec("silver.user_index", keys=("user_id",), description="user id -> ALS integer index, stable across runs"),
    TableSpec("silver.sku_index", keys=("sku",), description="SKU -> ALS integer index, stable across runs"),
    TableSpec(
        "gold.recommendations",
        keys=("user_id", "rank"),
        description="top-N SKUs per user from implicit ALS (latest run), purchased SKUs excluded",
    ),
    TableSpec(
        "gold.item_factors",
        keys=("sku",),
        description="ALS item factors and their low-dimensional projection per SKU (latest run)",
    ),
    TableSpec(
        "gold.similar_items",
        keys=("sku", "rank"),
        description="top-k most similar SKUs by cosine of ALS item factors (latest run)",
    ),
    TableSpec(
        "gold.recommender_evaluation",
        keys=("run_id", "model", "als_rank", "reg_param", "alpha"),
        description="precision/recall/MAP/NDCG@k of each ALS setting searched and of the popularity baseline",
    ),
]

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _TABLES}


def table(name: str | TableSpec) -> TableSpec:
    """Look a table up by name (`bronze.sales`); a TableSpec is returned unchanged."""
    if isinstance(name, TableSpec):
        return name
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None


# Columns `Lake.compact` clusters a table's files by (delta-spark: OPTIMIZE … ZORDER BY), so that the
# per-SKU filters of BI tools and notebooks skip most files of the large tables.
ZORDER_BY: dict[str, tuple[str, ...]] = {
    "silver.demand": ("sku",),
    "gold.forecast": ("sku",),
    "gold.backtest_forecast": ("sku",),
    "gold.forecast_backtest": ("sku",),
    "gold.model_selection": ("sku",),
    "gold.safety_stock": ("sku",),
    "gold.replenishment_plan": ("sku",),
}
