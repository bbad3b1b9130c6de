"""Progress a person can follow while a long Spark stage runs: `forecast: 750/2,000 series (38%), 1 min 12 s`.

Tasks count the series they finish in a Spark accumulator (`count_series` wraps a task's input
batches); the driver polls it from a daemon thread (`SeriesProgress`) and logs a line whenever the
count moved, at most every `interval` seconds, and a last line at the end. Spark merges a task's
accumulator updates when the task finishes, so the count moves task by task
(`forecast.series_per_partition` series at a time). A retried or recomputed task counts again: the
line never shows more than the total.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("replenish.progress")


def count_series(
    batches: Iterator[pd.DataFrame], counter: Any, *, keys: tuple[str, ...] = ("sku", "location")
) -> Iterator[pd.DataFrame]:
    """Pass `batches` (sorted by `keys`) through, adding the number of distinct series to `counter`.

    A series that straddles two batches is counted once.
    """
    last: tuple[Any, ...] | None = None
    for batch in batches:
        if not batch.empty:
            columns = [batch[key].to_numpy() for key in keys]
            changed = np.zeros(len(batch), dtype=bool)
            for values in columns:
                changed[1:] |= values[1:] != values[:-1]
            first = tuple(values[0] for values in columns)
            changed[0] = first != last
            counter.add(int(changed.sum()))
            last = tuple(values[-1] for values in columns)
        yield batch


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


class SeriesProgress:
    """Log `<label>: done/total series (pct), elapsed` while a stage runs, from a Spark accumulator.

    Args:
        spark: the session whose tasks add to `self.counter`.
        total: the number of series the stage works on; None when unknown (no percentage).
        label: what is running (`forecast`).
        interval: seconds between lines, at most one line per interval and only when the count moved.

    Example:
        ```python
        with SeriesProgress(spark, total=2000, label="forecast") as progress:
            tables = forecast_tables(..., progress=progress.counter)
            write(tables)
        ```
    """

    def __init__(self, spark: Any, *, total: int | None, label: str = "forecast", interval: float = 10.0) -> None:
        self.counter = spark.sparkContext.accumulator(0)
        self.total = total
        self.label = label
        self.interval = interval
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"{label}-progress", daemon=True)
        self._started = time.monotonic()

    def line(self) -> str:
        """The current progress line."""
        done = int(self.counter.value)
        elapsed = _duration(time.monotonic() - self._started)
        if not self.total:
            return f"{self.label}: {done:,} series done, {elapsed}"
        done = min(done, self.total)
        return f"{self.label}: {done:,}/{self.total:,} series ({100 * done / self.total:.0f}%), {elapsed}"

    def _emit(self) -> None:
        text = self.line()
        self.lines.append(text)
        log.info(text)

    def _poll(self) -> None:
        shown = 0
        while not self._stop.wait(self.interval):
            if int(self.counter.value) != shown:
                shown = int(self.counter.value)
                self._emit()

    def start(self) -> None:
        """Start the clock and the polling thread."""
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and log the final line."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self._emit()

    def __enter__(self) -> SeriesProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def series_total(profile: Any, freq: str) -> int | None:
    """Series of `freq` in `silver.series_profile` (one row per series), or None without a profile."""
    if profile is None:
        return None
    from pyspark.sql import functions as F

    return int(profile.where(F.col("freq") == F.lit(freq)).count())
