"""The naive-policy comparison and the HTML report, on hand-made summary frames (pandas, no Spark)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from replenish.inventory.holdout import compare_with_naive
from replenish.inventory.settings import InventoryConfig, SimulationConfig
from replenish.report import ReportData, SampleSeries, render_report


def summary_rows() -> pd.DataFrame:
    rows = []
    for service_class, target, optimized, naive in (
        # class, target, optimized (CSL, units), naive per cover 1/2/4 weeks (CSL, units)
        ("AX", 0.98, (0.975, 100.0), [(0.90, 80.0), (0.96, 120.0), (0.99, 200.0)]),
        ("CZ", 0.90, (0.70, 50.0), [(0.80, 40.0), (0.85, 60.0), (0.88, 90.0)]),
        ("ALL", 0.95, (0.95, 150.0), [(0.88, 120.0), (0.93, 180.0), (0.97, 290.0)]),
    ):
        level, units = optimized
        rows.append((service_class, "optimized", None, 300, target, level, level, units, 2 * units, 5))
        for cover, (naive_level, naive_units) in zip((1.0, 2.0, 4.0), naive, strict=True):
            rows.append(
                (service_class, "naive", cover, 300, target, naive_level, naive_level, naive_units, 2 * naive_units, 9)
            )
    columns = [
        "service_class",
        "policy",
        "cover_weeks",
        "series",
        "service_target",
        "cycle_service_level",
        "fill_rate",
        "average_on_hand",
        "average_inventory_value",
        "stockout_periods",
    ]
    return pd.DataFrame(rows, columns=columns)


def test_naive_cover_and_inventory_are_interpolated_at_equal_service() -> None:
    table = compare_with_naive(summary_rows(), InventoryConfig()).set_index("service_class")
    ax = table.loc["AX"]
    # 0.975 lies half way from 0.96 (2 weeks, 120 units) to 0.99 (4 weeks, 200 units).
    assert ax["naive_cover_weeks"] == pytest.approx(3.0)
    assert ax["naive_average_on_hand"] == pytest.approx(160.0)
    assert ax["naive_average_inventory_value"] == pytest.approx(320.0)
    assert ax["inventory_saving"] == pytest.approx(1 - 100 / 160)
    assert ax["gap_pp"] == pytest.approx(-0.5)
    assert ax["within_target"] and ax["held_to_target"]


def test_a_service_below_the_whole_naive_grid_needs_its_first_cover() -> None:
    cz = compare_with_naive(summary_rows(), InventoryConfig()).set_index("service_class").loc["CZ"]
    assert cz["naive_cover_weeks"] == 1.0
    assert cz["inventory_saving"] == pytest.approx(1 - 50 / 40)  # negative: the policy holds more here
    assert not cz["within_target"]


def test_a_service_above_the_naive_grid_has_no_equivalent() -> None:
    rows = summary_rows()
    rows.loc[(rows["service_class"] == "AX") & (rows["policy"] == "optimized"), "cycle_service_level"] = 0.999
    ax = compare_with_naive(rows, InventoryConfig()).set_index("service_class").loc["AX"]
    assert math.isnan(ax["naive_cover_weeks"]) and math.isnan(ax["inventory_saving"])


def test_small_classes_are_reported_but_not_held_to_the_target() -> None:
    settings = InventoryConfig(simulation=SimulationConfig(min_class_series=1000))
    table = compare_with_naive(summary_rows(), settings)
    assert not table["held_to_target"].any()
    assert table["service_class"].iloc[-1] == "ALL"


def test_fill_rate_measure_compares_fill_rates() -> None:
    rows = summary_rows()
    rows["fill_rate"] = rows["cycle_service_level"] + 0.01
    table = compare_with_naive(rows, InventoryConfig(service_measure="fill_rate")).set_index("service_class")
    assert table.loc["AX", "achieved"] == pytest.approx(0.985)


def test_report_renders_every_section_self_contained() -> None:
    settings = InventoryConfig()
    summary = summary_rows()
    days = pd.date_range("2024-01-01", periods=10).date
    sample = SampleSeries(
        title="SKU-1 @ L1",
        history=pd.DataFrame({"date": days, "demand": range(10)}),
        backtest=pd.DataFrame({"date": days[:5], "yhat": 4.0, "yhat_lo_80": 3.0, "yhat_hi_80": 5.0}),
        forecast=pd.DataFrame({"date": days[5:], "yhat": 5.0, "yhat_lo_95": 2.0, "yhat_hi_95": 8.0}),
    )
    accuracy = pd.DataFrame(
        {
            "dimension": ["abc_xyz", "abc_xyz", "total"],
            "dimension_value": ["AX", "AX", "all"],
            "model": ["arima", "selected", "selected"],
            "series": [3, 3, 3],
            "mase": [0.8, 0.7, 0.7],
            "wape": [0.3, 0.2, 0.2],
            "bias": [0.0, 0.01, 0.01],
            "coverage_80": [0.8, 0.8, 0.8],
            "coverage_95": [0.95, 0.95, 0.95],
        }
    )
    data = ReportData(
        run={
            "inventory_run_id": "inv-1",
            "forecast_run_id": "fc-1",
            "orders": 12,
            "holdout_start": dt.date(2024, 1, 1),
        },
        settings=settings,
        comparison=compare_with_naive(summary, settings),
        simulation_summary=summary,
        accuracy=accuracy,
        selection_counts=pd.DataFrame({"selected_model": ["arima"], "selection_method": ["best"], "series": [3]}),
        samples=[sample],
    )
    html = render_report(data, generated=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
    assert html.count('src="data:image/png;base64,') == 5
    assert "less inventory</b> at equal service" in html
    assert "inv-1" in html and "fc-1" in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_report_says_which_job_to_run_for_missing_sections() -> None:
    html = render_report(ReportData(run={}, settings=InventoryConfig()))
    assert "replenish simulate" in html and "replenish inventory" in html and "replenish forecast" in html
