"""Which Delta engine a Spark session gets, and how delta-spark's JARs reach it.

delta-spark is the default: a session built by `replenish_jobs.harness.build_spark` asks Spark to resolve
`io.delta:delta-spark_2.12:<the pip package's version>` through `spark.jars.packages` (Maven Central the
first time, `~/.ivy2` after) and turns on Delta's SQL extension and catalog. Where the JARs cannot be
had (an air-gapped machine with an empty Ivy cache), `lake.engine: auto` falls back to the embedded
delta-rs engine with one warning; `lake.engine: delta-spark` fails instead, and `embedded` never tries.

Under spark-submit the JVM is already running when Python starts: the JARs must come with
`--packages io.delta:delta-spark_2.12:3.2.1` (or `spark.jars.packages` in spark-defaults.conf); the
session only turns the extension on when the classes are there. On Databricks Delta is built in and the
active session is reused as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar

from replenish.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

EngineName = Literal["auto", "delta-spark", "embedded"]
ENGINES: tuple[str, ...] = ("auto", "delta-spark", "embedded")
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DELTA_TABLE_CLASS = "io.delta.tables.DeltaTable"
SCALA_BINARY_VERSION = "2.12"  # pyspark 3.5's wheel is built for Scala 2.12
FALLBACK_DELTA_VERSION = "3.2.1"

T = TypeVar("T")


def delta_package() -> str:
    """The Maven coordinate of the delta-spark JAR matching the installed Python package."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        delta_version = version("delta-spark")
    except PackageNotFoundError:
        delta_version = FALLBACK_DELTA_VERSION
    return f"io.delta:delta-spark_{SCALA_BINARY_VERSION}:{delta_version}"


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def delta_sql_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """`conf` with Delta's session extension and catalog added (other extensions are kept)."""
    out = dict(conf)
    extensions = _split(out.get("spark.sql.extensions"))
    if DELTA_EXTENSION not in extensions:
        extensions.append(DELTA_EXTENSION)
    out["spark.sql.extensions"] = ",".join(extensions)
    out.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    return out


def delta_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """`conf` with delta-spark's package added to `spark.jars.packages` and its SQL settings.

    A package or JAR of delta-spark the caller already named (`spark.jars.packages`, `spark.jars`) is kept
    as the one to use.
    """
    out = delta_sql_conf(conf)
    packages = _split(out.get("spark.jars.packages"))
    jars = _split(out.get("spark.jars"))
    named = any(p.startswith("io.delta:delta-spark") for p in packages) or any("delta-spark" in j for j in jars)
    if not named:
        packages.insert(0, delta_package())
    if packages:
        out["spark.jars.packages"] = ",".join(packages)
    return out


def jvm_running() -> bool:
    """True when this process already talks to a JVM: spark-submit started us, or a session ran before."""
    from pyspark import SparkContext

    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def jvm_has_delta() -> bool:
    """True when the running JVM can load delta-spark's classes (its context class loader included)."""
    from pyspark import SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's gateway; starts none of its own here
    jvm = SparkContext._jvm
    assert jvm is not None
    return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(DELTA_TABLE_CLASS))


def session_has_delta(spark: SparkSession) -> bool:
    """True when `spark` can run Delta operations: the classes load and the SQL extension is on.

    Databricks runtimes have Delta built in without listing the extension.
    """
    try:
        loadable = bool(spark._jvm.org.apache.spark.util.Utils.classIsLoadable(DELTA_TABLE_CLASS))  # type: ignore[union-attr]
    except Exception:
        return False
    if not loadable:
        return False
    try:
        import delta.tables  # noqa: F401
    except ImportError:
        log.warning("io.delta classes are on the classpath but the Python package delta-spark is missing")
        return False
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        return True
    return DELTA_EXTENSION in _split(spark.conf.get("spark.sql.extensions", ""))


def create_with_delta(create: Callable[[dict[str, str]], T], conf: Mapping[str, str], *, engine: str) -> T:
    """Create a session with `create(conf)`, with delta-spark unless `engine` is `embedded`.

    Args:
        create: builds the session from a complete Spark conf.
        conf: the profile's Spark settings.
        engine: `auto` (delta-spark when its JARs can be had, else the embedded engine, logged),
            `delta-spark` (fail when they cannot) or `embedded` (do not try).

    Raises:
        ConfigError: `engine` is `delta-spark` and its JARs are not available.
    """
    if engine not in ENGINES:
        raise ConfigError(f"lake.engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "embedded":
        return create(dict(conf))
    if jvm_running():
        if jvm_has_delta():
            return create(delta_sql_conf(conf))
        hint = f"pass `--packages {delta_package()}` to spark-submit (or set spark.jars.packages in spark-defaults)"
        if engine == "delta-spark":
            raise ConfigError(f"lake.engine is delta-spark but the running JVM has no Delta classes: {hint}")
        log.warning("delta-spark classes are not on this JVM's classpath; the lake uses the embedded engine (%s)", hint)
        return create(dict(conf))
    try:
        return create(delta_conf(conf))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if engine == "delta-spark":
            raise ConfigError(
                f"lake.engine is delta-spark but Spark did not start with {delta_package()} ({reason}); "
                "check access to Maven Central or the ~/.ivy2 cache, or use --set lake.engine=embedded"
            ) from exc
        log.warning(
            "delta-spark JARs %s could not be resolved (%s): the lake uses the embedded delta-rs engine; "
            "--set lake.engine=embedded skips this attempt",
            delta_package(),
            reason,
        )
        return create(dict(conf))
