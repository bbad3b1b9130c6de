"""What every job shares: common options, settings, the Spark session, the lake and run metadata.

A job module (`jobs/<name>.py`) defines `add_arguments(parser)` and `run(ctx, args) -> dict` and
ends with `main = job_main(...)`; the same module runs under `spark-submit jobs/<name>.py` and as
`replenish <name>`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from replenish import config
from replenish.errors import ReplenishError
from replenish.tracking import track_job

log = logging.getLogger("replenish")

AddArguments = Callable[[argparse.ArgumentParser], None]
RunJob = Callable[["JobContext", argparse.Namespace], dict[str, Any]]


class JobMain(Protocol):
    """`main(argv=None, *, spark=None) -> exit code` of a job module."""

    def __call__(self, argv: Sequence[str] | None = None, *, spark: Any = None) -> int: ...


@dataclass
class JobContext:
    """The resolved environment of one job run."""

    settings: dict[str, Any]
    spark: Any  # pyspark.sql.SparkSession; Any keeps this module importable without a JVM
    lake: Any  # replenish.io.lake.Lake
    run_id: str
    run_date: dt.date
    config_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every job takes: where the lake is, which profile, and overrides."""
    group = parser.add_argument_group("common options")
    group.add_argument("--lake", help="lake root folder or URI (default: `lake` of the profile, ./lakehouse)")
    group.add_argument(
        "--profile",
        default="local",
        choices=config.PROFILES,
        help="settings profile from conf/: local (local[*] Spark), cluster (spark-submit decides), "
        "databricks (reuse the active session); default: local",
    )
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set forecast.horizon=14 or --set spark.conf.spark.driver.memory=8g; "
        "repeatable",
    )
    group.add_argument("--conf-dir", help="folder with base.yaml and <profile>.yaml (default: the packaged conf/)")
    group.add_argument("--run-id", help="identifier stamped on output rows (default: a new one per run)")
    group.add_argument(
        "--run-date", type=dt.date.fromisoformat, help="the run's business date, YYYY-MM-DD (default: today, UTC)"
    )
    group.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def open_context(args: argparse.Namespace, *, spark: Any = None) -> JobContext:
    """Resolve settings, start (or reuse) Spark and open the lake for a job run."""
    from replenish.io.lake import Lake
    from replenish.session import build_spark

    settings = config.load(args.profile, args.overrides, conf_dir=args.conf_dir)
    if args.lake:
        settings.setdefault("lake", {})["root"] = args.lake
    engine = config.lake_engine(settings)
    if spark is None:
        spark = build_spark(settings.get("spark", {}), profile=args.profile, lake_engine=engine)
    run_date = args.run_date or dt.datetime.now(dt.UTC).date()
    run_id = args.run_id or new_run_id()
    register = bool(settings.get("lake", {}).get("register_catalog", True))
    lake = Lake(
        spark,
        config.lake_root(settings),
        engine=engine,  # type: ignore[arg-type]
        commit_info={"run_id": run_id},
        register_catalog=register,
    )
    if register:
        lake.register_in_catalog()
    log.info("lake %s: engine %s", lake.root, lake.engine_name)
    return JobContext(
        settings=settings,
        spark=spark,
        lake=lake,
        run_id=run_id,
        run_date=run_date,
        config_hash=config.config_hash(settings),
    )


def build_parser(name: str, description: str | None, add_arguments: AddArguments) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"replenish {name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    add_common_arguments(parser)
    return parser


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def job_main(name: str, description: str | None, add_arguments: AddArguments, run: RunJob) -> JobMain:
    """Build the `main(argv)` of a job module: parse, open the context, run, print a summary."""

    def main(argv: Sequence[str] | None = None, *, spark: Any = None) -> int:
        parser = build_parser(name, description, add_arguments)
        args = parser.parse_args(argv)
        configure_logging(args.verbose)
        started = time.monotonic()
        try:
            ctx = open_context(args, spark=spark)
            log.info("%s run_id %s (re-submit with --run-id %s to resume it)", name, ctx.run_id, ctx.run_id)
            summary = track_job(name, ctx, args, run)  # run(ctx, args) inside an MLflow run
        except ReplenishError as exc:
            print(f"replenish {name}: error: {exc}", file=sys.stderr)
            return 2
        summary = {"job": name, "run_id": ctx.run_id, "seconds": round(time.monotonic() - started, 1), **summary}
        summary.setdefault("lake_engine", ctx.lake.engine_name)
        print(json.dumps(summary, default=str))
        return 0

    return main
