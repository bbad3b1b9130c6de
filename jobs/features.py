"""Build demand series with features (silver.demand) and series profiles (silver.series_profile).

Reads bronze.sales and bronze.products, fills each SKU-location series with zero-demand periods,
flags censored (mostly out-of-stock) periods, adds price, promo, calendar, holiday, lag and rolling
features at the chosen frequency, then classifies every series (ADI/CV² demand class, ABC-XYZ).
Both tables are partitioned by freq; a run replaces only its own frequency.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from replenish import config
from replenish.features import FREQUENCIES, FeaturesConfig, build_features, profile_series
from replenish.features.indicators import add_leading_indicators
from replenish_jobs.harness import JobContext, job_main

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from replenish.io.lake import WriteResult

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--freq",
        choices=FREQUENCIES,
        help="D (days), W (weeks starting Monday) or M (calendar months); default: features.freq of the profile",
    )
    parser.add_argument(
        "--grain",
        choices=("auto", *FREQUENCIES),
        help="the period one sales row stands for (a monthly extract dated on the 1st: M); default: "
        "features.grain (auto: detected from the dates and logged)",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="rebuild only the series bronze.sales gained rows of since the last build (all of them when the "
        "data's complete periods or the products changed); same rows as a full build (docs/lake.md)",
    )


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    cfg = config.section(ctx.settings, "features", FeaturesConfig)
    freq = args.freq or cfg.freq
    inputs = ctx.lake.versions(["bronze.sales", "bronze.products"])
    sales = ctx.lake.read("bronze.sales")
    if ctx.lake.exists("bronze.products"):
        products = ctx.lake.read("bronze.products")
    else:
        log.warning("bronze.products does not exist: no launch dates, unit prices or categories")
        products = None

    from replenish.features.incremental import current_inputs, incremental_demand

    if args.incremental:
        rebuilt, build_inputs, how = incremental_demand(ctx.lake, sales, products, cfg, freq=freq)
        log.info("features %s: %s", freq, how)
        if rebuilt is None:
            return {"freq": freq, "incremental": how, "input_versions": inputs}
        demand = rebuilt
    else:
        demand = build_features(sales, products, cfg, freq=freq, grain=args.grain)
        build_inputs, _ = current_inputs(ctx.lake, sales, freq=freq)
    ctx.lake.commit_info.update(build_inputs.as_commit_info())  # where the next incremental build starts
    interactions = ctx.lake.read("bronze.interactions") if ctx.lake.exists("bronze.interactions") else None
    baseline = max(cfg.for_freq(freq).rolling_windows)
    demand = add_leading_indicators(demand, interactions, freq=freq, baseline_periods=baseline)
    demand_written = _write_demand(ctx, demand, freq)
    for key in build_inputs.as_commit_info():
        ctx.lake.commit_info.pop(key, None)
    demand_version = demand_written.version
    # Profile the rows just committed instead of recomputing the demand pipeline.
    written = ctx.lake.read("silver.demand", version=demand_version).where(F.col("freq") == freq)
    profile = profile_series(written, products, cfg, freq=freq)
    profile_version = ctx.lake.write(profile, "silver.series_profile", mode="overwrite_partitions")

    profiles = ctx.lake.read("silver.series_profile", version=profile_version).where(F.col("freq") == freq)
    classes = {row["demand_class"]: row["count"] for row in profiles.groupBy("demand_class").count().collect()}
    return {
        "freq": freq,
        "demand_rows": demand_written.rows_written,
        "series": sum(classes.values()),
        "demand_classes": classes,
        "versions": {"silver.demand": demand_version, "silver.series_profile": profile_version},
        "input_versions": inputs,
        **({"incremental": how} if args.incremental else {}),
    }


def _column_types(df: DataFrame) -> dict[str, str]:
    return {field.name: field.dataType.simpleString() for field in df.schema.fields}


def _write_demand(ctx: JobContext, demand: DataFrame, freq: str) -> WriteResult:
    """Replace this frequency's partition of silver.demand, migrating the table when its columns changed.

    The lag and rolling columns follow the configuration. When they differ from the table's (lags
    were reconfigured), the other frequencies' rows are carried over in the same commit: columns
    they lack are null, columns no longer configured are dropped.
    """
    if ctx.lake.exists("silver.demand"):
        table = ctx.lake.read("silver.demand")
        if _column_types(table) != _column_types(demand):
            log.warning("silver.demand columns changed (%s -> %s): rewriting the table", table.columns, demand.columns)
            types = {field.name: field.dataType for field in demand.schema.fields}
            others = table.where(F.col("freq") != freq).select(
                *[
                    F.col(name).cast(types[name])
                    if name in table.columns
                    else F.lit(None).cast(types[name]).alias(name)
                    for name in demand.columns
                ]
            )
            return ctx.lake.write_with_result(demand.unionByName(others), "silver.demand", mode="overwrite")
    return ctx.lake.write_with_result(demand, "silver.demand", mode="overwrite_partitions")


main = job_main("features", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
