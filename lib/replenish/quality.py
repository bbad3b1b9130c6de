"""The data-quality gate: checks a job's inputs before it forecasts or plans, and records every check.

Four checks, each with a threshold from the `quality:` settings:

* `row_count`: the rows of the input's latest `row_window_days` days (all its rows when it has no date
  column) against what the last run's gate recorded for the same input; fewer than `min_row_ratio` of
  them is a collapse (a feed that delivered half the stores, a truncated file).
* `null_share` and `negative_share`, per checked column over the same rows: the share of nulls or of
  values below zero above `max_null_share` / `max_negative_share`.
* `missing_day`: days within the last `missing_day_lookback_days` (from the input's first day in that
  span to its latest) with no row at all, more than `max_missing_days` (a day the feed never sent).
  An extract at a coarser grain (every date a Monday, the 1st of a month, or of a quarter) is checked
  for missing weeks, months or quarters instead: its days between two rows are not missing.

A column the input contract lets a file leave out (sales' `price`) that holds no value in any row
is not supplied, not broken: its null share is recorded as passed, with that reason.

A check that is off its threshold either fails the run (`DataQualityError`, naming the table, the
column and the values) or logs a warning, per `on_failure` and the per-check `actions`; every check,
passed or not, becomes one row of `gold.data_quality` before the gate decides, so a failed run leaves
the evidence behind.

Example:
    ```python
    settings = config.section(ctx.settings, "quality", QualityConfig)
    enforce_gate(ctx.lake, [(SALES_CHECK, ctx.lake.read("bronze.sales"))], settings,
                 stage="forecast", run_id=ctx.run_id, run_date=ctx.run_date)
    ```
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from replenish.errors import ConfigError, ValidationError
from replenish.io.catalog import table, with_required

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from replenish.io.lake import Lake

log = logging.getLogger(__name__)

Action = Literal["fail", "warn", "off"]
Status = Literal["pass", "warn", "fail"]
CHECKS: tuple[str, ...] = ("row_count", "null_share", "negative_share", "missing_day")
QUALITY_TABLE = "gold.data_quality"
QUALITY_COLUMNS: tuple[str, ...] = table(QUALITY_TABLE).column_names
"""The columns of `gold.data_quality`, in order: the catalog's (docs/tables.md)."""
# Every check fills these; column_name, value and baseline may be null.
_NOT_NULL = frozenset(QUALITY_COLUMNS) - {"column_name", "value", "baseline"}


class DataQualityError(ValidationError):
    """The gate stopped the run: at least one check set to `fail` is off its threshold."""


