"""Forecast throughput, accuracy and memory: our Spark job against in-process and per-series patterns.

Run: `.venv/bin/python -m benchmarks.forecast_bench [--quick]`; prints Markdown tables (and writes
JSON with `--json PATH`). Records timings, asserts nothing.

On generated daily data (and weekly data) every variant forecasts the same holdout (the last
`horizon` periods of each series) from the same training data, so MASE is comparable:

(a) in-process: `series.forecast_frame`, our per-series code on one pandas frame, one core (BLAS
    limited to one thread, as Spark limits its Python workers to `spark.task.cpus` threads);
(b) the common accelerator pattern: `groupBy(sku, location).applyInPandas`, one statsforecast
    `AutoARIMA` call per series with the library's defaults on the full history; (b') the same
    pattern with our training window and search space, which separates the gain of batching many
    series per task from the gain of the settings;
(c) our job, cold: `distributed.forecast_tables`, mapInPandas over series-partitioned data, every
    ARIMA order searched;
(d) our job, warm: the same with the orders (c) stored, parameters re-estimated only.

All variants run with the backtest off, so they do the same work as (b): one fit per series
(`--with-backtest` adds a row for the job with its default 3-fold backtest). (b) and (a) run on a
subset of the series (the slow per-series defaults would take hours on all of them); throughput is
a rate, and MASE is compared on the same subset. A separate in-process check measures warm-start
accuracy realistically: orders searched one week earlier, parameters re-estimated today.

Throughput is series per second per core, from wall time (series / wall seconds / cores used) and
from CPU time (series / CPU seconds of the driver, the JVM and its Python workers), which is less
sensitive to other load on the machine. Memory: peak RSS of the Python workers and of the JVM while
the job (baseline model) runs on two panel sizes, 10x apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replenish.forecast.backtest import mase_scale
from replenish.forecast.series import ARIMA_FAILED_ON, forecast_frame
from replenish.forecast.settings import ForecastConfig, ForecastPlan
from replenish.forecast.synthetic import synthetic_demand

HORIZON = {"D": 28, "W": 13}
SEASON = {"D": 7, "W": 52}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- process-tree CPU and memory ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid`: the JVM forks the Python daemon from a thread, not from main."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(_children(current))
    return found


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself (its children are counted as processes of the tree)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:13]) / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="ignore")
    except OSError:
        return False


class Meter:
    """CPU seconds and peak memory of this process and the Spark JVM tree over a block of work.

    Python workers come and go during a job (Spark stops idle ones), and a parent's count of its reaped
    children's CPU is unreliable here, so the tree is sampled every 0.25 s and each process counts
    with the most CPU it was seen to have used (a process that ends loses at most its last 0.25 s).
    """

    def __init__(self, jvm_pid: int | None) -> None:
        self.jvm_pid = jvm_pid

    def _tree_cpu(self) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) for pid in _tree(self.jvm_pid)} if self.jvm_pid else {}

    def measure(self, work: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        peaks = {"worker_rss_mb": 0.0, "jvm_rss_mb": 0.0}
        stop = threading.Event()
        start = self._tree_cpu()
        seen = dict(start)

        def observe() -> None:
            for pid, cpu in self._tree_cpu().items():
                seen[pid] = max(seen.get(pid, 0.0), cpu)

        def sample() -> None:
            while not stop.is_set():
                if self.jvm_pid:
                    observe()
                    peaks["jvm_rss_mb"] = max(peaks["jvm_rss_mb"], _rss_mb(self.jvm_pid))
                    workers = [_rss_mb(pid) for pid in _tree(self.jvm_pid)[1:] if _is_python(pid)]
                    peaks["worker_rss_mb"] = max([peaks["worker_rss_mb"], *workers])
                stop.wait(0.25)

        own = os.times()
        own_cpu, wall = own.user + own.system, time.perf_counter()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = work()
        finally:
            elapsed = time.perf_counter() - wall
            stop.set()
            sampler.join()
            observe()
            own = os.times()
            used = own.user + own.system - own_cpu + sum(cpu - start.get(pid, 0.0) for pid, cpu in seen.items())
        return result, {"wall_s": elapsed, "cpu_s": used, **peaks}


# --- data and scoring -----------------------------------------------------------------------------


@dataclass
class Panel:
    freq: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    keys: list[tuple[str, str]]
    path: str = ""
    scales: dict[tuple[str, str], float] = field(default_factory=dict)


def make_panel(freq: str, n_series: int, periods: int, seed: int, folder: Path) -> Panel:
    h = HORIZON[freq]
    panel = synthetic_demand(n_series, periods + h, freq=freq, seed=seed).drop(columns=["true_demand", "kind"])
    panel = panel.sort_values(["sku", "location", "date"], ignore_index=True)
    position = panel.groupby(["sku", "location"]).cumcount()
    train = panel[position < periods].reset_index(drop=True)
    holdout = panel[position >= periods].reset_index(drop=True)
    path = folder / f"demand_{freq}_{n_series}"
    train.to_parquet(path, partition_cols=None, index=False)
    keys = list(train[["sku", "location"]].drop_duplicates().itertuples(index=False, name=None))
    scales = {
        key: mase_scale(group["demand"].to_numpy(float), SEASON[freq])
        for key, group in train.groupby(["sku", "location"], sort=False)
    }
    return Panel(freq, train, holdout, keys, str(path), scales)


def mase_of(forecasts: pd.DataFrame, panel: Panel, keys: list[tuple[str, str]]) -> float:
    """Mean over series of MASE on the holdout (censored holdout periods excluded)."""
    merged = panel.holdout.merge(forecasts[["sku", "location", "date", "yhat"]], on=["sku", "location", "date"])
    merged = merged[~merged["censored"]]
    errors = (merged["yhat"] - merged["demand"]).abs().groupby([merged["sku"], merged["location"]]).mean()
    values = [errors[key] / panel.scales[key] for key in keys if key in errors and np.isfinite(panel.scales[key])]
    return float(np.mean(values)) if values else float("nan")


def subset(frame: pd.DataFrame, keys: list[tuple[str, str]]) -> pd.DataFrame:
    wanted = pd.MultiIndex.from_tuples(keys, names=["sku", "location"])
    return frame[pd.MultiIndex.from_frame(frame[["sku", "location"]]).isin(wanted)]


# --- the variants ---------------------------------------------------------------------------------


def plan_for(freq: str, *, folds: int = 0, warm: bool = False, model: str = "arima") -> ForecastPlan:
    plan = ForecastConfig().plan(freq, model=model, horizon=HORIZON[freq], run_date=dt.date.today().isoformat())
    return replace(plan, folds=folds, warm_start=warm)


def run_in_process(panel: Panel, keys: list[tuple[str, str]], plan: ForecastPlan) -> tuple[pd.DataFrame, dict]:
    """(a), on one core: BLAS limited to one thread, as in Spark's Python workers (OMP_NUM_THREADS = task cpus)."""
    from threadpoolctl import threadpool_limits

    frame = subset(panel.train, keys)
    forecast_frame(frame.iloc[:0], plan)  # import the library outside the timing
    with threadpool_limits(limits=1):
        started_cpu, started = time.process_time(), time.perf_counter()
        records = forecast_frame(frame, plan)
        timing = {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - started_cpu}
    forecasts = records[records["record"] == "forecast"].copy()
    forecasts["date"] = pd.to_datetime(forecasts["date"]).dt.date
    return records, timing


