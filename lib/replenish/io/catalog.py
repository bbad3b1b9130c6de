"""Every table of the lake, declared once: its name, path under the lake root, partitions, keys and columns.

Jobs, notebooks, tests and BI queries refer to tables by these names, never by hand-built paths. Each
table's columns (`TableSpec.columns`) are its contract: ingest's entity schemas, the inventory outputs,
the forecast tables, the generator's files and empty stand-ins (`Lake.read_or_empty`) derive from them,
and a test holds docs/tables.md to them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pyspark.sql import types as T

from replenish.errors import ConfigError

ENTITIES = ("sales", "products", "locations", "interactions", "suppliers", "inventory")
# Entities a source system appends as events while the day runs (not written by `replenish generate`);
# `replenish ingest` takes them like the others and `replenish stream` consumes them.
EVENT_ENTITIES = ("inventory_movements",)
INGEST_ENTITIES = ENTITIES + EVENT_ENTITIES

_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "long": T.LongType(),
    "int": T.IntegerType(),
    "boolean": T.BooleanType(),
    "array<float>": T.ArrayType(T.FloatType()),
}


def parse_columns(ddl: str) -> tuple[tuple[str, str], ...]:
    """`(name, type)` pairs of `name type, name type, …` (the types of `_TYPES`; an empty string has none)."""
    pairs = []
    for item in ddl.split(","):
        if not item.strip():
            continue
        name, type_name = item.split()
        if type_name not in _TYPES:
            raise ConfigError(f"column {name}: unknown type {type_name!r}; known: {', '.join(_TYPES)}")
        pairs.append((name, type_name))
    return tuple(pairs)


def schema(ddl: str) -> T.StructType:
    """A StructType from `name type, name type, …` (flat, nullable; needs no JVM, unlike fromDDL)."""
    return T.StructType([T.StructField(name, _TYPES[kind], nullable=True) for name, kind in parse_columns(ddl)])


def with_required(schema: T.StructType, required: Collection[str]) -> T.StructType:
    """`schema` with the `required` columns NOT NULL: what a writer that always fills them declares."""
    unknown = sorted(set(required) - set(schema.fieldNames()))
    if unknown:
        raise ConfigError(f"required column(s) {unknown} are not in the schema")
    return T.StructType([T.StructField(f.name, f.dataType, f.name not in required) for f in schema.fields])


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the lake.

    Attributes:
        name: `layer.table`, e.g. `bronze.sales`.
        partition_by: partition columns, coarse enough to keep files large.
        keys: the columns that identify a row; re-ingesting a row with the same keys adds nothing.
        description: one line for the README and `replenish tables`.
        columns: the columns in table order, `name type, …` (`schema` parses it); kept as text so that
            a spec stays hashable and comparable.
        open_prefixes: prefixes of further columns whose number depends on settings (`silver.demand`'s
            `lag_<k>`); they are not in `columns`, and docs/tables.md lists them as `lag_<k>`.
    """

    name: str
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""
    columns: str = ""
    open_prefixes: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def relative_path(self) -> str:
        return self.name.replace(".", "/", 1)

    @property
    def schema(self) -> T.StructType:
        """The declared columns as a Spark schema (empty for a spec declared without columns)."""
        return schema(self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in parse_columns(self.columns))

    def is_open_column(self, name: str) -> bool:
        """True for a settings-dependent column (one of `open_prefixes`)."""
        return name.startswith(self.open_prefixes) if self.open_prefixes else False


# Bronze: the entity's typed columns, then what ingest adds. Ingest's rules per column
# (replenish.ingest.schemas) build on these names and types.
INGESTED = "ingested_at timestamp, source_file string"
BRONZE_COLUMNS: dict[str, str] = {
    "sales": "sku string, location string, date date, quantity double, price double, promo boolean, "
    "in_stock boolean, is_return boolean",
    "products": "sku string, name string, category string, subcategory string, brand string, unit_cost double, "
    "unit_price double, launch_date date",
    "locations": "location string, name string, region string, location_type string",
    "interactions": "user_id string, sku string, event string, timestamp timestamp, location string",
    "suppliers": "sku string, location string, supplier_id string, lead_time_mean_days double, "
    "lead_time_std_days double, moq double, pack_size double, ordering_cost double, unit_cost double",
    "inventory": "sku string, location string, snapshot_date date, on_hand double, on_order double, backorders double",
    "inventory_movements": "event_id string, sku string, location string, timestamp timestamp, movement string, "
    "quantity double, reference string",
}
"""Each ingest entity's own columns in bronze order (without `INGESTED`)."""


def _quarantine_columns(entity: str) -> str:
    """Every declared column as raw text, then the reject details (one schema whatever the files hold)."""
    raw = ", ".join(f"{name} string" for name, _ in parse_columns(BRONZE_COLUMNS[entity]))
    return f"{raw}, reason string, row_number long, source_file string, ingested_at timestamp"


