"""A real Spark standalone cluster on 127.0.0.1: one master and two workers, each executor its own JVM.

Jobs are sent to it with `spark-submit`, exactly as users run them, so nothing may depend on state that
lives only in the driver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from replenish.io.engines import delta_package

from .standalone import ClusterStartError, Daemons, standalone_daemons

WORKERS = 2


@dataclass
class StandaloneCluster:
    master_url: str
    web_url: str
    home: Path
    log_dir: Path

    def alive_workers(self) -> int:
        return Daemons(self.master_url, self.web_url, self.home, self.log_dir).alive_workers()

    def submit(
        self,
        script: Path,
        args: Sequence[str],
        *,
        timeout: float = 600,
        shipped: Shipped | None = None,
        conf: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """`spark-submit` a job to the cluster; raises with the job's output when it fails."""
        command, env = self.submit_command(script, args, shipped=shipped, conf=conf)
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if result.returncode != 0:
            raise AssertionError(
                f"spark-submit {script.name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def submit_command(
        self,
        script: Path,
        args: Sequence[str],
        *,
        shipped: Shipped | None = None,
        conf: Mapping[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """The `spark-submit` command line and environment of a job.

        With `shipped`, driver and executors run an interpreter without replenish and import it only
        from the wheel sent with `--py-files`, as the README's "Running on a cluster" tells users.
        """
        python = str(shipped.python) if shipped is not None else sys.executable
        extra: list[str] = []
        for key, value in (conf or {}).items():
            extra += ["--conf", f"{key}={value}"]
        if shipped is not None:
            extra += ["--py-files", str(shipped.wheel)]
        command = [
            str(self.home / "bin" / "spark-submit"),
            "--master",
            self.master_url,
            "--packages",  # delta-spark's JARs for the driver and, through it, the executors
            delta_package(),
            "--conf",
            "spark.executor.cores=1",
            "--conf",
            "spark.executor.memory=1g",
            "--conf",
            f"spark.cores.max={WORKERS}",
            "--conf",
            "spark.driver.memory=1g",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",  # a test table's snapshot in 2 tasks, not delta-spark's default 50 (docs/lake.md, "Tests")
            "spark.databricks.delta.snapshotPartitions=2",
            "--conf",
            f"spark.pyspark.python={python}",
            "--conf",
            f"spark.pyspark.driver.python={python}",
            "--conf",
            "spark.ui.enabled=false",
            *extra,
            str(script),
            *args,
        ]
        env = {**os.environ, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}
        return command, env


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """Start `Master` and two `Worker`s with pip pyspark's `spark-class`; stop them after the session."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("the standalone cluster needs Java 17")
    base = tmp_path_factory.mktemp("standalone")
    with contextlib.ExitStack() as stack:
        try:
            daemons = stack.enter_context(standalone_daemons(base, workers=WORKERS))
        except ClusterStartError as exc:
            pytest.fail(str(exc))
        yield StandaloneCluster(daemons.master_url, daemons.web_url, daemons.home, daemons.log_dir)


# --- replenish shipped the way the README tells users: the wheel of `make dist` on `--py-files` ---

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Shipped:
    """What a job run on the cluster gets: the built wheel, and an interpreter that lacks replenish.

    Attributes:
        wheel: the wheel `make dist` builds, as `dist/replenish-<version>.zip` (PySpark puts a
            `.whl` of `--py-files` on the driver's path but not on the executors').
        python: a virtual environment whose site-packages reach the dependencies (pyspark, pandas,
            statsforecast, ...) of the test interpreter but not its editable install of replenish, like
            cluster nodes with the dependencies installed and replenish shipped per job.
    """

    wheel: Path
    python: Path


def dependency_paths() -> list[str]:
    """The site-packages folders of this interpreter, in `sys.path` order."""
    return [entry for entry in sys.path if entry.endswith("site-packages") and Path(entry).is_dir()]


@pytest.fixture(scope="session")
def shipped_package(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    """Build the wheel once per session with `make dist`, and an interpreter that imports replenish only from it.

    The folders are listed in a `.pth` file as plain paths: Python adds them to `sys.path` without
    running the `.pth` files inside them, so the editable install's import hook never loads.
    """
    base = tmp_path_factory.mktemp("shipped")
    dist = base / "dist"
    built = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "dist", f"DIST={dist}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # the wheel as `.zip`: PySpark adds only .zip, .egg and .jar files of --py-files to executors' path
    wheels = sorted(dist.glob("replenish-*.zip"))
    if built.returncode != 0 or len(wheels) != 1:
        pytest.fail(f"make dist failed ({built.returncode}):\n{built.stdout[-2000:]}\n{built.stderr[-3000:]}")
    venv = base / "node-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text("\n".join(dependency_paths()) + "\n")
    probe = "import importlib.util as u, pyspark, pandas, statsforecast; print(u.find_spec('replenish') is None)"
    bare = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, env=_without_pythonpath(), check=False
    )
    assert bare.stdout.strip() == "True", f"the node interpreter must lack replenish: {bare.stdout} {bare.stderr}"
    with_wheel = subprocess.run(
        [str(python), "-c", "import replenish.conf, replenish_jobs.forecast, sys; print(replenish.conf.__file__)"],
        capture_output=True,
        text=True,
        env={**_without_pythonpath(), "PYTHONPATH": str(wheels[0])},
        check=False,
    )
    assert str(wheels[0]) in with_wheel.stdout, f"the wheel does not import: {with_wheel.stderr[-2000:]}"
    return Shipped(wheel=wheels[0], python=python)


def _without_pythonpath() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
