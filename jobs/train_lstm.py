"""Train the global LSTM forecaster on every series (silver.demand → silver.lstm_windows → model).

Builds the training windows in Spark and writes them as `silver.lstm_windows` (the frequency's
partition replaced), hands them to TensorFlow through Petastorm (or the Arrow fallback), trains in
a Spark barrier stage under MultiWorkerMirroredStrategy (`forecast.lstm.workers` tasks, GPUs when
`forecast.lstm.use_gpu`), and saves the model under `<lake>/models/lstm/<freq>/<run_id>`, recorded
in `gold.model_registry` (status `trained`). The model trains on the periods before the first
backtest cutoff of `replenish forecast`, which then reuses it (docs/lstm.md). Rerunning with the
same `--run-id` resumes an interrupted training from its last epoch.
"""

from __future__ import annotations

import argparse
from typing import Any

from replenish.features import FREQUENCIES
from replenish_jobs.harness import JobContext, job_main
from replenish_jobs.lstm_steps import input_tables, resolve_plan, train_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--freq", choices=FREQUENCIES, help="demand frequency; default: features.freq")
    parser.add_argument("--horizon", type=int, help="periods to forecast; default: forecast.horizon")
    parser.add_argument("--workers", type=int, help="training tasks (barrier stage); default: forecast.lstm.workers")
    parser.add_argument("--epochs", type=int, help="most epochs; default: forecast.lstm.epochs")


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    import dataclasses

    cfg, features, plan = resolve_plan(ctx, freq=args.freq, horizon=args.horizon)
    settings = cfg.lstm
    if args.workers:
        settings = dataclasses.replace(settings, workers=args.workers)
    if args.epochs:
        settings = dataclasses.replace(settings, epochs=args.epochs)
    from replenish.neural import pipeline

    inputs = input_tables(ctx, plan.freq, plan.horizon, features.country)
    lplan = pipeline.lstm_plan(inputs["demand"], plan, settings)
    result = train_model(ctx, lplan, inputs)
    return {"freq": plan.freq, **result}


main = job_main("train-lstm", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