_RUN = "run_id string, run_date date, freq string, sku string, location string"
_PREDICTIONS = "yhat double, yhat_lo_80 double, yhat_hi_80 double, yhat_lo_95 double, yhat_hi_95 double"
_METRICS = "mase double, wape double, bias double, rmse double, coverage_80 double, coverage_95 double"
_STAMP = "run_id string, run_date date"
_INVENTORY_RUN = f"{_RUN}, forecast_run_id string"

# Bronze tables: keys and description per entity; columns are the entity's typed columns and ingest's own.
_BRONZE: dict[str, tuple[tuple[str, ...], str]] = {
    "sales": (("sku", "location", "date"), "daily sales per SKU-location, typed"),
    "products": (("sku",), "product master and hierarchy"),
    "locations": (("location",), "stores / warehouses and regions"),
    "interactions": (("user_id", "sku", "event", "timestamp"), "user-item events: view, add_to_cart, purchase"),
    "suppliers": (("sku", "location"), "supplier, lead time mean and spread, costs"),
    "inventory": (("sku", "location", "snapshot_date"), "on hand / on order snapshot"),
    "inventory_movements": (("event_id",), "inventory events: receipts, adjustments, orders placed and cancelled"),
}

_TABLES = [
    *[
        TableSpec(f"bronze.{entity}", keys=keys, description=text, columns=f"{BRONZE_COLUMNS[entity]}, {INGESTED}")
        for entity, (keys, text) in _BRONZE.items()
    ],
    *[
        TableSpec(
            f"quarantine.{entity}",
            description=f"rejected {entity} rows with a reason",
            columns=_quarantine_columns(entity),
        )
        for entity in INGEST_ENTITIES
    ],
    TableSpec(
        "silver.demand",
        partition_by=("freq",),
        keys=("freq", "sku", "location", "date"),
        description="gap-filled demand series with calendar, lag, rolling, price and promo features",
        columns="freq string, sku string, location string, date date, category string, demand double, "
        "censored boolean, in_stock_share double, price double, regular_price double, price_ratio double, "
        "promo double, day_of_week int, week_of_year int, month int, quarter int, year int, is_holiday int, "
        "days_to_next_holiday int, views_lag_1 double, views_ratio double, add_to_carts_lag_1 double, "
        "add_to_carts_ratio double",
        # the configured lags and windows of every frequency (features.daily, .weekly, …), after the calendar
        open_prefixes=("lag_", "rolling_mean_", "rolling_std_"),
    ),
    TableSpec(
        "silver.series_profile",
        partition_by=("freq",),
        keys=("freq", "sku", "location"),
        description="per series: demand class (ADI/CV2), ABC-XYZ segment, history span",
        columns="freq string, sku string, location string, category string, first_date date, last_date date, "
        "n_periods long, n_nonzero long, total_demand double, revenue double, adi double, cv2 double, "
        "demand_cv double, demand_class string, abc string, xyz string, abc_xyz string, censored_share double, "
        "is_new boolean",
    ),
    TableSpec(
        "gold.forecast",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "date"),
        description="forecasts with 80/95% intervals",
        columns=f"{_RUN}, model string, date date, step int, {_PREDICTIONS}",
    ),
    TableSpec(
        "gold.forecast_backtest",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "fold"),
        description="rolling-origin backtest errors per series, model and fold",
        columns=f"{_RUN}, model string, fold int, cutoff date, horizon int, {_METRICS}, n_scored int",
    ),
    TableSpec(
        "gold.backtest_forecast",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model", "fold", "date"),
        description="backtest predictions against actuals, per period: the error sample that sizes safety stock",
        columns=f"{_RUN}, model string, fold int, cutoff date, date date, step int, y double, censored boolean, "
        f"{_PREDICTIONS}, mase_scale double",
    ),
    TableSpec(
        "gold.model_registry",
        partition_by=("run_date",),
        keys=("run_id", "sku", "location", "model"),
        description="model, orders and fit status per series and run",
        columns=f"{_RUN}, model string, demand_class string, params string, status string, reason string, "
        "fit_seconds double, train_start date, train_end date, n_obs long, input_versions string, "
        "config_hash string, mlflow_run_id string",
    ),
    TableSpec(
        "gold.model_selection",
        keys=("run_id", "sku", "location"),
        description="chosen model per series",
        columns=f"{_INVENTORY_RUN}, selected_model string, selection_method string, selection_metric string, "
        "metric_value double, backtest_periods long, candidates int, scored_candidates int, "
        "candidate_scores string, blend_weights string, reason string, config_hash string, horizon_model string, "
        "horizon_mae double",
    ),
    TableSpec(
        "gold.safety_stock",
        keys=("run_id", "sku", "location"),
        description="safety stock and its inputs",
        columns=f"{_INVENTORY_RUN}, model string, category string, demand_class string, abc_xyz string, "
        "service_measure string, service_target double, distribution string, safety_factor double, "
        "empirical_samples int, demand_per_period double, forecast_error_std double, level_error_std double, "
        "error_std_source string, lead_time_days double, lead_time_std_days double, review_period_days double, "
        "lead_time_demand double, lead_time_demand_std double, protection_demand_std double, "
        "safety_stock_continuous double, safety_stock_periodic double, policy string, protection_days double, "
        "safety_stock double, notes string, config_hash string",
    ),
    TableSpec(
        "gold.replenishment_plan",
        keys=("run_id", "sku", "location"),
        description="reorder point, order-up-to level and the order to place",
        columns=f"{_INVENTORY_RUN}, model string, category string, abc_xyz string, policy string, "
        "service_measure string, service_target double, demand_per_period double, lead_time_days double, "
        "review_period_days double, safety_stock double, reorder_point double, order_up_to_level double, "
        "rounding_allowance double, economic_order_quantity double, lot_size double, moq double, "
        "pack_size double, unit_cost double, snapshot_date date, on_hand double, on_order double, "
        "backorders double, inventory_position double, order_quantity double, order_value double, "
        "order_reason string, notes string, config_hash string",
    ),
    TableSpec(
        "gold.forecast_accuracy",
        description="accuracy rolled up by category, location and class",
        columns="run_id string, run_date date, freq string, forecast_run_id string, dimension string, "
        "dimension_value string, model string, series long, folds long, mase double, wape double, bias double, "
        "rmse double, coverage_80 double, coverage_95 double, config_hash string",
    ),
    TableSpec(
        "gold.inventory_simulation",
        description="replayed service level and inventory per policy",
        columns=f"{_INVENTORY_RUN}, category string, demand_class string, abc_xyz string, policy string, "
        "cover_weeks double, service_measure string, service_target double, holdout_start date, "
        "holdout_end date, periods int, cycles int, stockout_cycles int, cycle_service_level double, "
        "demand double, filled double, fill_rate double, stockout_periods int, average_on_hand double, "
        "average_inventory_value double, orders int, unit_cost double, config_hash string",
    ),
    TableSpec(
        "gold.inventory_position",
        keys=("sku", "location"),
        description="current on hand, on order, backorders and position per series, kept by `replenish stream`",
        columns="sku string, location string, snapshot_date date, net_stock double, on_hand double, "
        "on_order double, backorders double, inventory_position double, events_applied long, "
        "last_event_date date, updated_at timestamp, stream_id string, batch_id long",
    ),
    TableSpec(
        "gold.reorder_alerts",
        keys=("stream_id", "batch_id", "sku", "location"),
        description="a position that crossed the latest plan's reorder point, appended by `replenish stream`",
        columns="stream_id string, batch_id long, alerted_at timestamp, sku string, location string, "
        "plan_run_id string, policy string, reorder_point double, order_up_to_level double, "
        "previous_position double, inventory_position double, on_hand double, on_order double, "
        "backorders double, order_quantity double",
    ),
    TableSpec(
        "gold.data_quality",
        keys=("run_id", "stage", "table_name", "check", "column_name"),
        description="every check of the data-quality gate before forecasting and planning, with its verdict",
        columns=f"{_STAMP}, stage string, table_name string, check string, column_name string, value double, "
        "threshold double, baseline double, status string, action string, message string, checked_at timestamp",
    ),
    TableSpec(
        "silver.lstm_windows",
        partition_by=("freq",),
        keys=("freq", "sku", "location", "origin"),
        description="LSTM training windows: history, known-future covariates, targets and static features",
        columns="freq string, sku string, location string, origin date, origin_idx int, split string, "
        "history array<float>, future array<float>, target array<float>, target_mask array<float>, "
        "scale float, category_bucket int, location_bucket int, projection array<float>",
    ),
    TableSpec(
        "silver.user_index",
        keys=("user_id",),
        description="user id -> ALS integer index, stable across runs",
        columns="user_id string, user_index int",
    ),
    TableSpec(
        "silver.sku_index",
        keys=("sku",),
        description="SKU -> ALS integer index, stable across runs",
        columns="sku string, sku_index int",
    ),
    TableSpec(
        "gold.recommendations",
        keys=("user_id", "rank"),
        description="top-N SKUs per user from implicit ALS (latest run), purchased SKUs excluded",
        columns=f"user_id string, sku string, rank int, score double, {_STAMP}",
    ),
    TableSpec(
        "gold.item_factors",
        keys=("sku",),
        description="ALS item factors and their low-dimensional projection per SKU (latest run)",
        columns=f"sku string, factors array<float>, projection array<float>, {_STAMP}",
    ),
    TableSpec(
        "gold.similar_items",
        keys=("sku", "rank"),
        description="top-k most similar SKUs by cosine of ALS item factors (latest run)",
        columns=f"sku string, similar_sku string, rank int, similarity double, {_STAMP}",
    ),
    TableSpec(
        "gold.recommender_evaluation",
        keys=("run_id", "model", "als_rank", "reg_param", "alpha"),
        description="precision/recall/MAP/NDCG@k of each ALS setting searched and of the popularity baseline",
        columns=f"{_STAMP}, model string, als_rank int, reg_param double, alpha double, k int, "
        "precision_at_k double, recall_at_k double, map_at_k double, ndcg_at_k double, test_users long, "
        "chosen boolean",
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
