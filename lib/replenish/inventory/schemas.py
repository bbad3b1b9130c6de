"""The documented, stable schemas of the inventory stage's gold tables (docs/tables.md mirrors them).

BI reads these tables directly, so every output is projected onto its schema with `conform`: the
column order and types below are the contract, whatever the computation adds along the way.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from replenish.errors import ValidationError

_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "double": DoubleType(),
    "long": LongType(),
    "int": IntegerType(),
    "boolean": BooleanType(),
}


def schema(ddl: str) -> StructType:
    """A StructType from `name type, name type, …` (flat, primitive types; needs no JVM, unlike fromDDL)."""
    fields = []
    for item in ddl.split(","):
        name, type_name = item.split()
        fields.append(StructField(name, _TYPES[type_name], nullable=True))
    return StructType(fields)


_RUN = "run_id string, run_date date, freq string, sku string, location string, forecast_run_id string"

MODEL_SELECTION_SCHEMA = schema(
    f"{_RUN}, selected_model string, selection_method string, selection_metric string, metric_value double, "
    "backtest_periods long, candidates int, scored_candidates int, candidate_scores string, blend_weights string, "
    "reason string, config_hash string, horizon_model string, horizon_mae double"
)

SAFETY_STOCK_SCHEMA = schema(
    f"{_RUN}, model string, category string, demand_class string, abc_xyz string, service_measure string, "
    "service_target double, distribution string, safety_factor double, empirical_samples int, "
    "demand_per_period double, forecast_error_std double, level_error_std double, error_std_source string, "
    "lead_time_days double, "
    "lead_time_std_days double, review_period_days double, lead_time_demand double, lead_time_demand_std double, "
    "protection_demand_std double, safety_stock_continuous double, safety_stock_periodic double, policy string, "
    "protection_days double, safety_stock double, notes string, config_hash string"
)

REPLENISHMENT_PLAN_SCHEMA = schema(
    f"{_RUN}, model string, category string, abc_xyz string, policy string, service_measure string, "
    "service_target double, demand_per_period double, lead_time_days double, review_period_days double, "
    "safety_stock double, reorder_point double, order_up_to_level double, rounding_allowance double, "
    "economic_order_quantity double, "
    "lot_size double, moq double, pack_size double, unit_cost double, snapshot_date date, on_hand double, "
    "on_order double, backorders double, inventory_position double, order_quantity double, order_value double, "
    "order_reason string, notes string, config_hash string"
)

FORECAST_ACCURACY_SCHEMA = schema(
    "run_id string, run_date date, freq string, forecast_run_id string, dimension string, dimension_value string, "
    "model string, series long, folds long, mase double, wape double, bias double, rmse double, "
    "coverage_80 double, coverage_95 double, config_hash string"
)

INVENTORY_SIMULATION_SCHEMA = schema(
    "run_id string, run_date date, freq string, sku string, location string, forecast_run_id string, "
    "category string, demand_class string, abc_xyz string, policy string, cover_weeks double, "
    "service_measure string, service_target double, holdout_start date, holdout_end date, periods int, "
    "cycles int, stockout_cycles int, cycle_service_level double, demand double, filled double, "
    "fill_rate double, stockout_periods int, average_on_hand double, average_inventory_value double, "
    "orders int, unit_cost double, config_hash string"
)


def conform(df: DataFrame, target: StructType) -> DataFrame:
    """Select `target`'s columns from `df`, in its order and cast to its types.

    Raises:
        ValidationError: `df` lacks a column of the schema (a programming error worth a clear message).
    """
    missing = [f.name for f in target.fields if f.name not in df.columns]
    if missing:
        raise ValidationError(f"cannot conform to the output schema: missing column(s) {', '.join(missing)}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in target.fields])
