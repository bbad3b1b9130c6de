"""Keep the inventory position current from sales and inventory movements as they land (Structured Streaming).

Reads `bronze.sales` and `bronze.inventory_movements` as Delta streams and keeps
`gold.inventory_position` (on hand, on order, backorders and the position, per SKU-location, seeded from
the latest `bronze.inventory` snapshot) and appends `gold.reorder_alerts` when a position crosses the
reorder point of the latest `gold.replenishment_plan` run. Checkpointed: a stream killed at any point
and started again neither loses nor repeats an event (docs/streaming.md).

Examples:
  replenish stream --available-now               # what has landed, then stop (cron, tests)
  replenish stream --processing-time "30 seconds" # keep running, a micro-batch every 30 s
  replenish stream --available-now --reset        # new snapshot: rebuild the positions, replay the events
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import functions as F

from replenish import config
from replenish.errors import ConfigError, LakeError
from replenish.stream.delta_conf import has_delta
from replenish.stream.runner import ALERTS, POSITIONS, default_checkpoint, prepare_tables, start_stream
from replenish.stream.settings import StreamConfig
from replenish_jobs.harness import JobContext, job_main

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("stream options")
    trigger = group.add_mutually_exclusive_group()
    trigger.add_argument("--available-now", action="store_true", help="process every event that has landed, then stop")
    trigger.add_argument(
        "--processing-time",
        metavar="INTERVAL",
        help="run continuously, one micro-batch per INTERVAL (e.g. '30 seconds'); default: stream.processing_time",
    )
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a continuous run after SECONDS")
    group.add_argument("--checkpoint", help="checkpoint folder; default: stream.checkpoint or <lake>/_checkpoints/")
    group.add_argument(
        "--max-files-per-trigger", type=int, metavar="N", help="at most N new files per source per batch"
    )
    group.add_argument(
        "--reset",
        action="store_true",
        help="delete the checkpoint and seed the positions again from the latest snapshots, then replay",
    )


def resolve_settings(ctx: JobContext, args: argparse.Namespace) -> StreamConfig:
    """The `stream:` settings with this run's options applied."""
    cfg = config.section(ctx.settings, "stream", StreamConfig)
    overrides: dict[str, Any] = {}
    if args.processing_time:
        overrides["processing_time"] = args.processing_time
    if args.max_files_per_trigger is not None:
        overrides["max_files_per_trigger"] = args.max_files_per_trigger
    if args.checkpoint:
        overrides["checkpoint"] = args.checkpoint
    return StreamConfig(**{**cfg.__dict__, **overrides})


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    if not has_delta(ctx.spark):
        raise ConfigError("replenish stream needs delta-spark in the Spark session (spark.sql.extensions)")
    if args.timeout is not None and args.available_now:
        raise ConfigError("--timeout applies to a continuous run, not to --available-now")
    cfg = resolve_settings(ctx, args)
    checkpoint = cfg.checkpoint or default_checkpoint(ctx.lake.root)
    prepared = prepare_tables(ctx.lake, checkpoint=checkpoint, reset=args.reset)
    query = start_stream(ctx.lake, cfg, checkpoint=checkpoint, available_now=args.available_now)
    log.info("stream %s started (checkpoint %s)", query.id, checkpoint)
    try:
        if args.timeout is None:
            query.awaitTermination()
        elif not query.awaitTermination(args.timeout):
            query.stop()
    except KeyboardInterrupt:
        query.stop()
    except StreamingQueryException as exc:
        raise LakeError(f"the stream {query.id} stopped with an error: {exc}") from exc
    progress = query.recentProgress
    batches = [p for p in progress if p.get("numInputRows") is not None and "batchId" in p]
    positions = ctx.lake.read(POSITIONS)
    alerts = ctx.lake.read(ALERTS).where(F.col("stream_id") == str(query.id))
    return {
        "stream_id": str(query.id),
        "checkpoint": checkpoint,
        "seeded_positions": prepared["seeded_positions"],
        "batches": len({p["batchId"] for p in batches if p["numInputRows"] > 0}),
        "input_rows": sum(p["numInputRows"] for p in batches),
        "positions": positions.count(),
        "alerts_of_stream": alerts.count(),
        "versions": ctx.lake.versions([POSITIONS, ALERTS]),
    }


main = job_main("stream", __doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
