"""Write the self-contained HTML report: accuracy, service achieved vs target, inventory vs naive.

Reads the latest runs of gold.replenishment_plan, gold.safety_stock, gold.model_selection,
gold.forecast_accuracy and gold.inventory_simulation, plus gold.forecast, gold.backtest_forecast and
silver.demand for a few sample series, and writes one HTML file with inline figures (forecast vs
actual with intervals, accuracy by class, service level achieved vs target, inventory vs the naive
policy) and the key tables. Sections whose tables do not exist yet say which job to run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from replenish.inventory.settings import inventory_settings
from replenish.report import collect_report_data, render_report
from replenish.shared import FREQUENCIES
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

TABLES = {
    "plan": "gold.replenishment_plan",
    "safety_stock": "gold.safety_stock",
    "selection": "gold.model_selection",
    "accuracy": "gold.forecast_accuracy",
    "simulation": "gold.inventory_simulation",
    "forecast": "gold.forecast",
    "backtest": "gold.backtest_forecast",
    "demand": "silver.demand",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="replenish_report.html", help="HTML file to write (default: %(default)s)")
    parser.add_argument("--freq", choices=FREQUENCIES, help="series frequency; default: features.freq")
    parser.add_argument("--samples", type=int, default=4, help="series pictured forecast vs actual (default: 4)")


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    settings = inventory_settings(ctx.settings, args.freq)
    versions = ctx.lake.versions(TABLES.values())
    frames = {
        key: ctx.lake.read(name, version=versions[name]) if versions[name] is not None else None
        for key, name in TABLES.items()
    }
    data = collect_report_data(
        settings=settings,
        samples=max(args.samples, 0),
        plan=frames["plan"],
        safety_stock=frames["safety_stock"],
        selection=frames["selection"],
        accuracy=frames["accuracy"],
        simulation=frames["simulation"],
        forecast=frames["forecast"],
        backtest=frames["backtest"],
        demand=frames["demand"],
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data), encoding="utf-8")
    log.info("report written to %s", out.resolve())
    return {
        "out": str(out.resolve()),
        "bytes": out.stat().st_size,
        "inventory_run_id": data.run.get("inventory_run_id"),
        "simulation_run_id": data.run.get("simulation_run_id"),
        "sections_missing": [key for key in ("plan", "simulation", "accuracy") if frames[key] is None],
        "input_versions": versions,
    }


main = job_main("report", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
