"""The LSTM's barrier training on the standalone cluster: 2 workers, each on its own (fake) GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = Path(__file__).with_name("lstm_barrier_app.py")


def test_two_worker_barrier_training_on_fake_gpus(standalone_cluster, shipped_package, tmp_path: Path) -> None:
    gpu = {
        "spark.executor.resource.gpu.amount": "1",
        "spark.task.resource.gpu.amount": "1",
        "spark.executor.resource.gpu.discoveryScript": str(Path(__file__).with_name("fake_gpu_discovery.sh")),
    }
    # replenish only from the wheel on --py-files, as users ship it: the barrier workers' training
    # processes must import it from there too
    completed = standalone_cluster.submit(APP, [str(tmp_path)], conf=gpu, timeout=900, shipped=shipped_package)
    summary = json.loads([line for line in completed.stdout.splitlines() if line.startswith("{")][-1])
    result = summary["result"]

    workers = [json.loads((tmp_path / "work" / f"worker-{rank}.json").read_text()) for rank in (0, 1)]
    # each task got a distinct GPU address and exported exactly it before TensorFlow started
    assert [len(w["gpus"]) for w in workers] == [1, 1]
    assert workers[0]["gpus"] != workers[1]["gpus"]
    assert [w["cuda_visible_devices"] for w in workers] == [w["gpus"][0] for w in workers]
    # TF_CONFIG names both workers, each its own index
    peers = workers[0]["tf_config"]["cluster"]["worker"]
    assert len(peers) == 2 and len(set(peers)) == 2
    assert [w["tf_config"]["cluster"]["worker"] for w in workers] == [peers, peers]
    assert [w["tf_config"]["task"]["index"] for w in workers] == [0, 1]
    # both took part in every synchronous step
    steps = [
        [(r["epoch"], r["step"]) for r in map(json.loads, (tmp_path / "work" / f"steps-{rank}.jsonl").open())]
        for rank in (0, 1)
    ]
    assert steps[0] == steps[1] and len(steps[0]) == result["epochs"] * result["steps_per_epoch"]
    assert result["workers"] == 2 and result["loss"][-1] < result["loss"][0]
    # the chief's model forecasts every series
    assert summary["forecast"] == {"rows": 8 * 7, "series": 8, "bad": 0}
    assert (tmp_path / "model" / "spec.json").exists()