def per_series_pattern(spark, panel: Panel, keys: list[tuple[str, str]], *, ours: bool) -> pd.DataFrame:
    """(b): one AutoARIMA call per series in `groupBy(series).applyInPandas`."""
    from pyspark.sql import types as T

    freq, h = panel.freq, HORIZON[panel.freq]
    cfg = ForecastConfig()
    window = cfg.for_freq(freq).train_periods
    search = cfg.arima
    step = "7D" if freq == "W" else "1D"

    def one_series(pdf: pd.DataFrame) -> pd.DataFrame:
        from statsforecast.models import AutoARIMA

        warnings.simplefilter("ignore")
        pdf = pdf.sort_values("date")
        y = pdf["demand"].to_numpy(float)
        if ours:
            y = y[-window:]
            model = AutoARIMA(
                season_length=SEASON[freq],
                max_p=search.max_p,
                max_q=search.max_q,
                max_P=search.max_P,
                max_Q=search.max_Q,
                max_order=search.max_order,
                max_d=search.max_d,
                approximation=search.approximation,
                allowdrift=search.allow_drift,
            )
        else:
            model = AutoARIMA(season_length=SEASON[freq])
        try:
            mean = np.maximum(model.forecast(y=y, h=h, level=[80, 95])["mean"], 0)
        except Exception:
            mean = np.full(h, y.mean())
        dates = pd.date_range(pd.Timestamp(pdf["date"].iloc[-1]) + pd.Timedelta(step), periods=h, freq=step)
        return pd.DataFrame(
            {"sku": pdf["sku"].iloc[0], "location": pdf["location"].iloc[0], "date": dates.date, "yhat": mean}
        )

    schema = T.StructType(
        [
            T.StructField("sku", T.StringType()),
            T.StructField("location", T.StringType()),
            T.StructField("date", T.DateType()),
            T.StructField("yhat", T.DoubleType()),
        ]
    )
    rows = spark.read.parquet(panel.path).select("sku", "location", "date", "demand")
    wanted = spark.createDataFrame(pd.DataFrame(keys, columns=["sku", "location"]))
    return rows.join(wanted, ["sku", "location"]).groupBy("sku", "location").applyInPandas(one_series, schema=schema)


