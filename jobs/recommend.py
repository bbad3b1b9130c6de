"""Recommend SKUs to users with implicit-feedback ALS, and publish SKU embeddings and similar SKUs.

Reads bronze.interactions (views, add-to-carts, purchases; bronze.products only to report SKUs it
does not know). Events become confidences (type weights, age decay), user and SKU ids integer
indices (silver.user_index, silver.sku_index, kept stable across runs), and a small search over
rank, regParam and alpha on a time split picks the settings (gold.recommender_evaluation, with a
popularity baseline). A model refit on all interactions publishes gold.recommendations,
gold.item_factors and gold.similar_items (each replaced by the latest run). See docs/recommend.md.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from replenish import config
from replenish.recommend import RecommendConfig, build_recommender
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)

INPUTS = ("bronze.interactions", "bronze.products", "silver.user_index", "silver.sku_index")
OVERWRITTEN = ("gold.item_factors", "gold.similar_items", "gold.recommendations")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--if-interactions",
        action="store_true",
        help="do nothing (exit 0) when bronze.interactions does not exist, instead of failing (run-all)",
    )


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    cfg = config.section(ctx.settings, "recommend", RecommendConfig)
    versions = ctx.lake.versions(INPUTS)
    if versions["bronze.interactions"] is None:
        if args.if_interactions:
            print("recommend: skipped, bronze.interactions does not exist (ingest an interactions file first)")
            return {"skipped": "bronze.interactions does not exist"}
        from replenish.errors import LakeError

        raise LakeError("bronze.interactions does not exist; ingest an interactions file first")
    checkpoint = cfg.checkpoint_dir or f"{ctx.lake.root.rstrip('/')}/_checkpoints/recommend"
    ctx.spark.sparkContext.setCheckpointDir(checkpoint)

    def current(name: str) -> Any:
        return None if versions[name] is None else ctx.lake.read(name, version=versions[name])

    products = current("bronze.products")
    result = build_recommender(
        ctx.lake.read("bronze.interactions", version=versions["bronze.interactions"]),
        cfg=cfg,
        user_map=current("silver.user_index"),
        sku_map=current("silver.sku_index"),
        run_id=ctx.run_id,
        run_date=ctx.run_date,
        known_skus=None if products is None else products.select("sku"),
    )
    written = {}
    try:
        for name, frame in result.by_table().items():
            if name.startswith("silver."):
                written[name] = ctx.lake.insert_new(frame, name)
            else:
                written[name] = ctx.lake.write_with_result(
                    frame, name, mode="overwrite" if name in OVERWRITTEN else "append"
                )
    finally:
        result.release()
    return {
        **result.metrics,
        "rows": {name: w.rows_written for name, w in written.items()},
        "versions": {name: w.version for name, w in written.items()},
        "input_versions": versions,
    }


main = job_main("recommend", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
