"""The self-contained HTML report: one file, inline CSS, figures as base64 PNG, tables as HTML.

`render_report(data)` is pure (pandas + matplotlib, no Spark), so it is tested on hand-made frames.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

import pandas as pd

from replenish.report import plots
from replenish.report.content import ReportData

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.meta { color: #666; font-size: 0.85rem; }
.headline { background: #f2f6fb; border-left: 4px solid #1f5fa8; padding: 0.8rem 1rem; margin: 1.2rem 0; }
.missing { color: #a05a00; font-style: italic; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.6rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #fafafa; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
.ok { color: #2e8b57; font-weight: 600; } .off { color: #c0392b; font-weight: 600; }
"""

MEASURE_LABELS = {"cycle": "cycle service level", "fill_rate": "fill rate"}


def _escape(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f} %"


def _table(frame: pd.DataFrame, formats: dict[str, Any] | None = None) -> str:
    formats = formats or {}
    shown = frame.copy()
    for column, formatter in formats.items():
        if column in shown.columns:
            shown[column] = shown[column].map(formatter)
    return shown.to_html(index=False, escape=True, border=0, na_rep="–")


def _image(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_escape(alt)}">'


def _missing(what: str, how: str) -> str:
    return f'<p class="missing">{_escape(what)} not available: run <code>{_escape(how)}</code>.</p>'


def _headline(data: ReportData) -> str:
    comparison = data.comparison
    if comparison is None or comparison.empty:
        return _missing("The simulation", "replenish simulate")
    overall = comparison[comparison["service_class"] == "ALL"]
    if overall.empty:
        return ""
    row = overall.iloc[0]
    label = MEASURE_LABELS[data.settings.service_measure]
    if math.isnan(row["naive_average_on_hand"]):
        naive = (
            "the naive weeks-of-cover policy does not reach that service level within its grid of "
            f"{max(data.settings.simulation.naive_cover_weeks):g} weeks"
        )
    else:
        naive = (
            f"the planners' naive policy needs <b>{row['naive_cover_weeks']:.1f} weeks of cover</b> and "
            f"<b>{_number(row['naive_average_on_hand'], 0)}</b> units on average to match it: the policy holds "
            f"<b>{_percent(row['inventory_saving'])} less inventory</b> at equal service"
        )
    classes = comparison[(comparison["service_class"] != "ALL") & comparison["held_to_target"]]
    within = int(classes["within_target"].sum())
    tolerance = 100 * data.settings.simulation.tolerance
    return (
        '<div class="headline">'
        f"Over the hold-out the policy achieved a {label} of <b>{_percent(row['achieved'])}</b> "
        f"with <b>{_number(row['average_on_hand'], 0)}</b> units on hand on average; {naive}. "
        f"{within} of {len(classes)} classes with at least {data.settings.simulation.min_class_series} series "
        f"are within ±{tolerance:g} pp of their target."
        "</div>"
    )


def _simulation_section(data: ReportData) -> str:
    if data.comparison is None or data.comparison.empty or data.simulation_summary is None:
        return "<h2>Service level achieved vs target</h2>" + _missing("The simulation", "replenish simulate")
    measure = "cycle_service_level" if data.settings.service_measure == "cycle" else "fill_rate"
    label = MEASURE_LABELS[data.settings.service_measure]
    comparison = data.comparison
    table = comparison[
        [
            "service_class",
            "series",
            "service_target",
            "cycle_service_level",
            "fill_rate",
            "gap_pp",
            "within_target",
            "stockout_periods",
            "average_on_hand",
            "naive_cover_weeks",
            "naive_average_on_hand",
            "inventory_saving",
        ]
    ].copy()
    table["within_target"] = [
        ("yes" if ok else "NO") if held else "n/a (small)"
        for ok, held in zip(comparison["within_target"], comparison["held_to_target"], strict=True)
    ]
    formats = {
        "service_target": _percent,
        "cycle_service_level": _percent,
        "fill_rate": _percent,
        "gap_pp": lambda v: _number(v, 2),
        "average_on_hand": lambda v: _number(v, 0),
        "naive_cover_weeks": lambda v: _number(v, 1),
        "naive_average_on_hand": lambda v: _number(v, 0),
        "inventory_saving": _percent,
    }
    classes = comparison[comparison["service_class"] != "ALL"]
    return (
        "<h2>Service level achieved vs target</h2>"
        f"<p>Hold-out {data.run.get('holdout_start')} to {data.run.get('holdout_end')}, replayed period by period "
        f"with actual demand and sampled lead times; the policy is re-planned at each backtest cutoff from what was "
        f"known then. Service is the {label} pooled over each class.</p>"
        + _image(plots.service_vs_target(classes, label), "achieved vs target service per class")
        + "<h2>Inventory vs the naive policy</h2>"
        "<p>The naive policy orders up to a fixed number of weeks of mean demand (the planners' rule of thumb), "
        "replayed on the same demand and lead times for a grid of covers; its inventory at the optimized policy's "
        "service level is interpolated on that grid.</p>"
        + _image(plots.inventory_vs_naive(data.simulation_summary, measure, label), "service vs inventory")
        + _image(plots.inventory_by_class(comparison), "inventory per class at equal service")
        + _table(table, formats)
    )


