"""A real Spark standalone cluster on 127.0.0.1: one master and two workers, each executor its own JVM.

Jobs are sent to it with `spark-submit`, exactly as users run them, so nothing may depend on state that
lives only in the driver.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

WORKERS = 2
FAKE_GPU_DISCOVERY = Path(__file__).with_name("fake_gpu_discovery.sh")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


@dataclass
class StandaloneCluster:
    master_url: str
    web_url: str
    home: Path
    log_dir: Path

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as response:
                return int(json.load(response).get("aliveworkers", 0))
        except OSError:
            return 0

    def submit(
        self, script: Path, args: Sequence[str], *, timeout: float = 600, conf: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """`spark-submit` a job to the cluster (extra `conf` pairs too); raises with its output when it fails."""
        command = [
            str(self.home / "bin" / "spark-submit"),
            "--master",
            self.master_url,
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
            "--conf",
            f"spark.pyspark.python={sys.executable}",
            "--conf",
            f"spark.pyspark.driver.python={sys.executable}",
            "--conf",
            "spark.ui.enabled=false",
            *[part for key, value in (conf or {}).items() for part in ("--conf", f"{key}={value}")],
            str(script),
            *args,
        ]
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if result.returncode != 0:
            raise AssertionError(
                f"spark-submit {script.name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
            )
        return result


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """Start `Master` and two `Worker`s with pip pyspark's `spark-class`; stop them after the session."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("the standalone cluster needs Java 17")
    home = spark_home()
    base = tmp_path_factory.mktemp("standalone")
    port, web_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(base),
        "SPARK_WORKER_DIR": str(base / "work"),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_DAEMON_MEMORY": "512m",
    }
    spark_class = str(home / "bin" / "spark-class")
    processes = [
        _start(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(web_port),
            ],
            base / "master.log",
            env,
        )
    ]
    cluster = StandaloneCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", home, base)
    try:
        for index in range(WORKERS):
            processes.append(
                _start(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        cluster.master_url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        "1",
                        "--memory",
                        "1536m",
                        "--webui-port",
                        str(_free_port()),
                        "--work-dir",
                        str(base / f"work-{index}"),
                    ],
                    base / f"worker-{index}.log",
                    {
                        **env,
                        # each worker advertises one fake GPU with its own address (docs/lstm.md)
                        "REPLENISH_FAKE_GPU": str(index),
                        "SPARK_WORKER_OPTS": f"-Dspark.worker.resource.gpu.amount=1 "
                        f"-Dspark.worker.resource.gpu.discoveryScript={FAKE_GPU_DISCOVERY}",
                    },
                )
            )
        deadline = time.monotonic() + 180
        while cluster.alive_workers() < WORKERS:
            for process in processes:
                if process.poll() is not None:
                    logs = "\n".join(p.read_text()[-2000:] for p in base.glob("*.log"))
                    pytest.fail(f"a cluster daemon exited early:\n{logs}")
            if time.monotonic() > deadline:
                pytest.fail(f"{WORKERS} workers did not register with {cluster.master_url} in 180 s")
            time.sleep(1)
        yield cluster
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
