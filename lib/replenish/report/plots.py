"""The report's figures: matplotlib (Agg backend) rendered to base64 PNG, from small pandas frames.

Every function takes already-aggregated data (a few hundred rows at most) and returns a `data:` URI
that an `<img>` tag embeds, so the HTML report is one self-contained file.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BLUE, ORANGE, GREY, GREEN, RED = "#1f5fa8", "#e07b1a", "#8a8a8a", "#2e8b57", "#c0392b"


def _figure(width: float = 7.5, height: float = 3.4) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure


def to_data_uri(figure: Figure) -> str:
    """The figure as a `data:image/png;base64,…` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def forecast_vs_actual(history: pd.DataFrame, backtest: pd.DataFrame, forecast: pd.DataFrame, title: str) -> str:
    """One series: actual demand, the backtest predictions with their 80/95 % intervals, the forecast.

    Args:
        history: date, demand (the recent actuals).
        backtest: date, yhat, yhat_lo_80, yhat_hi_80, yhat_lo_95, yhat_hi_95 of the selected model.
        forecast: the same columns for the future.
        title: the series and its model.
    """
    figure = _figure(7.5, 2.8)
    axes = figure.subplots()
    for frame, color, label in ((backtest, ORANGE, "backtest"), (forecast, BLUE, "forecast")):
        if frame.empty:
            continue
        frame = frame.sort_values("date")
        dates = pd.to_datetime(frame["date"])
        if {"yhat_lo_95", "yhat_hi_95"} <= set(frame.columns):
            axes.fill_between(dates, frame["yhat_lo_95"], frame["yhat_hi_95"], color=color, alpha=0.12, lw=0)
        if {"yhat_lo_80", "yhat_hi_80"} <= set(frame.columns):
            axes.fill_between(dates, frame["yhat_lo_80"], frame["yhat_hi_80"], color=color, alpha=0.25, lw=0)
        axes.plot(dates, frame["yhat"], color=color, lw=1.4, label=f"{label} (80/95 % bands)")
    if not history.empty:
        history = history.sort_values("date")
        axes.plot(pd.to_datetime(history["date"]), history["demand"], color="black", lw=0.8, label="actual")
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_ylabel("units per period")
    axes.legend(fontsize=7, loc="upper left", frameon=False, ncols=3)
    axes.tick_params(labelsize=8)
    return to_data_uri(figure)


def accuracy_by_class(accuracy: pd.DataFrame, metric: str = "mase") -> str:
    """Grouped bars: a backtest metric per ABC-XYZ class and model (rows with dimension = abc_xyz)."""
    figure = _figure()
    axes = figure.subplots()
    table = accuracy.pivot_table(index="dimension_value", columns="model", values=metric, aggfunc="mean")
    if table.empty:
        axes.text(0.5, 0.5, "no backtest metrics", ha="center", va="center")
        return to_data_uri(figure)
    positions = np.arange(len(table.index))
    width = 0.8 / max(len(table.columns), 1)
    for i, model in enumerate(table.columns):
        color = BLUE if model == "selected" else None
        axes.bar(positions + i * width, table[model].to_numpy(), width, label=model, color=color)
    axes.set_xticks(positions + width * (len(table.columns) - 1) / 2, table.index)
    axes.set_ylabel(metric.upper())
    axes.set_title(f"Backtest {metric.upper()} by ABC-XYZ class (lower is better)", fontsize=10, loc="left")
    axes.legend(fontsize=7, frameon=False, ncols=4)
    return to_data_uri(figure)


def service_vs_target(comparison: pd.DataFrame, measure_label: str) -> str:
    """Bars of achieved service per class, with the target and the ± tolerance band marked."""
    figure = _figure()
    axes = figure.subplots()
    positions = np.arange(len(comparison))
    colors = [
        (GREEN if ok else RED) if held else GREY
        for ok, held in zip(comparison["within_target"], comparison["held_to_target"], strict=True)
    ]
    axes.bar(positions, 100 * comparison["achieved"], color=colors, width=0.6, label="achieved")
    axes.scatter(positions, 100 * comparison["service_target"], color="black", marker="_", s=400, label="target")
    axes.set_xticks(positions, comparison["service_class"])
    low = float(np.nanmin(100 * comparison[["achieved", "service_target"]].to_numpy())) if len(comparison) else 80.0
    axes.set_ylim(max(0.0, low - 5.0), 100.5)
    axes.set_ylabel(f"{measure_label} (%)")
    axes.set_title(
        f"Achieved {measure_label} vs target (green: within tolerance; grey: class too small to judge)",
        fontsize=10,
        loc="left",
    )
    axes.legend(fontsize=7, frameon=False)
    return to_data_uri(figure)


def inventory_vs_naive(summary: pd.DataFrame, measure: str, measure_label: str) -> str:
    """All series: the naive policy's service-vs-inventory curve over its covers, and the optimized point."""
    figure = _figure()
    axes = figure.subplots()
    overall = summary[summary["service_class"] == "ALL"]
    naive = overall[overall["policy"] == "naive"].sort_values("cover_weeks")
    optimized = overall[overall["policy"] == "optimized"]
    axes.plot(naive["average_on_hand"], 100 * naive[measure], marker="o", color=GREY, label="naive: weeks of cover")
    for row in naive.itertuples(index=False):
        axes.annotate(f"{row.cover_weeks:g}w", (row.average_on_hand, 100 * getattr(row, measure)), fontsize=6)
    axes.scatter(
        optimized["average_on_hand"], 100 * optimized[measure], color=BLUE, s=60, zorder=3, label="optimized policy"
    )
    axes.set_xlabel("average units on hand (all series)")
    axes.set_ylabel(f"{measure_label} (%)")
    axes.set_title("Inventory needed for a service level: optimized vs naive", fontsize=10, loc="left")
    axes.legend(fontsize=7, frameon=False, loc="lower right")
    return to_data_uri(figure)


def inventory_by_class(comparison: pd.DataFrame) -> str:
    """Per class: average units on hand of the optimized policy and of the naive one at equal service."""
    figure = _figure()
    axes = figure.subplots()
    table = comparison[comparison["service_class"] != "ALL"]
    positions = np.arange(len(table))
    axes.bar(positions - 0.2, table["average_on_hand"], 0.4, color=BLUE, label="optimized")
    axes.bar(positions + 0.2, table["naive_average_on_hand"], 0.4, color=GREY, label="naive at equal service")
    axes.set_xticks(positions, table["service_class"])
    axes.set_ylabel("average units on hand")
    axes.set_title("Inventory at equal service, per class", fontsize=10, loc="left")
    axes.legend(fontsize=7, frameon=False)
    return to_data_uri(figure)
