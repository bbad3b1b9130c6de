"""Run the whole pipeline: generate → ingest → features → recommend → forecast → inventory → simulate → report.

All stages share one Spark session. `--skip-generate` ingests files already in the data folder
(`generate.out`, or `--data DIR`) instead of generating them; `--stages ingest,features,forecast` runs
only the stages named, in pipeline order. The summary lists every table with its
version and row count, and shows how to query them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from replenish.shared import FREQUENCIES
from replenish_jobs.harness import JobContext, job_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="folder of raw input files (default: generate.out of the profile)")
    parser.add_argument("--skip-generate", action="store_true", help="ingest existing files instead of generating")
    parser.add_argument("--freq", default=None, choices=FREQUENCIES, help="demand frequency (default: features.freq)")
    parser.add_argument(
        "--horizon", type=int, default=None, help="forecast horizon in periods (default: forecast.horizon)"
    )
    parser.add_argument("--model", default=None, help="forecast model (default: forecast.model)")
    parser.add_argument("--report", default=None, help="HTML report path (default: <lake>/report.html)")
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="ingest only new files, rebuild features and refit forecasts only for the series they changed "
        "(the others' rows carried); the plan and the later stages run in full (docs/lake.md, Incremental "
        "nightly run)",
    )
    parser.add_argument(
        "--stages",
        type=_stage_list,
        default=None,
        help=f"comma-separated stages to run, in pipeline order (default: all of {','.join(STAGES)})",
    )


STAGES = ("generate", "ingest", "features", "recommend", "forecast", "inventory", "simulate", "report")


def _stage_list(text: str) -> tuple[str, ...]:
    """`ingest,features` -> the named stages; an unknown name is an argument error that lists the known ones."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {unknown or [text]}: choose from {', '.join(STAGES)}")
    return names


def _common_argv(ctx: JobContext, args: argparse.Namespace) -> list[str]:
    argv = ["--lake", ctx.lake.root, "--profile", args.profile, "--run-id", ctx.run_id]
    argv += ["--run-date", ctx.run_date.isoformat()]
    if args.conf_dir:
        argv += ["--conf-dir", args.conf_dir]
    for override in args.overrides:
        argv += ["--set", override]
    return argv


def stages(ctx: JobContext, args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The pipeline as data: (job module, its own arguments), in order."""
    data = args.data or str(ctx.settings.get("generate", {}).get("out", "./data/raw"))
    freq = args.freq or str(ctx.settings.get("features", {}).get("freq", "D"))
    forecast = ["--freq", freq]
    if args.horizon:
        forecast += ["--horizon", str(args.horizon)]
    if args.model:
        forecast += ["--model", args.model]
    plan: list[tuple[str, list[str]]] = []
    if not args.skip_generate:
        plan.append(("generate", ["--out", data]))
    incremental = ["--incremental"] if getattr(args, "incremental", False) else []
    plan += [
        ("ingest", ["--all", data, *incremental]),
        ("features", ["--freq", freq, *incremental]),
        ("recommend", ["--if-interactions"]),
        ("forecast", [*forecast, *incremental]),
        ("inventory", ["--freq", freq]),
        ("simulate", ["--freq", freq]),
        ("report", ["--out", args.report or f"{ctx.lake.root.rstrip('/')}/report.html"]),
    ]
    chosen = getattr(args, "stages", None)
    return [stage for stage in plan if chosen is None or stage[0] in chosen]


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    import importlib

    from replenish.io.describe import format_table_summary, table_summary

    timings: dict[str, float] = {}
    plan = stages(ctx, args)
    run_started = time.monotonic()
    for number, (module_name, stage_args) in enumerate(plan, start=1):
        module = importlib.import_module(f"replenish_jobs.{module_name}")
        main: Callable[..., int] = module.main
        started = time.monotonic()
        print(f"\n=== [{number}/{len(plan)}] {module_name} {' '.join(stage_args)}", flush=True)
        code = main([*stage_args, *_common_argv(ctx, args)], spark=ctx.spark)
        timings[module_name] = round(time.monotonic() - started, 1)
        print(_stage_done(module_name, code, timings[module_name], time.monotonic() - run_started), flush=True)
        if code != 0:
            raise SystemExit(f"stage {module_name} failed with exit code {code}")
    rows = table_summary(ctx.lake)
    print(_closing_summary(ctx, rows, format_table_summary(rows), args))
    return {"stage_seconds": timings, "tables": {row["table"]: row["rows"] for row in rows}}


def _stage_done(name: str, code: int, seconds: float, total_seconds: float) -> str:
    """`=== forecast done in 42.1 s (run-all 1 min 03 s so far)`: a stage's end, for a person watching."""
    minutes, rest = divmod(round(total_seconds), 60)
    so_far = f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"
    outcome = "done" if code == 0 else f"FAILED (exit code {code})"
    return f"=== {name} {outcome} in {seconds:.1f} s (run-all {so_far} so far)"


def _closing_summary(ctx: JobContext, rows: Sequence[dict[str, Any]], table_text: str, args: argparse.Namespace) -> str:
    root = ctx.lake.root
    report = args.report or f"{root.rstrip('/')}/report.html"
    return f"""
=== done: {len(rows)} Delta tables under {root}
{table_text}

Report: {report}
Query the tables:
  DuckDB  : python -c "from replenish.io.bi import duckdb_connect; \\
            duckdb_connect('{root}').sql('SELECT * FROM gold_replenishment_plan LIMIT 10').show()"
  Spark   : spark.read.format('delta').load('{root}/gold/forecast')   (with delta-spark), or
            Lake(spark, '{root}').read('gold.forecast')                (any Spark)
  Tables  : replenish tables --lake {root}
"""


main = job_main("run-all", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
