"""The LSTM's accuracy on the demo lake: 5,000 generated daily series. Records figures, asserts nothing.

Run after `make demo`: `.venv/bin/python -m benchmarks.lstm_demo_accuracy [--lake ./lakehouse] [--json PATH]`;
prints Markdown. Reads the lake through DuckDB (`replenish.io.bi`), no Spark.

From `gold.forecast_backtest` of the lake's latest forecast run (the same rolling-origin folds for every
model), mean MASE of each model:

1. overall;
2. paired with the LSTM on the same series and folds, by the history a series had at the fold's cutoff
   (from `silver.series_profile.first_date`): under 56 days, 56-119 (short), 120-364, a year or more;
3. paired on promo-heavy series: the top decile of the share of promoted days (`silver.demand.promo`);
4. per-series selection, as `replenish inventory` selects: each series' model with the lowest mean MASE
   on every fold but the last, scored on the last fold, with and without the LSTM as a candidate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HISTORY_GROUPS = """CASE WHEN o.history_days < 56 THEN 'a: under 56 days'
    WHEN o.history_days < 120 THEN 'b: 56-119 days'
    WHEN o.history_days < 365 THEN 'c: 120-364 days' ELSE 'd: a year or more' END"""


def measure(lake: str, *, run_id: str | None = None) -> dict[str, Any]:
    """The figures of `run_id`, or of the latest run that backtested the LSTM beside other models."""
    from replenish.io.bi import duckdb_connect

    con = duckdb_connect(lake, tables=["gold.forecast_backtest", "silver.series_profile", "silver.demand"])
    if run_id is None:
        run_id = con.sql(
            """SELECT max(run_id) FROM (SELECT run_id FROM gold_forecast_backtest GROUP BY 1
               HAVING count(DISTINCT model) > 1 AND bool_or(model = 'lstm'))"""
        ).fetchone()[0]
    con.sql(
        f"""CREATE TEMP VIEW scored AS
        WITH promo AS (
            SELECT sku, location, avg(CASE WHEN promo > 0 THEN 1.0 ELSE 0.0 END) AS promo_share
            FROM silver_demand WHERE freq = 'D' GROUP BY 1, 2)
        SELECT b.sku, b.location, b.model, b.fold, b.mase,
               datediff('day', p.first_date, b.cutoff) AS history_days,
               m.promo_share >= (SELECT quantile_cont(promo_share, 0.9) FROM promo) AS promo_heavy
        FROM gold_forecast_backtest b
        JOIN silver_series_profile p ON p.freq = b.freq AND p.sku = b.sku AND p.location = b.location
        JOIN promo m ON m.sku = b.sku AND m.location = b.location
        WHERE b.freq = 'D' AND b.run_id = '{run_id}' AND isfinite(b.mase)"""
    )
    con.sql(
        f"""CREATE TEMP VIEW paired AS
        SELECT o.model, o.mase AS other, l.mase AS lstm, {HISTORY_GROUPS} AS history, o.promo_heavy
        FROM scored o JOIN scored l
          ON l.sku = o.sku AND l.location = o.location AND l.fold = o.fold AND l.model = 'lstm'
        WHERE o.model <> 'lstm'"""
    )

    def rows(sql: str) -> list[dict[str, Any]]:
        relation = con.sql(sql)
        return [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]

    overall = rows("SELECT model, count(*) AS n, round(avg(mase), 3) AS mase FROM scored GROUP BY 1 ORDER BY 3")
    by_history = rows(
        "SELECT history, model, count(*) AS n, round(avg(other), 3) AS other, round(avg(lstm), 3) AS lstm "
        "FROM paired GROUP BY 1, 2 ORDER BY 1, 2"
    )
    promo = rows(
        "SELECT model, count(*) AS n, round(avg(other), 3) AS other, round(avg(lstm), 3) AS lstm "
        "FROM paired WHERE promo_heavy GROUP BY 1 ORDER BY 1"
    )
    last = con.sql("SELECT max(fold) FROM scored").fetchone()[0]
    selection = {}
    for label, candidates in (("without_lstm", "model <> 'lstm'"), ("with_lstm", "true")):
        selection[label] = rows(
            f"""WITH early AS (SELECT sku, location, model, avg(mase) AS m FROM scored
                               WHERE fold < {last} AND {candidates} GROUP BY 1, 2, 3),
                pick AS (SELECT sku, location, arg_min(model, m) AS model FROM early GROUP BY 1, 2)
            SELECT count(*) AS series, round(avg(s.mase), 4) AS mase,
                   count(*) FILTER (WHERE pick.model = 'lstm') AS lstm_picked
            FROM pick JOIN scored s USING (sku, location, model) WHERE s.fold = {last}"""
        )[0]
    return {
        "run_id": run_id,
        "overall": overall,
        "by_history": by_history,
        "promo_heavy": promo,
        "selection": selection,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"run {result['run_id']}", "", "| model | scores | MASE |", "|---|---:|---:|"]
    lines += [f"| {r['model']} | {r['n']} | {r['mase']} |" for r in result["overall"]]
    lines += ["", "| history at cutoff | model | pairs | model's MASE | LSTM's MASE |", "|---|---|---:|---:|---:|"]
    lines += [
        f"| {r['history']} | {r['model']} | {r['n']} | {r['other']} | {r['lstm']} |" for r in result["by_history"]
    ]
    lines += ["", "| promo-heavy: model | pairs | model's MASE | LSTM's MASE |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['n']} | {r['other']} | {r['lstm']} |" for r in result["promo_heavy"]]
    lines += ["", "| selection | series | last-fold MASE | LSTM picked |", "|---|---:|---:|---:|"]
    lines += [
        f"| {label} | {r['series']} | {r['mase']} | {r['lstm_picked']} |" for label, r in result["selection"].items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default="./lakehouse")
    parser.add_argument("--run-id", help="a `forecast --model auto` run (default: the latest with the LSTM)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(args.lake, run_id=args.run_id)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
