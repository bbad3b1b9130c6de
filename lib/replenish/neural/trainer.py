"""`BarrierTrainer`: run a plain training function on N Spark tasks gang-scheduled in a barrier stage.

Shaped like `pyspark.ml.torch.distributor.TorchDistributor`: the constructor validates resources,
`run(train_fn, *args)` returns rank 0's result, and `train_fn` knows nothing about Spark. Each task

1. reads its peers from `BarrierTaskContext` (`allGather` of host:port, one free port per task),
2. sets `CUDA_VISIBLE_DEVICES` from `TaskContext.resources()["gpu"].addresses` (empty: CPU),
3. writes `TF_CONFIG` naming every worker and its own index,
4. runs `train_fn(worker, *args)` in a fresh Python process (`python -m replenish.neural.launch`), so
   those variables are set before TensorFlow is imported and TensorFlow's collective context, which
   can be configured once per process, never leaks between runs of a reused Python worker.

A failed task fails the stage (Spark retries a barrier stage as a whole); training resumes from the
`BackupAndRestore` checkpoint of the run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from replenish.errors import ConfigError, ReplenishError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class TrainingError(ReplenishError):
    """A training task failed; the message holds the end of its output."""


@dataclass(frozen=True)
class WorkerInfo:
    """What a training function learns about its place in the gang.

    Attributes:
        rank: this worker's index (0 is the chief, which saves the model).
        num_workers: the gang's size.
        peers: host:port of every worker, by rank (TF_CONFIG's `cluster.worker`).
        gpus: the GPU addresses Spark assigned to this task (empty on CPU).
    """

    rank: int
    num_workers: int
    peers: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def tf_config(peers: list[str] | tuple[str, ...], rank: int) -> dict[str, Any]:
    """The TF_CONFIG of worker `rank` among `peers` (MultiWorkerMirroredStrategy's cluster spec)."""
    return {"cluster": {"worker": list(peers)}, "task": {"type": "worker", "index": rank}}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_environment(peers: list[str], rank: int, gpus: list[str]) -> dict[str, str]:
    """The variables a training process needs: CUDA_VISIBLE_DEVICES always (empty: CPU), TF_CONFIG with peers."""
    env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "TF_USE_LEGACY_KERAS": "1"}
    if len(peers) > 1:
        env["TF_CONFIG"] = json.dumps(tf_config(peers, rank))
    return env


def run_in_subprocess(train_fn: Callable[..., Any], worker: WorkerInfo, args: tuple[Any, ...]) -> Any:
    """Run `train_fn(worker, *args)` in `python -m replenish.neural.launch` with `worker.env` set."""
    from pyspark import cloudpickle

    with tempfile.TemporaryDirectory(prefix="replenish-train-") as folder:
        request, response = os.path.join(folder, "in.pkl"), os.path.join(folder, "out.pkl")
        with open(request, "wb") as handle:
            cloudpickle.dump((train_fn, worker, args), handle)
        # The task's own import path reaches what spark-submit shipped (--py-files, the job's archive),
        # which the environment alone does not: the launcher must import replenish from the same place.
        path = os.pathsep.join(p for p in sys.path if p)
        env = {**os.environ, **worker.env, "PYTHONPATH": path}
        process = subprocess.run(
            [sys.executable, "-m", "replenish.neural.launch", request, response],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stderr.write(process.stdout[-20000:])
        sys.stderr.write(process.stderr[-20000:])
        if process.returncode != 0 or not os.path.exists(response):
            raise TrainingError(
                f"training worker {worker.rank} exited with {process.returncode}:\n{process.stderr[-4000:]}"
            )
        with open(response, "rb") as handle:
            return cloudpickle.load(handle)


def _barrier_task(
    _: Iterator[Any], *, train_fn: Callable[..., Any], args: tuple[Any, ...], use_gpu: bool
) -> Iterator[Any]:
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    rank = context.partitionId()
    host = context.getTaskInfos()[rank].address.rsplit(":", 1)[0]
    peers = context.allGather(f"{host}:{_free_port(host)}")
    resources = context.resources()
    gpus = list(resources["gpu"].addresses) if use_gpu and "gpu" in resources else []
    worker = WorkerInfo(
        rank=rank,
        num_workers=len(peers),
        peers=tuple(peers),
        gpus=tuple(gpus),
        env=worker_environment(peers, rank, gpus),
    )
    result = run_in_subprocess(train_fn, worker, args)
    context.barrier()
    yield result


class BarrierTrainer:
    """Launch a TensorFlow training function on `num_workers` Spark tasks (MultiWorkerMirroredStrategy).

    Args:
        spark: the session whose cluster runs the tasks.
        num_workers: barrier tasks; the cluster must be able to run them all at once.
        use_gpu: give each task the GPU Spark assigns it; needs `spark.task.resource.gpu.amount`.

    Example:
        ```python
        result = BarrierTrainer(spark, num_workers=2).run(train_windows, job)
        ```
    """

    def __init__(self, spark: SparkSession, *, num_workers: int = 1, use_gpu: bool = False) -> None:
        if num_workers < 1:
            raise ConfigError(f"num_workers must be >= 1, got {num_workers}")
        self.spark = spark
        self.num_workers = num_workers
        self.use_gpu = use_gpu
        if use_gpu and not spark.sparkContext.getConf().get("spark.task.resource.gpu.amount"):
            raise ConfigError(
                "use_gpu needs spark.task.resource.gpu.amount (and spark.executor.resource.gpu.amount with a "
                "discovery script, conf/gpu_discovery.sh); see docs/lstm.md"
            )

    def run(self, train_fn: Callable[..., Any], *args: Any) -> Any:
        """Run `train_fn(worker: WorkerInfo, *args)` on every task; return rank 0's result."""
        import functools

        task = functools.partial(_barrier_task, train_fn=train_fn, args=args, use_gpu=self.use_gpu)
        rdd = self.spark.sparkContext.parallelize(range(self.num_workers), self.num_workers)
        results = rdd.barrier().mapPartitions(task).collect()
        by_rank = {result["rank"]: result for result in results}
        return by_rank[0]
