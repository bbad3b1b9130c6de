"""The training function each worker runs: knows TensorFlow and its loaders, nothing about Spark.

`train_windows(worker, job)` builds the model under `MultiWorkerMirroredStrategy` (or the default
strategy for one worker), reads its shard of the training windows and all validation windows,
trains with early stopping on the validation loss, backs up every epoch so a restarted run resumes,
and has the chief save the model. Every worker appends one JSON line per training step to its own
log (`steps-<rank>.jsonl`), so a run can show that all workers took part in every step.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from replenish.neural.loader import WindowLoader
from replenish.neural.trainer import WorkerInfo


@dataclass(frozen=True)
class TrainJob:
    """What one training run needs; picklable, sent to every worker.

    Attributes:
        spec: the network (`model.ModelSpec`).
        train, valid: loaders of the training and validation windows.
        model_dir: where the chief saves the model (weights and spec.json).
        work_dir: backups (`BackupAndRestore`) and per-worker step logs; reusing it resumes a run.
        epochs, steps_per_epoch, batch_size, learning_rate, patience, seed: see `LstmSettings`.
    """

    spec: Any
    train: WindowLoader
    valid: WindowLoader | None
    model_dir: str
    work_dir: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    learning_rate: float = 0.005
    patience: int = 2
    seed: int = 42
    validation_steps: int | None = None


def steps_for(rows: int, *, batch_size: int, workers: int, cap: int | None = None) -> int:
    """Batches per worker per epoch: one pass over the rows by all workers together (at least 1)."""
    steps = max(1, math.ceil(rows / (batch_size * workers)))
    return min(steps, cap) if cap else steps


def train_windows(worker: WorkerInfo, job: TrainJob) -> dict[str, Any]:
    """Train on this worker's shard; returns losses per epoch, steps, samples/s and the model path."""
    from replenish.neural.model import LstmForecaster, build_model, compile_model, set_seeds, to_model_inputs
    from replenish.neural.tf_runtime import keras, tf

    set_seeds(job.seed)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if worker.num_workers > 1 else tf.distribute.get_strategy()
    os.makedirs(job.work_dir, exist_ok=True)
    step_log = open(os.path.join(job.work_dir, f"steps-{worker.rank}.jsonl"), "a")  # noqa: SIM115
    progress = os.path.join(job.work_dir, "progress.jsonl")
    with open(os.path.join(job.work_dir, f"worker-{worker.rank}.json"), "w") as handle:
        json.dump(
            {
                "rank": worker.rank,
                "gpus": list(worker.gpus),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "tf_config": json.loads(os.environ.get("TF_CONFIG", "null")),
                "pid": os.getpid(),
            },
            handle,
        )

    class StepLog(keras.callbacks.Callback):
        """One line per step and worker; the chief also appends one line per epoch to progress.jsonl.

        It also times the training steps of every epoch after this process's first (which traces the
        graph), validation excluded: the steady rate a longer training runs at.
        """

        epochs_seen = 0
        steady_seconds = 0.0
        steady_epochs = 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.epoch_started = self.last_step = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.last_step = time.monotonic()
            record = {"rank": worker.rank, "epoch": self.epoch, "step": batch, "loss": float((logs or {})["loss"])}
            step_log.write(json.dumps(record) + "\n")
            step_log.flush()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs_seen += 1
            if self.epochs_seen > 1:
                self.steady_seconds += self.last_step - self.epoch_started
                self.steady_epochs += 1
            values = {key: round(float(value), 5) for key, value in (logs or {}).items()}
            line = json.dumps({"epoch": epoch + 1, "epochs": job.epochs, **values})
            print(f"[lstm worker {worker.rank}] epoch {epoch + 1}/{job.epochs} {values}", flush=True)
            if worker.is_chief:
                with open(progress, "a") as handle:
                    handle.write(line + "\n")

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    shard = {"cur_shard": worker.rank, "shard_count": worker.num_workers} if worker.num_workers > 1 else {}
    timing = StepLog()
    callbacks = [keras.callbacks.BackupAndRestore(os.path.join(job.work_dir, "backup")), timing]
    started = time.monotonic()
    with job.train.dataset(
        cur_shard=shard.get("cur_shard"),
        shard_count=shard.get("shard_count"),
        batch_size=job.batch_size * worker.num_workers,  # the global batch: each replica gets batch_size
        shuffle=True,
        seed=job.seed + worker.rank,
    ) as raw_train:
        train = raw_train.map(lambda b: to_model_inputs(b, job.spec)).with_options(options)
        validation = None
        valid_context = (
            job.valid.dataset(
                cur_shard=None,
                shard_count=None,
                batch_size=job.batch_size * worker.num_workers,
                shuffle=False,
                seed=job.seed,
            )
            if job.valid is not None
            else None
        )
        if valid_context is not None:
            raw_valid = valid_context.__enter__()
            validation = raw_valid.map(lambda b: to_model_inputs(b, job.spec)).with_options(options)
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=job.patience, restore_best_weights=True)
            )
        try:
            with strategy.scope():
                model = compile_model(build_model(job.spec, seed=job.seed), job.spec, learning_rate=job.learning_rate)
            history = model.fit(
                train,
                epochs=job.epochs,
                steps_per_epoch=job.steps_per_epoch,
                validation_data=validation,
                validation_steps=job.validation_steps if validation is not None else None,
                callbacks=callbacks,
                verbose=0,
            ).history
        finally:
            if valid_context is not None:
                valid_context.__exit__(None, None, None)
    seconds = time.monotonic() - started
    step_log.close()
    forecaster = LstmForecaster(job.spec, learning_rate=job.learning_rate, seed=job.seed)
    forecaster.model_ = model
    # every worker saves (the variables' collective reads need all of them); only the chief's copy is kept
    target = job.model_dir if worker.is_chief else os.path.join(job.work_dir, f"discard-{worker.rank}")
    forecaster.save(target)
    epochs_run = len(history.get("loss", []))
    return {
        "rank": worker.rank,
        "workers": worker.num_workers,
        "gpus": list(worker.gpus),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "tf_config": json.loads(os.environ["TF_CONFIG"]) if "TF_CONFIG" in os.environ else None,
        "loss": [round(float(v), 6) for v in history.get("loss", [])],
        "val_loss": [round(float(v), 6) for v in history.get("val_loss", [])],
        "epochs": epochs_run,
        "steps_per_epoch": job.steps_per_epoch,
        "seconds": round(seconds, 2),
        "samples_per_second": round(epochs_run * job.steps_per_epoch * job.batch_size * worker.num_workers / seconds, 1)
        if seconds > 0
        else None,
        "steady_samples_per_second": round(
            timing.steady_epochs * job.steps_per_epoch * job.batch_size * worker.num_workers / timing.steady_seconds, 1
        )
        if timing.steady_seconds > 0
        else None,
        "model_dir": job.model_dir,
    }
