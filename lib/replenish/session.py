"""The Spark session factory, driven by a profile's `spark` section.

local: a `local[*]` session sized for the machine; cluster: spark-submit decides the master and
resources; databricks: the active session is reused as is.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession

from replenish.errors import ConfigError

log = logging.getLogger(__name__)


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


# Runtime settings of the inventory plan (`replenish.inventory.policy`):
# * each input is shuffled once (`selection.partition_by_sku`): a join on (sku, location) may reuse the
#   inputs' partitioning by sku alone;
# * its aggregations are per series, and a task holds hundreds of thousands of them: the first level
#   of Spark's two-level hash map (2^16 slots) is soon full and then only adds a lookup to every row
#   (measured in docs/benchmarks.md).
PLANNING_CONF: dict[str, str] = {
    "spark.sql.requireAllClusterKeysForCoPartition": "false",
    "spark.sql.codegen.aggregate.map.twolevel.enabled": "false",
}


@contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set runtime SQL settings for the duration of a block, then restore what was there before."""
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