def _accuracy_section(data: ReportData) -> str:
    if data.accuracy is None or data.accuracy.empty:
        return "<h2>Forecast accuracy</h2>" + _missing("Forecast accuracy", "replenish inventory")
    by_class = data.accuracy[data.accuracy["dimension"] == "abc_xyz"]
    overall = data.accuracy[data.accuracy["dimension"].isin(["total", "demand_class"])].sort_values(
        ["dimension", "dimension_value", "model"]
    )
    columns = ["dimension", "dimension_value", "model", "series", "mase", "wape", "bias", "coverage_80", "coverage_95"]
    formats = {
        "mase": lambda v: _number(v, 3),
        "wape": _percent,
        "bias": _percent,
        "coverage_80": _percent,
        "coverage_95": _percent,
    }
    return (
        "<h2>Forecast accuracy</h2>"
        "<p>Rolling-origin backtest, each series averaged over its folds, series weighted equally; "
        "<code>selected</code> is each series' chosen model. Bias is (forecast − actual) / actual.</p>"
        + _image(plots.accuracy_by_class(by_class), "accuracy by class")
        + _table(overall[columns], formats)
    )


def _samples_section(data: ReportData) -> str:
    if not data.samples:
        return "<h2>Forecast vs actual</h2>" + _missing("Sample forecasts", "replenish forecast")
    images = "".join(
        _image(plots.forecast_vs_actual(s.history, s.backtest, s.forecast, s.title), s.title) for s in data.samples
    )
    return (
        "<h2>Forecast vs actual, sample series</h2>"
        "<p>Actual demand (black), the selected model's backtest predictions (orange) and its forecast (blue), "
        "with 80 % and 95 % intervals.</p>" + images
    )


def _plan_section(data: ReportData) -> str:
    parts = ["<h2>Model selection and safety stock</h2>"]
    if data.selection_counts is not None:
        parts.append(_table(data.selection_counts, {"mean_metric": lambda v: _number(v, 3)}))
    if data.safety_by_class is not None:
        parts.append(
            _table(
                data.safety_by_class,
                {
                    "service_target": _percent,
                    "mean_error_std": lambda v: _number(v, 2),
                    "safety_stock_units": lambda v: _number(v, 0),
                },
            )
        )
    if data.selection_counts is None and data.safety_by_class is None:
        parts.append(_missing("The plan", "replenish inventory"))
    parts.append("<h2>Largest recommended orders</h2>")
    if data.top_orders is not None and not data.top_orders.empty:
        numeric = ("inventory_position", "reorder_point", "order_up_to_level", "order_quantity", "order_value")
        parts.append(_table(data.top_orders, {c: (lambda v: _number(v, 1)) for c in numeric}))
    else:
        parts.append("<p>No orders are due.</p>")
    return "".join(parts)


def render_report(data: ReportData, *, generated: dt.datetime | None = None) -> str:
    """The report as one HTML document (str)."""
    generated = generated or dt.datetime.now(dt.UTC)
    run = data.run
    settings = data.settings
    meta = (
        f"inventory run {_escape(run.get('inventory_run_id'))} · forecast run {_escape(run.get('forecast_run_id'))}"
        f" · frequency {_escape(settings.freq)} · policy {_escape(run.get('policy', settings.policy))}"
        f" · service measure {_escape(MEASURE_LABELS[settings.service_measure])}"
        f" · generated {generated:%Y-%m-%d %H:%M} UTC"
    )
    orders = run.get("orders")
    body = "".join(
        [
            "<h1>replenish: forecast and inventory report</h1>",
            f'<p class="meta">{meta}</p>',
            _headline(data),
            f"<p>{_number(orders, 0)} orders are recommended in this plan.</p>" if orders is not None else "",
            _simulation_section(data),
            _accuracy_section(data),
            _samples_section(data),
            _plan_section(data),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>replenish report</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