@dataclass(frozen=True)
class QualityConfig:
    """The `quality:` settings of the gate.

    Attributes:
        on_failure: what a check off its threshold does: `fail` the run, `warn` and go on, or `off`
            (the check is not run).
        actions: per check, an action that replaces `on_failure`, e.g. `{missing_day: warn}`.
        min_row_ratio: `row_count` fails below this share of the last run's rows.
        row_window_days: the latest days of a dated input that `row_count`, `null_share` and
            `negative_share` look at.
        max_null_share: `null_share` threshold, per checked column.
        max_negative_share: `negative_share` threshold, per checked column.
        max_missing_days: days without any row that `missing_day` tolerates.
        missing_day_lookback_days: how far back from the latest day `missing_day` looks.
    """

    on_failure: Action = "fail"
    actions: dict[str, Action] = field(default_factory=dict)
    min_row_ratio: float = 0.5
    row_window_days: int = 28
    max_null_share: float = 0.05
    max_negative_share: float = 0.05
    max_missing_days: int = 0
    missing_day_lookback_days: int = 365

    def __post_init__(self) -> None:
        for name, action in {"on_failure": self.on_failure, **self.actions}.items():
            if action not in ("fail", "warn", "off"):
                raise ConfigError(f"quality.{name}: expected fail, warn or off, got {action!r}")
        unknown = sorted(set(self.actions) - set(CHECKS))
        if unknown:
            raise ConfigError(f"quality.actions: unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
        for name in ("min_row_ratio", "max_null_share", "max_negative_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"quality.{name} must be within [0, 1], got {getattr(self, name)}")
        if self.row_window_days < 1 or self.missing_day_lookback_days < 1 or self.max_missing_days < 0:
            raise ConfigError("quality: row_window_days and missing_day_lookback_days >= 1, max_missing_days >= 0")

    def action(self, check: str) -> Action:
        """The action of `check`: its own from `actions`, else `on_failure`."""
        return self.actions.get(check, self.on_failure)


@dataclass(frozen=True)
class InputCheck:
    """An input the gate checks.

    Attributes:
        table: the input's table name (what the rows of `gold.data_quality` say was checked).
        columns: columns whose null and negative shares are checked.
        date_column: the column of the day a row belongs to; None: the input has no date (no window,
            no `missing_day`).
        missing_days: run `missing_day` (an input with a row for every day, like sales).
        optional_columns: those of `columns` that a file may leave out (module docstring).
    """

    table: str
    columns: tuple[str, ...] = ()
    date_column: str | None = None
    missing_days: bool = False
    optional_columns: tuple[str, ...] = ()


SALES_CHECK = InputCheck(
    "bronze.sales", columns=("quantity", "price"), date_column="date", missing_days=True, optional_columns=("price",)
)
"""What the forecast's gate checks: the daily sales every series is built from."""
FORECAST_CHECK = InputCheck("gold.forecast", columns=("yhat",))
"""What the plan's gate checks in the forecast run it plans from."""
INVENTORY_CHECK = InputCheck("bronze.inventory", columns=("on_hand",))
"""What the plan's gate checks in the stock positions."""


@dataclass(frozen=True)
class InputProfile:
    """What the gate measured in one input (one Spark job; only these numbers reach the driver).

    Attributes:
        rows: rows in the window (all rows for an undated input).
        nulls: per checked column, null values among those rows.
        negatives: per checked column, values below zero among those rows.
        latest_day: the latest day of a dated input (None otherwise, or when it is empty).
        missing: periods without a row in the missing-day span (their first days), oldest first.
        grain: the period of those: day, week, month or quarter (what the dates show).
        unsupplied: the optional columns without a value in any row of the input.
    """

    rows: int
    nulls: dict[str, int]
    negatives: dict[str, int]
    latest_day: dt.date | None = None
    missing: tuple[dt.date, ...] = ()
    grain: str = "day"
    unsupplied: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """One check of one input, as recorded in `gold.data_quality`."""

    table_name: str
    check: str
    column_name: str | None
    value: float | None
    threshold: float
    baseline: float | None
    status: Status
    action: Action
    message: str


def profile_input(df: DataFrame, spec: InputCheck, settings: QualityConfig) -> InputProfile:
    """Measure `df` for the gate: row count, nulls and negatives per column, days without rows."""
    from pyspark.sql import functions as F

    needed = [*spec.columns, *([spec.date_column] if spec.date_column else [])]
    missing_columns = [column for column in needed if column not in df.columns]
    if missing_columns:
        raise ValidationError(f"{spec.table}: the quality gate needs column(s) {missing_columns}, not in the data")
    latest_day: dt.date | None = None
    rows = df
    unsupplied: tuple[str, ...] = ()
    if spec.date_column is not None or spec.optional_columns:
        # the latest day and whether an optional column holds any value: one pass over the whole input
        supplied = [F.count(column).alias(f"supplied_{i}") for i, column in enumerate(spec.optional_columns)]
        whole = df.agg(F.max(spec.date_column) if spec.date_column else F.lit(None), *supplied).first()
        assert whole is not None
        unsupplied = tuple(column for i, column in enumerate(spec.optional_columns) if not whole[f"supplied_{i}"])
        latest_day = whole[0]
    if spec.date_column is not None:
        if latest_day is None:
            return InputProfile(rows=0, nulls=dict.fromkeys(spec.columns, 0), negatives=dict.fromkeys(spec.columns, 0))
        window_start = latest_day - dt.timedelta(days=settings.row_window_days - 1)
        rows = df.where(F.col(spec.date_column) >= F.lit(window_start))
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for index, column in enumerate(spec.columns):
        aggregates.append(F.count_if(F.col(column).isNull()).alias(f"null_{index}"))
        aggregates.append(F.count_if(F.col(column) < 0).alias(f"negative_{index}"))
    measured = rows.agg(*aggregates).first()
    assert measured is not None
    missing: tuple[dt.date, ...] = ()
    grain = "day"
    if spec.missing_days and spec.date_column is not None and latest_day is not None:
        span_start = latest_day - dt.timedelta(days=settings.missing_day_lookback_days - 1)
        present = {
            row[0]
            for row in df.where(F.col(spec.date_column) >= F.lit(span_start))
            .select(spec.date_column)
            .distinct()
            .collect()
        }
        grain, missing = missing_periods(present)
    return InputProfile(
        rows=int(measured["rows"]),
        nulls={column: int(measured[f"null_{i}"] or 0) for i, column in enumerate(spec.columns)},
        negatives={column: int(measured[f"negative_{i}"] or 0) for i, column in enumerate(spec.columns)},
        latest_day=latest_day,
        missing=missing,
        grain=grain,
        unsupplied=unsupplied,
    )


def missing_periods(present: set[dt.date]) -> tuple[str, tuple[dt.date, ...]]:
    """The grain the dates show (day, week, month or quarter) and its periods between the first and the
    last date without a date: the grain `replenish features` detects (`calendar.grain_of_dates`),
    stepped by its calendar (`calendar.period_end`)."""
    from replenish.features.calendar import GRAIN_NAMES, grain_of_dates, period_end

    first, last = min(present), max(present)
    grain = grain_of_dates(
        first,
        last,
        off_quarter=sum(1 for d in present if d.day != 1 or d.month % 3 != 1),
        off_month=sum(1 for d in present if d.day != 1),
        off_week=sum(1 for d in present if d.weekday() != 0),
    )
    missing, day = [], first
    while day <= last:
        if day not in present:
            missing.append(day)
        day = period_end(day, grain) + dt.timedelta(days=1)
    return GRAIN_NAMES[grain], tuple(missing)


def evaluate(
    spec: InputCheck, profile: InputProfile, settings: QualityConfig, *, last_rows: int | None
) -> list[CheckResult]:
    """Judge one input's profile against the thresholds (pure: no Spark).

    Args:
        spec: the input.
        profile: its measurements.
        settings: thresholds and actions.
        last_rows: the rows the last run's gate counted for this input, None when there was none.
    """
    results: list[CheckResult] = []

    def judge(
        check: str,
        column: str | None,
        value: float | None,
        threshold: float,
        bad: bool,
        baseline: float | None,
        what: str,
    ) -> None:
        action = settings.action(check)
        if action == "off":
            return
        status: Status = action if bad else "pass"
        results.append(CheckResult(spec.table, check, column, value, threshold, baseline, status, action, what))

    where = f"the latest {settings.row_window_days} days" if spec.date_column else "all rows"
    if last_rows is None:
        judge("row_count", None, float(profile.rows), settings.min_row_ratio, False, None, "no earlier run to compare")
    else:
        ratio = profile.rows / last_rows if last_rows else 1.0
        judge(
            "row_count",
            None,
            float(profile.rows),
            settings.min_row_ratio,
            ratio < settings.min_row_ratio,
            float(last_rows),
            f"{spec.table}: {profile.rows} rows in {where}, {ratio:.0%} of the last run's {last_rows} "
            f"(collapse below {settings.min_row_ratio:.0%})",
        )
    for column in spec.columns:
        if column in profile.unsupplied:
            judge(
                "null_share",
                column,
                None,
                settings.max_null_share,
                False,
                None,
                f"{spec.table}.{column}: no value in any row (an optional column the input does not supply): "
                "not checked",
            )
            judge("negative_share", column, None, settings.max_negative_share, False, None, "no value: not checked")
            continue
        for check, counts, threshold in (
            ("null_share", profile.nulls, settings.max_null_share),
            ("negative_share", profile.negatives, settings.max_negative_share),
        ):
            share = counts[column] / profile.rows if profile.rows else 0.0
            kind = "null" if check == "null_share" else "negative"
            judge(
                check,
                column,
                share,
                threshold,
                share > threshold,
                None,
                f"{spec.table}.{column}: {counts[column]} of {profile.rows} rows in {where} {kind} "
                f"({share:.2%}, threshold {threshold:.2%})",
            )
    if spec.missing_days:
        shown = ", ".join(day.isoformat() for day in profile.missing[:5])
        more = f" and {len(profile.missing) - 5} more" if len(profile.missing) > 5 else ""
        judge(
            "missing_day",
            spec.date_column,
            float(len(profile.missing)),
            float(settings.max_missing_days),
            len(profile.missing) > settings.max_missing_days,
            None,
            f"{spec.table}: {len(profile.missing)} {profile.grain}(s) without any row in the last "
            f"{settings.missing_day_lookback_days} days up to {profile.latest_day}"
            + (f": {shown}{more}" if profile.missing else "")
            + f" (tolerated: {settings.max_missing_days})",
        )
    return results


def last_row_counts(lake: Lake, *, stage: str, run_id: str) -> dict[str, int]:
    """Per input table, the rows the latest earlier run's gate of `stage` counted (from gold.data_quality)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not lake.exists(QUALITY_TABLE):
        return {}
    newest_first = Window.partitionBy("table_name").orderBy(F.col("checked_at").desc(), F.col("run_id").desc())
    rows = (
        lake.read(QUALITY_TABLE)
        .where((F.col("stage") == stage) & (F.col("check") == "row_count") & (F.col("run_id") != run_id))
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select("table_name", "value")
        .collect()
    )
    return {row["table_name"]: int(row["value"]) for row in rows if row["value"] is not None}


def enforce_gate(
    lake: Lake,
    inputs: Sequence[tuple[InputCheck, DataFrame]],
    settings: QualityConfig,
    *,
    stage: str,
    run_id: str,
    run_date: dt.date,
) -> list[CheckResult]:
    """Check the inputs of a job, record every check in gold.data_quality, then fail or warn.

    Args:
        lake: where the last run's counts are read and this run's checks are written.
        inputs: each input with its rows (already restricted to what the job uses, e.g. one run).
        settings: the `quality:` settings.
        stage: the job the gate guards (`forecast`, `inventory`), recorded on each row.
        run_id: this run; a re-submitted run records its checks once.
        run_date: this run's business date.

    Raises:
        DataQualityError: a check whose action is `fail` is off its threshold; the message lists them.
    """
    if all(settings.action(check) == "off" for check in CHECKS):
        return []
    last = last_row_counts(lake, stage=stage, run_id=run_id)
    results: list[CheckResult] = []
    for spec, df in inputs:
        results += evaluate(spec, profile_input(df, spec, settings), settings, last_rows=last.get(spec.table))
    if results:
        _record(lake, results, stage=stage, run_id=run_id, run_date=run_date)
    for result in results:
        if result.status == "warn":
            log.warning("data quality (%s): %s", stage, result.message)
    failed = [result for result in results if result.status == "fail"]
    if failed:
        lines = "\n".join(f"  - {result.check}: {result.message}" for result in failed)
        raise DataQualityError(
            f"data-quality gate before {stage} failed {len(failed)} check(s) (all checks: {QUALITY_TABLE}, "
            f"run_id {run_id}):\n{lines}\nFix the input, or set quality.actions.<check>: warn to go on."
        )
    return results


def _record(lake: Lake, results: Sequence[CheckResult], *, stage: str, run_id: str, run_date: dt.date) -> None:

    from replenish.io.once import append_once

    schema = with_required(table(QUALITY_TABLE).schema, _NOT_NULL)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows: list[tuple[Any, ...]] = [
        (
            run_id,
            run_date,
            stage,
            r.table_name,
            r.check,
            r.column_name,
            r.value,
            r.threshold,
            r.baseline,
            r.status,
            r.action,
            r.message,
            now,
        )
        for r in results
    ]
    frame = lake.spark.createDataFrame(rows, schema)
    append_once(lake, frame, QUALITY_TABLE, match={"run_id": run_id, "stage": stage})


def quality_settings(settings: Mapping[str, Any]) -> QualityConfig:
    """The `quality:` section of a job's settings."""
    from replenish import config

    return config.section(settings, "quality", QualityConfig)
