"""Per-series ARIMA forecast (the routed model only), for spark-submit: `forecast --model arima`.

Fits one model per SKU-location: ARIMA with automatic order selection (seasonal where the
frequency implies it; price, promo and holiday regressors when silver.demand has them) for smooth
and erratic series, Croston SBA / TSB for intermittent and lumpy ones, fallbacks for new, short and
all-zero series; backtests it and records it in gold.model_registry. Takes the options of
`replenish forecast` except `--model`.
"""

from __future__ import annotations

import argparse
from typing import Any

from replenish_jobs import forecast
from replenish_jobs.harness import JobContext, job_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    forecast.add_arguments(parser)
    parser.set_defaults(model="arima")


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    args.model = "arima"
    return forecast.run(ctx, args)


main = job_main("forecast-arima", __doc__, add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
