"""Start and stop a Spark standalone cluster on 127.0.0.1: one `Master` and N `Worker`s of pip pyspark.

The test fixture (`conftest.standalone_cluster`) and the LSTM training benchmark share it. Each worker
has one core and advertises one fake GPU with its own address (`fake_gpu_discovery.sh`), so the GPU
scheduling path runs without a GPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FAKE_GPU_DISCOVERY = Path(__file__).with_name("fake_gpu_discovery.sh")


class ClusterStartError(RuntimeError):
    """A daemon exited early or the workers did not register in time; the message holds the logs."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


@dataclass(frozen=True)
class Daemons:
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


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


@contextlib.contextmanager
def standalone_daemons(base: Path, *, workers: int = 2, timeout: float = 180) -> Iterator[Daemons]:
    """Run the master and `workers` one-core workers (logs under `base`) until the block exits."""
    home = spark_home()
    port, web_port = free_port(), free_port()
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
    master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
    processes = [_start([spark_class, *master, "--webui-port", str(web_port)], base / "master.log", env)]
    daemons = Daemons(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", home, base)
    try:
        for index in range(workers):
            worker = ["org.apache.spark.deploy.worker.Worker", daemons.master_url, "--host", "127.0.0.1"]
            worker += ["--cores", "1", "--memory", "1536m", "--webui-port", str(free_port())]
            worker += ["--work-dir", str(base / f"work-{index}")]
            gpu = {
                # each worker advertises one fake GPU with its own address (docs/lstm.md)
                "REPLENISH_FAKE_GPU": str(index),
                "SPARK_WORKER_OPTS": f"-Dspark.worker.resource.gpu.amount=1 "
                f"-Dspark.worker.resource.gpu.discoveryScript={FAKE_GPU_DISCOVERY}",
            }
            processes.append(_start([spark_class, *worker], base / f"worker-{index}.log", {**env, **gpu}))
        deadline = time.monotonic() + timeout
        while daemons.alive_workers() < workers:
            for process in processes:
                if process.poll() is not None:
                    logs = "\n".join(p.read_text()[-2000:] for p in base.glob("*.log"))
                    raise ClusterStartError(f"a cluster daemon exited early:\n{logs}")
            if time.monotonic() > deadline:
                raise ClusterStartError(f"{workers} workers did not register with {daemons.master_url} in {timeout} s")
            time.sleep(1)
        yield daemons
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
