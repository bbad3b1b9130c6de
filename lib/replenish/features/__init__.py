"""The features stage: gap-filled demand series with features (`silver.demand`) and series profiles.

`build_features` and `profile_series` are the two transforms `replenish features` runs; the smaller
pieces (`build_demand`, `add_price_features`, `add_lag_features`, `add_calendar_features`) compose
the same way for notebooks and for forecasting's future calendar.
"""

from replenish.features.calendar import (
    CALENDAR_COLUMNS,
    add_calendar_features,
    build_calendar,
    calendar_frame,
    complete_period_range,
    period_start,
)
from replenish.features.classify import (
    abc_classes,
    average_demand_interval,
    classify_demand,
    coefficient_of_variation,
    profile_series,
    squared_cv,
    syntetos_boylan_class,
    xyz_class,
)
from replenish.features.demand import (
    add_lag_features,
    add_price_features,
    build_demand,
    build_features,
    lag_columns,
    sales_date_range,
    table_lag_columns,
)
from replenish.features.settings import FREQUENCIES, FeaturePeriods, FeaturesConfig

__all__ = [
    "CALENDAR_COLUMNS",
    "FREQUENCIES",
    "FeaturePeriods",
    "FeaturesConfig",
    "abc_classes",
    "add_calendar_features",
    "add_lag_features",
    "add_price_features",
    "average_demand_interval",
    "build_calendar",
    "build_demand",
    "build_features",
    "calendar_frame",
    "classify_demand",
    "coefficient_of_variation",
    "complete_period_range",
    "lag_columns",
    "period_start",
    "profile_series",
    "sales_date_range",
    "squared_cv",
    "syntetos_boylan_class",
    "table_lag_columns",
    "xyz_class",
]
