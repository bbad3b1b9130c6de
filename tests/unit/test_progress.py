"""Series counted per task and the progress line a person reads."""

from __future__ import annotations

import logging

import pandas as pd

from replenish.progress import SeriesProgress, count_series


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def add(self, amount: int) -> None:
        self.value += amount


def test_a_series_straddling_two_batches_counts_once() -> None:
    counter = _Counter()
    batches = [
        pd.DataFrame({"sku": ["a", "a", "b"], "location": ["x", "x", "x"]}),
        pd.DataFrame({"sku": ["b", "b", "b"], "location": ["x", "x", "y"]}),
        pd.DataFrame({"sku": [], "location": []}),
        pd.DataFrame({"sku": ["c"], "location": ["y"]}),
    ]
    passed = list(count_series(iter(batches), counter))
    assert len(passed) == 4
    assert counter.value == 4  # a@x, b@x, b@y, c@y


class _Context:
    def accumulator(self, value: int) -> _Counter:
        return _Counter()


class _Spark:
    sparkContext = _Context()


def test_the_line_says_done_of_total_and_never_more_than_the_total(caplog) -> None:
    caplog.set_level(logging.INFO, logger="replenish.progress")
    progress = SeriesProgress(_Spark(), total=200, label="forecast", interval=60)
    with progress:
        progress.counter.add(50)
    assert progress.lines[-1].startswith("forecast: 50/200 series (25%), ")
    progress.counter.add(500)  # a retried task counted again
    assert progress.line().startswith("forecast: 200/200 series (100%)")
    assert "forecast: 50/200 series" in caplog.text
    assert SeriesProgress(_Spark(), total=None).line().startswith("forecast: 0 series done")


def test_run_all_names_each_stage_with_its_time_and_the_time_so_far() -> None:
    from replenish_jobs.run_all import _stage_done

    assert _stage_done("forecast", 0, 42.13, 63.4) == "=== forecast done in 42.1 s (run-all 1 min 03 s so far)"
    assert _stage_done("ingest", 2, 1.0, 5.2) == "=== ingest FAILED (exit code 2) in 1.0 s (run-all 5 s so far)"
