"""Generate a synthetic e-commerce data set: sales, products, locations, interactions, suppliers, inventory.

Writes one folder per entity under --out (CSV with a header row, or Parquet), with the columns of the
raw input files in docs/tables.md, ready for `replenish ingest`. The data are a deterministic function
of the seed and the scale: seasonality, trend, prices and promotions, holidays, intermittent slow
movers, mid-period launches, censored stockout spells, latent user tastes behind the interactions,
and a small share of bad sales rows for the quarantine (in CSV also unparseable dates and
quantities). Defaults: the `generate:` section of the profile (about 1,000 SKUs x 10 locations x
3 years of days). Columns beyond the contract: products.demand_profile, the generating truth.

Example:
  replenish generate --skus 200 --locations 5 --days 365 --out ./data/raw --format parquet
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from pyspark.sql import Observation
from pyspark.sql import functions as F

from replenish import config
from replenish.data.generate import GeneratorConfig, generate_dataset
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

# Options that override a setting of the `generate:` section of the same name.
_OVERRIDES = ("skus", "locations", "days", "start", "users", "seed", "out", "format")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generate options (default: the `generate:` section of the profile)")
    group.add_argument("--skus", type=int, help="number of products")
    group.add_argument("--locations", type=int, help="number of locations")
    group.add_argument("--days", type=int, help="days of sales history")
    group.add_argument("--start", help="first day of the history, YYYY-MM-DD")
    group.add_argument("--users", type=int, help="users in the interaction log")
    group.add_argument("--seed", type=int, help="random seed; the same seed and scale give the same data")
    group.add_argument("--out", help="output folder; one sub-folder per entity is replaced")
    group.add_argument("--format", choices=("csv", "parquet"), help="file format of the output")


def _output_path(out: str) -> str:
    """Local folders become absolute (Spark and the summary then agree); URIs are kept as given."""
    return out if "://" in out or out.startswith("dbfs:") else str(Path(out).expanduser().resolve())


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    settings = config.section(ctx.settings, "generate", GeneratorConfig)
    overrides = {name: getattr(args, name) for name in _OVERRIDES if getattr(args, name) is not None}
    cfg = dataclasses.replace(settings, **overrides)
    out = _output_path(cfg.out)
    frames = generate_dataset(ctx.spark, cfg)

    counts: dict[str, int] = {}
    for entity, frame in frames.items():
        path = f"{out}/{entity}"
        # The row count is observed while writing: a second pass over the data would cost as much.
        observation = Observation(entity)
        writer = frame.observe(observation, F.count(F.lit(1)).alias("rows")).write.mode("overwrite")
        if cfg.format == "csv":
            writer.option("header", True).option("dateFormat", "yyyy-MM-dd").option(
                "timestampFormat", "yyyy-MM-dd HH:mm:ss"
            ).csv(path)
        else:
            writer.parquet(path)
        counts[entity] = int(observation.get["rows"])
        log.info("generate: wrote %d %s rows to %s", counts[entity], entity, path)
    return {
        "out": out,
        "format": cfg.format,
        "seed": cfg.seed,
        "scale": {"skus": cfg.skus, "locations": cfg.locations, "days": cfg.days, "users": cfg.users},
        "start": str(cfg.start_date),
        "end": str(cfg.end_date),
        "counts": counts,
    }


main = job_main("generate", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