def our_job(spark, panel: Panel, plan: ForecastPlan, stored=None):
    from replenish.forecast.distributed import forecast_tables

    demand = spark.read.parquet(panel.path)
    return forecast_tables(demand, None, stored, plan, run_id="bench", run_date=dt.date.today(), country=None)


# --- the benchmark --------------------------------------------------------------------------------


def throughput(n: int, timing: dict[str, float], cores: int) -> dict[str, float]:
    return {
        "series": n,
        "wall_s": timing["wall_s"],
        "cpu_s": timing["cpu_s"],
        "per_core_wall": n / timing["wall_s"] / cores,
        "per_core_cpu": n / timing["cpu_s"] if timing["cpu_s"] > 0 else float("nan"),
    }


def bench_frequency(spark, meter: Meter, panel: Panel, sizes: dict[str, int], cores: int, backtest: bool) -> dict:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(panel.keys))
    keys_a = [panel.keys[i] for i in order[: sizes["in_process"]]]
    keys_b = [panel.keys[i] for i in order[: sizes["per_series"]]]
    freq = panel.freq
    results: dict[str, Any] = {"freq": freq, "series": len(panel.keys), "rows": {}}

    print(f"[{freq}] (a) in-process on {len(keys_a)} series", file=sys.stderr, flush=True)
    records, timing = run_in_process(panel, keys_a, plan_for(freq))
    forecasts = records[records["record"] == "forecast"]
    results["rows"]["a"] = {**throughput(len(keys_a), timing, 1), "mase": mase_of(forecasts, panel, keys_a)}

    for label, ours in (("b", False), ("b_ours", True)):
        print(f"[{freq}] ({label}) applyInPandas per series on {len(keys_b)} series", file=sys.stderr, flush=True)
        frame = per_series_pattern(spark, panel, keys_b, ours=ours).cache()
        _, timing = meter.measure(frame.count)
        pdf = frame.toPandas()
        frame.unpersist()
        results["rows"][label] = {**throughput(len(keys_b), timing, cores), "mase": mase_of(pdf, panel, keys_b)}

    print(f"[{freq}] (c) our job, cold, {len(panel.keys)} series", file=sys.stderr, flush=True)
    cold = our_job(spark, panel, plan_for(freq))
    cold.records.cache()
    _, timing = meter.measure(cold.records.count)
    forecasts = cold.forecast.toPandas()
    registry = cold.model_registry
    results["rows"]["c"] = {**throughput(len(panel.keys), timing, cores), "mase": mase_of(forecasts, panel, panel.keys)}
    results["memory"] = {"series": len(panel.keys), "rows": len(panel.train), **timing}
    for label, keys in (("c_on_a", keys_a), ("c_on_b", keys_b)):
        results["rows"][label] = {"mase": mase_of(forecasts, panel, keys)}
    models = registry.groupBy("model").count().toPandas().set_index("model")["count"].to_dict()
    results["models"] = {name: int(count) for name, count in models.items()}

    from replenish.forecast.registry import latest_arima_orders

    stored = latest_arima_orders(registry, freq).cache()
    stored.count()
    print(f"[{freq}] (d) our job, warm", file=sys.stderr, flush=True)
    warm = our_job(spark, panel, plan_for(freq, warm=True), stored)
    warm.records.cache()
    _, timing = meter.measure(warm.records.count)
    forecasts = warm.forecast.toPandas()
    results["rows"]["d"] = {**throughput(len(panel.keys), timing, cores), "mase": mase_of(forecasts, panel, panel.keys)}
    warm_reasons = warm.model_registry.where("model = 'arima'").selectExpr(
        "get_json_object(params, '$.selection') AS s"
    )
    results["warm_selection"] = warm_reasons.groupBy("s").count().toPandas().set_index("s")["count"].to_dict()
    warm.records.unpersist()
    cold.records.unpersist()
    stored.unpersist()

    if backtest:
        print(f"[{freq}] (c+) our job, cold, with the default backtest", file=sys.stderr, flush=True)
        folds = ForecastConfig().backtest.folds
        full = our_job(spark, panel, plan_for(freq, folds=folds))
        _, timing = meter.measure(lambda: full.records.write.format("noop").mode("overwrite").save())
        results["rows"]["c_backtest"] = {**throughput(len(panel.keys), timing, cores), "mase": float("nan")}

    print(f"[{freq}] realistic warm start, in-process on {len(keys_a)} series", file=sys.stderr, flush=True)
    results["warm_realistic"] = realistic_warm(panel, keys_a)
    return results


