"""The incremental nightly run against a full run, one new day of sales, per stage.

Run: `.venv/bin/python -m benchmarks.incremental_bench [--freqs D,W] [--work DIR] [--skus N --days N]`.
Prints, per frequency, each stage's seconds of `run-all --incremental --skip-generate` and of a full
`run-all --skip-generate` over the same data, and their ratio (target: total at most 0.2). Asserts nothing.

1. `replenish generate` writes the demo data (the `generate:` section: 1,000 SKUs x 10 locations x
   1,095 days, unless `--skus`/`--days` say otherwise) into `<work>/data`.
2. Per frequency, a full `run-all --skip-generate` builds a lake from it (the night before).
3. One new day: the sales of the data's last day, dated one day later, as one new CSV file in the
   sales folder (a Wednesday for the demo data, so it completes no week).
4. Per frequency, the lake is copied; `run-all --incremental --skip-generate` runs on one copy and a
   full `run-all --skip-generate` on the other: the same history, the same data, the same warm starts.

Each run is its own `replenish` process (its own Spark session, `conf/local.yaml`); the stage seconds
are those run-all reports. The machine's load (`os.getloadavg`) is printed with each run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NEW_DAY_FILE = "part-99999-new-day.csv"


def replenish(*argv: str, log: Path) -> list[dict[str, Any]]:
    """Run `replenish ARGV` as its own process; the JSON summaries it printed (one per job), in order."""
    command = [str(Path(sys.executable).parent / "replenish"), *argv]
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}: see {log}")
    summaries = []
    for line in log.read_text().splitlines():
        if line.startswith('{"job"'):
            summaries.append(json.loads(line))
    return summaries


def add_new_day(sales: Path) -> tuple[str, int]:
    """Write the last day's sales rows, dated a day later, as a new file of the sales folder (once)."""
    target = sales / NEW_DAY_FILE
    if target.exists():
        lines = target.read_text().splitlines()
        return lines[1].split(",")[2], len(lines) - 1
    header: list[str] = []
    last = ""
    rows_by_day: dict[str, list[list[str]]] = {}
    for part in sorted(sales.glob("part-*.csv")):
        with part.open() as handle:
            reader = csv.reader(handle)
            header = next(reader)
            at = header.index("date")
            for row in reader:
                if ISO_DAY.match(row[at]) and row[at] >= last:
                    if row[at] > last:
                        last, rows_by_day = row[at], {}
                    rows_by_day.setdefault(row[at], []).append(row)
    new_day = (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    rows = rows_by_day[last]
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            row[header.index("date")] = new_day
            writer.writerow(row)
    return new_day, len(rows)


def run_all(lake: Path, data: Path, freq: str, *extra: str, log: Path) -> dict[str, Any]:
    load = os.getloadavg()
    started = time.monotonic()
    summaries = replenish(
        "run-all", "--skip-generate", "--data", str(data), "--lake", str(lake), "--freq", freq, *extra, log=log
    )
    seconds = time.monotonic() - started
    by_job = {summary["job"]: summary for summary in summaries}
    result = {
        "stage_seconds": by_job["run-all"]["stage_seconds"],
        "seconds": round(seconds, 1),
        "load_before": [round(v, 2) for v in load],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "forecast": by_job.get("forecast", {}).get("incremental"),
        "features": by_job.get("features", {}).get("incremental"),
    }
    print(f"  {lake.name} {' '.join(extra) or 'full'}: {result}", flush=True)
    return result


def table(freq: str, full: dict[str, Any], incremental: dict[str, Any]) -> str:
    lines = [f"freq {freq}", "| stage | full (s) | incremental (s) | ratio |", "|---|---:|---:|---:|"]
    stages = full["stage_seconds"]
    for stage, seconds in stages.items():
        other = incremental["stage_seconds"].get(stage, 0.0)
        ratio = f"{other / seconds:.2f}" if seconds else "-"
        lines.append(f"| {stage} | {seconds:.1f} | {other:.1f} | {ratio} |")
    total_full, total_incremental = sum(stages.values()), sum(incremental["stage_seconds"].values())
    lines.append(f"| **total** | {total_full:.1f} | {total_incremental:.1f} | {total_incremental / total_full:.2f} |")
    lines.append(f"features: {incremental['features']}")
    lines.append(f"forecast: {incremental['forecast']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freqs", default="D,W", help="frequencies to measure, comma-separated")
    parser.add_argument("--work", default="/tmp/incremental_bench", help="folder for the data and the lakes")
    parser.add_argument("--skus", type=int, help="generate --skus (default: the profile's, 1,000)")
    parser.add_argument("--days", type=int, help="generate --days (default: the profile's, 1,095)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep <work>: its data, and the lakes of the night before where they exist (a resumed measurement)",
    )
    parser.add_argument("--before-only", action="store_true", help="stop after the nights before (resume with --reuse)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    data = work / "data"
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    if not (data / "sales").exists():
        scale = [*(["--skus", str(args.skus)] if args.skus else []), *(["--days", str(args.days)] if args.days else [])]
        replenish("generate", "--out", str(data), "--format", "csv", *scale, log=work / "logs" / "generate.log")
    freqs = [f.strip() for f in args.freqs.split(",") if f.strip()]
    for freq in freqs:
        if not (work / f"lake-{freq}" / "gold").exists():
            print(f"night before, {freq}:", flush=True)
            run_all(work / f"lake-{freq}", data, freq, log=work / "logs" / f"before-{freq}.log")
    if args.before_only:
        return 0
    new_day, rows = add_new_day(data / "sales")
    print(f"new day {new_day}: {rows} sales rows in one new file", flush=True)
    results = {}
    for freq in freqs:
        shutil.rmtree(work / f"full-{freq}", ignore_errors=True)
        shutil.copytree(work / f"lake-{freq}", work / f"full-{freq}")
        print(f"the new night, {freq}:", flush=True)
        incremental = run_all(
            work / f"lake-{freq}", data, freq, "--incremental", log=work / "logs" / f"incremental-{freq}.log"
        )
        full = run_all(work / f"full-{freq}", data, freq, log=work / "logs" / f"full-{freq}.log")
        results[freq] = {"full": full, "incremental": incremental}
        print(table(freq, full, incremental), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
