"""`replenish <job>`: one console command that runs each job of jobs/ on local (or any) Spark."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# subcommand -> module in jobs/ (installed as the package `replenish_jobs`)
JOBS: dict[str, str] = {
    "generate": "generate",
    "ingest": "ingest",
    "features": "features",
    "forecast": "forecast",
    "inventory": "inventory",
    "simulate": "simulate",
    "report": "report",
    "run-all": "run_all",
    "tables": "tables",
    "stream": "stream",
    "train-lstm": "train_lstm",
    "recommend": "recommend",
}


def _usage() -> str:
    lines = ["usage: replenish <job> [options]   (replenish <job> --help for a job's options)", "", "jobs:"]
    for name, module in JOBS.items():
        try:
            doc = (importlib.import_module(f"replenish_jobs.{module}").__doc__ or "").strip().splitlines()[0]
        except ImportError:
            doc = "(not installed)"
        lines.append(f"  {name:<10} {doc}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in JOBS:
        print(f"replenish: unknown job {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"replenish_jobs.{JOBS[name]}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