def realistic_warm(panel: Panel, keys: list[tuple[str, str]]) -> dict[str, float]:
    """Orders searched a week (D) or a month (W) earlier, then today's warm refit, against a cold search."""
    freq = panel.freq
    lag = {"D": 7, "W": 4}[freq]
    frame = subset(panel.train, keys).sort_values(["sku", "location", "date"])
    earlier = frame[frame.groupby(["sku", "location"]).cumcount(ascending=False) >= lag]
    old = forecast_frame(earlier, plan_for(freq))
    stored = (old["model"] == "arima") | old["params"].str.contains(ARIMA_FAILED_ON, regex=False, na=False)
    params = old[(old["record"] == "registry") & stored].set_index(["sku", "location"])["params"]
    today = frame.copy()
    today["warm_params"] = [params.get((s, loc)) for s, loc in zip(today["sku"], today["location"], strict=True)]
    started = time.process_time()
    cold = forecast_frame(today.drop(columns="warm_params"), plan_for(freq))
    cold_cpu = time.process_time() - started
    started = time.process_time()
    warm = forecast_frame(today, plan_for(freq, warm=True))
    warm_cpu = time.process_time() - started
    return {
        "series": len(keys),
        "cold_mase": mase_of(cold[cold["record"] == "forecast"], panel, keys),
        "warm_mase": mase_of(warm[warm["record"] == "forecast"], panel, keys),
        "cold_cpu_s": cold_cpu,
        "warm_cpu_s": warm_cpu,
    }


def _write_to_noop(records) -> None:
    """Run the job to its end without keeping its output."""
    records.write.format("noop").mode("overwrite").save()


def bench_memory(spark, meter: Meter, sizes: tuple[int, int], periods: int, folder: Path) -> list[dict]:
    """Peak memory of the job with the baseline model and the default backtest at two panel sizes."""
    out = []
    for n in sizes:
        print(f"[memory] baseline job on {n} daily series", file=sys.stderr, flush=True)
        panel = make_panel("D", n, periods, seed=7, folder=folder)
        job = our_job(spark, panel, plan_for("D", model="baseline", folds=ForecastConfig().backtest.folds))
        _, timing = meter.measure(functools.partial(_write_to_noop, job.records))
        out.append({"model": "baseline, 3-fold backtest", "series": n, "rows": len(panel.train), **timing})
        del panel
    return out


