"""Shared fixtures: one local Spark session for the whole run, and a fresh lake per test."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # One session runs the whole suite: with 2g its old generation filled up and the JVM spent minutes in
    # full GCs. Keep the status store small too (it retains every job, stage, task and SQL execution).
    "spark.driver.memory": "4g",
    "spark.ui.retainedJobs": "50",
    "spark.ui.retainedStages": "50",
    "spark.ui.retainedTasks": "2000",
    "spark.sql.ui.retainedExecutions": "20",
    "spark.ui.retainedDeadExecutors": "10",
    "spark.sql.adaptive.enabled": "true",
    # delta-spark: a tiny table's snapshot in 2 tasks, not the default 50 (docs/lake.md, test timings)
    "spark.databricks.delta.snapshotPartitions": "2",
}


# --- `make test`'s two pytest-xdist workers ---------------------------------------------------------
# A group of tests runs on one worker, so what its tests share is built once: the nightly run-all of
# the files that read it, the standalone cluster (and its built wheel) of the cluster tests, and each
# other file's module fixtures. xdist's own `--dist loadgroup` does not group under pytest 9 (it
# renames `item._nodeid`, which pytest 9 no longer reads), hence a scheduler of our own.
NIGHTLY_FILES = ("tests/notebooks/test_notebooks.py", "tests/spark/test_pipeline.py", "tests/spark/test_tracking.py")


def test_group(nodeid: str) -> str:
    """The worker group of a test: `cluster`, `nightly`, or its file."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/cluster/"):
        return "cluster"
    return "nightly" if path in NIGHTLY_FILES else path


test_group.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send each group whole to one worker (xdist's load-by-scope, scoped by `test_group`)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reads the nightly run from a file outside NIGHTLY_FILES would build it again."""
    strays = sorted({item.nodeid.split("::", 1)[0] for item in items if "nightly" in getattr(item, "fixturenames", ())})
    strays = [path for path in strays if path not in NIGHTLY_FILES]
    if strays:
        raise pytest.UsageError(f"{strays} read the `nightly` fixture: add them to NIGHTLY_FILES in tests/conftest.py")


@pytest.fixture(scope="session")
def spark() -> Iterator:
    """A `local[2]` session shared by every Spark test (starting one costs seconds)."""
    from replenish_jobs.harness import build_spark

    session = build_spark(
        {"app_name": "replenish-tests", "master": "local[2]", "conf": SPARK_TEST_CONF, "log_level": "ERROR"},
        profile="local",
    )
    yield session
    session.stop()


# The engine of the `lake` fixture and of jobs the tests run in-process when their settings say `auto`.
# delta-spark is tested where it is the subject: tests/spark/test_lake.py, test_catalog.py,
# test_concurrency.py and test_incremental.py run on both engines, test_stream.py's processes and the
# cluster tests (every job through spark-submit) on delta-spark. The pipeline-level tests run on the
# embedded engine, which writes the same Delta log in a fraction of the time on 2 cores (docs/lake.md,
# "Tests"); REPLENISH_TEST_LAKE_ENGINE=delta-spark runs them on delta-spark instead.
TEST_LAKE_ENGINE = os.environ.get("REPLENISH_TEST_LAKE_ENGINE", "embedded")


@pytest.fixture(scope="session", autouse=True)
def lake_engine_of_jobs() -> Iterator[str]:
    """Jobs run in-process whose settings say `lake.engine: auto` get TEST_LAKE_ENGINE."""
    from replenish import config

    resolve = config.lake_engine

    def lake_engine(settings):  # type: ignore[no-untyped-def]
        engine = resolve(settings)
        return TEST_LAKE_ENGINE if engine == "auto" else engine

    config.lake_engine = lake_engine
    yield TEST_LAKE_ENGINE
    config.lake_engine = resolve


@pytest.fixture()
def lake(spark, tmp_path: Path):
    """An empty lake under the test's temporary folder."""
    from replenish.io.lake import Lake

    return Lake(spark, str(tmp_path / "lakehouse"), engine=TEST_LAKE_ENGINE)


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MLflow store of every job the tests run: a throwaway SQLite file, never ./mlruns."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


# --- one nightly run-all, shared by the tests that read what it leaves --------------------------------

NIGHTLY_EXPERIMENT = "nightly-test"
NIGHTLY_SETTINGS = [
    "generate.skus=12",
    "generate.locations=2",
    "generate.days=400",
    "generate.users=40",
    "generate.start=2024-01-01",
    "forecast.horizon=14",
    "forecast.backtest.folds=3",  # the default 6 doubles the forecast's time; 3 test the same paths
    "recommend.ranks=[4]",  # one ALS setting: the search's paths are tested in tests/spark/test_recommend.py
    "recommend.reg_params=[0.1]",
    "recommend.alphas=[10.0]",
    "recommend.max_iter=5",
    f"tracking.experiment={NIGHTLY_EXPERIMENT}",
]


@dataclass(frozen=True)
class Nightly:
    """The lake, raw files and MLflow experiment of one nightly run, and the notebook run that made it."""

    root: Path
    raw: Path
    lake: Any  # replenish.io.lake.Lake
    run_id: str
    experiment: str
    notebook: Any  # tests/notebooks/runner.py NotebookRun


@pytest.fixture(scope="session")
def nightly(spark, tmp_path_factory: pytest.TempPathFactory) -> Nightly:
    """Generated raw files, then notebooks/01_nightly_pipeline.py: one tracked `run-all` of every stage.

    The pipeline, tracking and notebook tests read its tables and runs instead of each running its own
    (a run-all is minutes on 2 cores). Tests that change what they read make their own lake.
    """
    from notebooks.runner import run_notebook  # tests/notebooks, the package test_notebooks.py imports from

    from replenish.io.lake import Lake
    from replenish_jobs import generate

    root = tmp_path_factory.mktemp("nightly")
    lake, raw = root / "lakehouse", root / "raw"
    argv = ["--out", str(raw), "--lake", str(lake), "--set", "tracking.enabled=false"]
    for setting in NIGHTLY_SETTINGS:
        argv += ["--set", setting]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert generate.main(argv, spark=spark) == 0, out.getvalue()[-4000:]
    parameters = {
        "lake": lake,
        "raw": raw,
        "freq": "D",
        "horizon": 14,
        "run_date": "2025-03-01",
        "settings": " ".join(NIGHTLY_SETTINGS),
    }
    notebook = Path(__file__).parents[1] / "notebooks" / "01_nightly_pipeline.py"
    run = run_notebook(notebook, spark=spark, parameters=parameters)
    return Nightly(root, raw, Lake(spark, str(lake)), str(run["run_id"]), NIGHTLY_EXPERIMENT, run)
