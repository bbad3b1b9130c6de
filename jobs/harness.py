"""The job harness: common options, settings, the Spark session, the lake and run metadata.

Only the entry points use it (the jobs beside it, benchmarks, tests): the library under lib/ never
imports it. A job module (`jobs/<name>.py`) defines `add_arguments(parser)` and
`run(ctx, args) -> dict` and ends with `main = job_main(...)`; the same module runs under
`spark-submit jobs/<name>.py` and as `replenish <name>`.

The session: local builds a `local[*]` session sized for the machine; cluster leaves the master and
resources to spark-submit; databricks reuses the active session as is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from replenish import config
from replenish.errors import ConfigError, ReplenishError
from replenish.shared import new_run_id
from replenish.tracking import track_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


def open_context(args: argparse.Namespace, *, spark: Any = None) -> JobContext:
    """Resolve settings, start (or reuse) Spark and open the lake for a job run."""
    from replenish.io.lake import Lake

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


def java_major_version() -> int | None:
    """The major version of the `java` Spark would start, or None when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    for token in out.split():
        token = token.strip('"')
        if token[:1].isdigit():
            head = token.split(".")[0]
            return int(head) if head != "1" else int(token.split(".")[1])
    return None


def check_java() -> None:
    """Fail early, with instructions, when Java 17 (what Spark 3.5 is run on here) is missing."""
    version = java_major_version()
    if version is None:
        raise ConfigError(
            "Java was not found: Spark needs a JDK. Install Java 17 "
            "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    if version not in (11, 17):
        raise ConfigError(f"Spark 3.5 runs on Java 11 or 17; found Java {version}. Set JAVA_HOME to a JDK 17.")


def build_spark(
    spark_settings: Mapping[str, Any], *, profile: str = "local", lake_engine: str = "auto"
) -> SparkSession:
    """Return a SparkSession configured by a profile's `spark` section.

    Args:
        spark_settings: `app_name`, `master` (None: leave it to spark-submit), `conf` (a mapping
            of Spark settings) and `reuse_active` (Databricks: use the session already running).
        profile: the profile name, for logging only.
        lake_engine: `auto` or `delta-spark` give the session delta-spark's JARs, SQL extension and
            catalog (`replenish.io.engines`); `embedded` leaves them out.
    """
    from pyspark.sql import SparkSession

    if spark_settings.get("reuse_active"):
        active = SparkSession.getActiveSession()
        if active is None:
            raise ConfigError(f"profile {profile!r} reuses the active Spark session, but none is running")
        return active
    if profile == "local":
        check_java()
    master = spark_settings.get("master")
    conf = dict(spark_settings.get("conf") or {})
    # Executors must run the same interpreter that has replenish installed.
    conf.setdefault("spark.pyspark.python", os.environ.get("PYSPARK_PYTHON", sys.executable))
    conf.setdefault("spark.pyspark.driver.python", sys.executable)
    # Outside spark-submit, PySpark takes the worker interpreter from the environment, not the conf.
    os.environ.setdefault("PYSPARK_PYTHON", str(conf["spark.pyspark.python"]))
    from replenish.io.engines import create_with_delta

    def create(full_conf: Mapping[str, Any]) -> SparkSession:
        builder = SparkSession.builder.appName(str(spark_settings.get("app_name", "replenish")))
        if master:
            builder = builder.master(str(master))
        for key, value in full_conf.items():
            builder = builder.config(key, str(value))
        return builder.getOrCreate()

    spark = create_with_delta(create, {k: str(v) for k, v in conf.items()}, engine=lake_engine)
    spark.sparkContext.setLogLevel(str(spark_settings.get("log_level", "WARN")))
    log.info("spark session %s on %s (profile %s)", spark.version, spark.sparkContext.master, profile)
    return spark