def arima_memory(spark, meter: Meter, daily: Panel, periods: int, folder: Path) -> dict:
    """Peak memory of the ARIMA job (cold) on a tenth of the daily panel, to set beside (c)."""
    n = max(len(daily.keys) // 10, 1)
    print(f"[memory] ARIMA job, cold, on {n} daily series", file=sys.stderr, flush=True)
    panel = make_panel("D", n, periods, seed=1, folder=folder)
    job = our_job(spark, panel, plan_for("D"))
    _, timing = meter.measure(lambda: job.records.write.format("noop").mode("overwrite").save())
    return {"series": n, "rows": len(panel.train), **timing}


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def report(results: list[dict], memory: list[dict], meta: dict) -> str:
    lines = [
        f"Forecast benchmark: {meta['when']}, {meta['cores']} cores for Spark (local[{meta['cores']}]), "
        f"machine load average at start {meta['load']:.1f}; backtest off in every variant (one fit per series).",
        "",
    ]
    names = {
        "a": "(a) in-process, our code, 1 core",
        "b": "(b) applyInPandas per series, AutoARIMA defaults, full history",
        "b_ours": "(b') applyInPandas per series, our window + search space",
        "c": "(c) our job, cold (order search)",
        "d": "(d) our job, warm (stored orders)",
        "c_backtest": "(c+) our job, cold, with the 3-fold backtest",
    }
    for result in results:
        rows = result["rows"]
        lines += [
            f"### {result['freq']}: {result['series']} series (routed models: {result['models']})",
            "",
            "| variant | series | wall s | CPU s | series/s/core (wall) | series/s/core (CPU) | MASE "
            "| MASE of (c) on the same series |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key, label in names.items():
            if key not in rows:
                continue
            row = rows[key]
            same = {"a": rows["c_on_a"]["mase"], "b": rows["c_on_b"]["mase"], "b_ours": rows["c_on_b"]["mase"]}.get(key)
            lines.append(
                f"| {label} | {row['series']} | {_fmt(row['wall_s'], 1)} | {_fmt(row['cpu_s'], 1)} | "
                f"{_fmt(row['per_core_wall'], 3)} | {_fmt(row['per_core_cpu'], 3)} | {_fmt(row['mase'], 3)} | "
                f"{_fmt(same, 3) if same is not None else ''} |"
            )
        lines += [*_targets(rows), "", _warm_line(result), ""]
    if memory:
        lines += [
            "### Memory: peak executor memory of the job at two sizes, 10x apart",
            "",
            "| job | series | demand rows | wall s | peak Python worker RSS MB | peak JVM RSS MB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in memory:
            lines.append(
                f"| {row['model']} | {row['series']} | {row['rows']} | {_fmt(row['wall_s'], 1)} | "
                f"{_fmt(row['worker_rss_mb'], 0)} | {_fmt(row['jvm_rss_mb'], 0)} |"
            )
    return "\n".join(lines)


def _targets(rows: dict[str, dict[str, float]]) -> list[str]:
    a, b, c, d = rows["a"], rows["b"], rows["c"], rows["d"]
    mase_b = f"MASE (c) {_fmt(rows['c_on_b']['mase'], 3)} vs (b) {_fmt(b['mase'], 3)}"
    mase_d = f"MASE (d) {_fmt(d['mase'], 3)} vs (c) {_fmt(c['mase'], 3)}"
    return [
        "",
        "| target | measured (wall) | measured (CPU) | met | accuracy |",
        "|---|---:|---:|---|---|",
        _target(
            "Spark overhead of (c) over (a) <= 25%",
            1 - c["per_core_wall"] / a["per_core_wall"],
            1 - c["per_core_cpu"] / a["per_core_cpu"],
            lambda v: v <= 0.25,
            percent=True,
        )
        + f" MASE (c) {_fmt(rows['c_on_a']['mase'], 3)} vs (a) {_fmt(a['mase'], 3)} |",
        _target(
            "(c) >= 2x the throughput of (b)",
            c["per_core_wall"] / b["per_core_wall"],
            c["per_core_cpu"] / b["per_core_cpu"],
            lambda v: v >= 2,
        )
        + f" {mase_b} |",
        _target(
            "(d) >= 10x the throughput of (c)",
            d["per_core_wall"] / c["per_core_wall"],
            d["per_core_cpu"] / c["per_core_cpu"],
            lambda v: v >= 10,
        )
        + f" {mase_d} |",
    ]


def _warm_line(result: dict[str, Any]) -> str:
    warm = result["warm_realistic"]
    lag = 7 if result["freq"] == "D" else 4
    speedup = warm["cold_cpu_s"] / max(warm["warm_cpu_s"], 1e-9)
    return (
        f"Warm start with orders searched {lag} periods earlier ({warm['series']} series, in-process): "
        f"MASE {_fmt(warm['warm_mase'], 3)} warm vs {_fmt(warm['cold_mase'], 3)} cold; CPU "
        f"{_fmt(warm['warm_cpu_s'], 1)} s vs {_fmt(warm['cold_cpu_s'], 1)} s ({_fmt(speedup, 1)}x). "
        f"Selections in (d): {result['warm_selection']}."
    )


def _target(label: str, wall: float, cpu: float, ok: Callable[[float], bool], percent: bool = False) -> str:
    show = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:.2f}x")
    verdict = "yes" if ok(wall) and ok(cpu) else ("on CPU time only" if ok(cpu) else "no")
    if not ok(cpu) and ok(wall):
        verdict = "on wall time only"
    return f"| {label} | {show(wall)} | {show(cpu)} | {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small panels: a smoke run of a few minutes")
    parser.add_argument("--series", type=int, help="daily series (default 2000; quick 200)")
    parser.add_argument("--weekly-series", type=int, help="weekly series (default 200; quick 40)")
    parser.add_argument("--cores", type=int, default=2, help="local[N] cores for Spark (default 2)")
    parser.add_argument("--with-backtest", action="store_true", help="also time the job with its default backtest")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory comparison")
    parser.add_argument("--only", choices=["D", "W"], help="run one frequency only")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)
    quick = args.quick
    daily = args.series or (200 if quick else 2000)
    weekly = args.weekly_series or (40 if quick else 200)
    sizes = {
        "D": {"in_process": min(daily, 60 if quick else 100), "per_series": min(daily, 12 if quick else 24)},
        "W": {"in_process": min(weekly, 12 if quick else 30), "per_series": min(weekly, 6 if quick else 10)},
    }
    memory_sizes = (200, 2000) if quick else (1000, 10000)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from replenish_jobs.harness import build_spark

    spark = build_spark(
        {
            "app_name": "forecast-bench",
            "master": f"local[{args.cores}]",
            "log_level": "ERROR",
            "conf": {
                "spark.driver.memory": "4g",
                "spark.sql.shuffle.partitions": str(args.cores * 4),
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
            },
        }
    )
    gateway = getattr(spark.sparkContext, "_gateway", None)
    jvm_pid = getattr(getattr(gateway, "proc", None), "pid", None)
    meter = Meter(jvm_pid)
    meta = {"when": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "cores": args.cores, "load": os.getloadavg()[0]}
    results, memory = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="forecast-bench-") as folder:
            for freq, n_series, periods in (("D", daily, 730), ("W", weekly, 156)):
                if args.only and freq != args.only:
                    continue
                panel = make_panel(freq, n_series, periods, seed=1, folder=Path(folder))
                results.append(bench_frequency(spark, meter, panel, sizes[freq], args.cores, args.with_backtest))
                if freq == "D" and not args.no_memory:
                    small = arima_memory(spark, meter, panel, periods, Path(folder))
                    memory += [
                        {"model": "ARIMA routed, cold (order search)", **small},
                        {"model": "ARIMA routed, cold (order search)", **results[-1]["memory"]},
                    ]
                del panel
            if not args.no_memory:
                memory += bench_memory(spark, meter, memory_sizes, 730, Path(folder))
    finally:
        spark.stop()
    text = report(results, memory, meta)
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"meta": meta, "results": results, "memory": memory}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
