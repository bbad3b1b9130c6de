"""The incremental nightly run's first stages: only new files are ingested, and the commit log names
the series they changed."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from replenish.io.catalog import TableSpec
from replenish.io.incremental import changed_keys, keys_of
from replenish.io.lake import Lake
from replenish_jobs import ingest

pytestmark = pytest.mark.spark

HEADER = "sku,location,date,quantity,price,promo,in_stock,is_return"

# The incremental run reads the commit log the lake engine writes; these tests run the jobs on delta-spark,
# the product's default (tests/conftest.py runs other in-process jobs on the embedded engine).
DELTA_SPARK = ("--set", "lake.engine=delta-spark")


def _sales_file(path: Path, days: range, skus: range) -> list[tuple[str, str]]:
    lines = [HEADER]
    for day in days:
        for sku in skus:
            lines.append(f"SKU-{sku:02d},L1,2024-01-{day:02d},{(sku + day) % 4},5.0,false,true,false")
    path.write_text("\n".join(lines) + "\n")
    return [(f"SKU-{sku:02d}", "L1") for sku in skus]


def _ingest(capsys, spark, *argv: str) -> dict:
    assert ingest.main(list(argv), spark=spark) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_incremental_ingest_reads_only_new_files_and_the_log_names_the_changed_series(
    spark, tmp_path: Path, capsys
) -> None:
    raw = tmp_path / "raw"
    (raw / "sales").mkdir(parents=True)
    _sales_file(raw / "sales" / "part-0001.csv", range(1, 11), range(0, 6))
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    common = ["--lake", lake.root, "--run-date", "2024-01-11", *DELTA_SPARK]
    first = _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    assert (first["new_files"], first["added_to_bronze"]) == ({"sales": 1}, 60)
    before = lake.version("bronze.sales")

    # nothing new: nothing read, nothing committed
    idle = _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    assert (idle["new_files"], idle["rows_read"], idle["entities"]) == ({"sales": 0}, 0, {})
    assert lake.version("bronze.sales") == before

    # the next night: one new day for three of the six series, and a late row of an old day
    changed = _sales_file(raw / "sales" / "part-0002.csv", range(11, 12), range(0, 3))
    with (raw / "sales" / "part-0002.csv").open("a") as handle:
        handle.write("SKU-05,L1,2024-01-03,9,5.0,false,true,false\n")  # a key the table has: skipped
    night = _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    assert (night["new_files"], night["rows_read"], night["added_to_bronze"]) == ({"sales": 1}, 4, 3)
    assert keys_of(changed_keys(lake, "bronze.sales", since_version=before).collect(), ("sku", "location")) == set(
        changed
    )

    # the same bronze as one full ingest of both files
    full = Lake(spark, str(tmp_path / "full"))
    _ingest(capsys, spark, "--all", str(raw), "--lake", full.root, "--run-date", "2024-01-11", *DELTA_SPARK)
    columns = [c for c in full.read("bronze.sales").columns if c != "ingested_at"]
    assert lake.read("bronze.sales").select(columns).exceptAll(full.read("bronze.sales").select(columns)).count() == 0
    assert lake.read("bronze.sales").count() == full.read("bronze.sales").count() == 63


@pytest.mark.parametrize("engine", ["delta-spark", "embedded"])
def test_changed_keys_come_from_the_commits_after_a_version(spark, tmp_path: Path, engine: str) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"), engine=engine)
    sales = TableSpec("test.sales", partition_by=("day",), keys=("sku", "location", "day"))

    def rows(skus: list[int], day: str):
        return spark.createDataFrame(
            [(f"SKU-{s}", "L1", day, 1.0) for s in skus], "sku string, location string, day string, q double"
        )

    lake.write(rows([1, 2, 3], "2024-01-01"), sales)
    lake.insert_new(rows([1, 4], "2024-01-02"), sales)
    lake.insert_new(rows([4, 5], "2024-01-02").withColumn("q", F.lit(2.0)), sales)  # SKU-4 exists: only 5 added
    assert keys_of(changed_keys(lake, sales, since_version=0).collect(), ("sku",)) == {
        ("SKU-1",),
        ("SKU-4",),
        ("SKU-5",),
    }
    assert keys_of(changed_keys(lake, sales, since_version=1).collect(), ("sku",)) == {("SKU-5",)}
    assert changed_keys(lake, sales, since_version=2).count() == 0


def _sparse_sales(path: Path, days: range, skus: range, *, every: int) -> set[tuple[str, str]]:
    """Sales of `skus` on the days of `days` where (day + sku) % every == 0: the other days have no row."""
    lines = [HEADER]
    touched = set()
    for day in days:
        for sku in skus:
            if (day + sku) % every == 0:
                lines.append(f"SKU-{sku:02d},L1,2024-01-{day:02d},{(sku * day) % 5},5.0,false,true,false")
                touched.add((f"SKU-{sku:02d}", "L1"))
    path.write_text("\n".join(lines) + "\n")
    return touched


def _demand(lake: Lake):
    return lake.read("silver.demand").where("freq = 'D'")


def test_incremental_features_rebuild_only_changed_series_and_equal_a_full_build(spark, tmp_path: Path, capsys) -> None:
    from replenish_jobs import features

    raw = tmp_path / "raw"
    (raw / "sales").mkdir(parents=True)
    _sparse_sales(raw / "sales" / "part-0001.csv", range(1, 29), range(0, 6), every=2)
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    common = ["--lake", lake.root, "--run-date", "2024-01-29", *DELTA_SPARK]

    def run_features(*extra: str) -> dict:
        assert features.main(["--freq", "D", *extra, *common], spark=spark) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    run_features()
    # a late file: rows for two series on days they had none, inside the data's range
    late = _sparse_sales(raw / "sales" / "part-0002.csv", range(2, 28), range(1, 3), every=3)
    late_rows = (raw / "sales" / "part-0002.csv").read_text().splitlines()[1:]
    kept = [row for row in late_rows if (int(row[18:20]) + int(row[4:6])) % 2 == 1]  # days not in part-0001
    (raw / "sales" / "part-0002.csv").write_text("\n".join([HEADER, *kept]) + "\n")
    _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    before = {
        (r["sku"], r["location"]): r["n"]
        for r in _demand(lake).groupBy("sku", "location").agg(F.count("*").alias("n")).collect()
    }
    summary = run_features("--incremental")
    assert len(late) == 2 and summary["series"] == 6
    assert summary["incremental"] == "incremental: 2 changed series rebuilt"
    assert lake.history("silver.demand")[0]["operationMetrics"] is not None
    full = Lake(spark, str(tmp_path / "full"))
    _ingest(capsys, spark, "--all", str(raw), "--lake", full.root, "--run-date", "2024-01-29", *DELTA_SPARK)
    full_args = ["--freq", "D", "--lake", full.root, "--run-date", "2024-01-29", *DELTA_SPARK]
    assert features.main(full_args, spark=spark) == 0
    capsys.readouterr()
    assert _demand(lake).count() == _demand(full).count() == sum(before.values())
    assert _demand(lake).exceptAll(_demand(full)).count() == 0 and _demand(full).exceptAll(_demand(lake)).count() == 0

    # nothing new: nothing rebuilt or committed; a new day moves the data's end: everything is rebuilt
    version = lake.version("silver.demand")
    assert run_features("--incremental")["incremental"] == "unchanged: no new bronze.sales commit"
    assert lake.version("silver.demand") == version
    _sparse_sales(raw / "sales" / "part-0003.csv", range(29, 30), range(0, 6), every=1)
    _ingest(capsys, spark, "--all", str(raw), "--incremental", *common)
    assert run_features("--incremental")["incremental"].startswith("full: the complete periods moved")
    info = json.loads(lake.history("silver.demand")[0]["userMetadata"])
    assert json.loads(info["features_inputs"])["range_end"] == "2024-01-29"


# Weekly series for the forecast tests: 36 weeks from a Monday, enough for ARIMA (26 weeks) and a backtest.
WEEKS = 36
FIRST_DAY = dt.date(2024, 1, 1)
FORECAST_SETTINGS = (
    "--set",
    "forecast.horizon=4",
    "--set",
    "forecast.backtest.folds=2",
    "--set",
    "forecast.series_per_partition=2",
    "--set",
    "forecast.lstm.enabled=false",
)
REFITTED = re.compile(r"incremental: (\d+) series refitted \((\d+) with changed inputs, (\d+) warm-started")


def _weekly_sales(path: Path, *, skus: range, parity: int | None, days: range = range(WEEKS * 7)) -> None:
    """Daily rows of `skus` on `days` (offsets from FIRST_DAY); with `parity`, only the days of that parity
    (the rest come late)."""
    lines = [HEADER]
    for offset in days:
        if parity is not None and offset % 2 != parity:
            continue
        day = FIRST_DAY + dt.timedelta(days=offset)
        for sku in skus:
            sells = sku < 4 or offset % (sku - 1) == 0  # SKU-04 and SKU-05 sell on some days only
            quantity = (3 + sku + (offset * (sku + 2)) % 5 + (offset // 7) % 3) if sells else 0
            lines.append(
                f"SKU-{sku:02d},L1,{day.isoformat()},{quantity},5.0,{str(offset % 17 == 0).lower()},true,false"
            )
    path.write_text("\n".join(lines) + "\n")


def _forecast_rows(lake: Lake, name: str, run_id: str):
    """A run's rows but the columns a carried row keeps from its own run, and two that differ between two
    lakes whatever the rows: the settings' hash (it covers lake.root) and the job's MLflow run."""
    from replenish.forecast.incremental import RUN_DEPENDENT

    rows = lake.read(name).where(F.col("run_id") == run_id)
    return rows.drop(*RUN_DEPENDENT, "config_hash", "mlflow_run_id")


def _differences(left, right) -> dict:
    """Rows only one side has (a few), and both counts: empty lists when the two hold the same rows."""
    return {
        "counts": (left.count(), right.count()),
        "left only": [row.asDict() for row in left.exceptAll(right).limit(3).collect()],
        "right only": [row.asDict() for row in right.exceptAll(left).limit(3).collect()],
    }


def _same_rows(left, right) -> bool:
    found = _differences(left, right)
    return found["counts"][0] == found["counts"][1] and not found["left only"] and not found["right only"]


@pytest.fixture(scope="module")
def weekly_lakes(spark, tmp_path_factory):
    """A weekly lake forecast once, then a late file for two series: the incremental run and a full run
    on a copy of the same lake (same history, same inputs)."""
    from replenish_jobs import features, forecast

    root = tmp_path_factory.mktemp("incremental_forecast")
    raw = root / "raw"
    (raw / "sales").mkdir(parents=True)
    _weekly_sales(raw / "sales" / "part-0001.csv", skus=range(0, 2), parity=0)
    with (raw / "sales" / "part-0001.csv").open("a") as handle:
        rest = root / "rest.csv"
        _weekly_sales(rest, skus=range(2, 6), parity=None)
        handle.write("".join(rest.read_text().splitlines(keepends=True)[1:]))
    lake = Lake(spark, str(root / "lakehouse"))
    day = (FIRST_DAY + dt.timedelta(days=WEEKS * 7)).isoformat()
    outputs: dict[str, dict] = {}

    def quiet(module, name: str, *argv: str, lake_root: str = lake.root) -> dict:
        """Run a job in-process; its summary (the last line it prints) is kept under `name`."""
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            args = ["--lake", lake_root, "--run-date", day, *FORECAST_SETTINGS, *argv]
            assert module.main(args, spark=spark) == 0, name
        outputs[name] = json.loads(buffer.getvalue().strip().splitlines()[-1])
        return outputs[name]

    quiet(ingest, "ingest-1", "--all", str(raw), "--incremental")
    quiet(features, "features-1", "--freq", "W")
    quiet(forecast, "forecast-1", "--freq", "W", "--run-id", "run-1", "--incremental")
    _weekly_sales(raw / "sales" / "part-0002.csv", skus=range(0, 2), parity=1)  # the late odd days of SKU-00/01
    quiet(ingest, "ingest-2", "--all", str(raw), "--incremental")
    quiet(features, "features-2", "--freq", "W", "--incremental")
    full = Lake(spark, str(root / "full"))
    shutil.copytree(lake.root, full.root)
    quiet(forecast, "forecast-2", "--freq", "W", "--run-id", "run-2", "--incremental")
    quiet(forecast, "full-2", "--freq", "W", "--run-id", "run-2", lake_root=full.root)
    return lake, full, outputs, quiet


def test_incremental_forecast_refits_changed_series_and_equals_a_full_run(weekly_lakes) -> None:
    lake, full, outputs, _ = weekly_lakes
    assert outputs["forecast-1"]["incremental"] == "full: no earlier forecast run of this frequency is recorded"
    assert outputs["features-2"]["incremental"] == "incremental: 2 changed series rebuilt"
    refitted, changed, warm = map(int, REFITTED.match(outputs["forecast-2"]["incremental"]).groups())
    assert changed == 2 and warm >= 1 and refitted < 6, outputs["forecast-2"]["incremental"]
    registry = lake.read("gold.model_registry").where("run_id = 'run-2'")
    assert {r["model"] for r in registry.collect()} >= {"arima", "seasonal_naive"}, "the lake exercises ARIMA"
    for name in ("gold.forecast", "gold.backtest_forecast", "gold.forecast_backtest", "gold.model_registry"):
        found = _differences(_forecast_rows(lake, name, "run-2"), _forecast_rows(full, name, "run-2"))
        assert found["counts"][0] == found["counts"][1] and not found["left only"] and not found["right only"], (
            name,
            found,
        )
    # the carried series' rows are the first run's (same fit_seconds), the refitted ones are new
    seconds = {
        (r["sku"], r["model"]): r["fit_seconds"]
        for r in lake.read("gold.model_registry").where("run_id = 'run-1'").collect()
    }
    carried = {row["sku"] for row in registry.collect() if seconds[(row["sku"], row["model"])] == row["fit_seconds"]}
    assert len(carried) == 6 - refitted and not carried & {"SKU-00", "SKU-01"}, carried


def test_incremental_forecast_with_nothing_changed_carries_every_row_but_the_warm_starts(weekly_lakes) -> None:
    from replenish.forecast import latest_arima_orders
    from replenish_jobs import forecast

    lake, _, _, quiet = weekly_lakes
    summary = quiet(forecast, "forecast-3", "--freq", "W", "--run-id", "run-3", "--incremental")
    refitted, changed, warm = map(int, REFITTED.match(summary["incremental"]).groups())
    assert changed == 0 and refitted == warm, summary["incremental"]  # only the warm starts a full run redoes
    stored = latest_arima_orders(lake.read("gold.model_registry").where("run_id != 'run-3'"), "W")
    warm_series = stored.select("sku", "location")
    assert warm_series.count() == warm
    for name in ("gold.forecast", "gold.backtest_forecast", "gold.forecast_backtest", "gold.model_registry"):
        before, after = (
            lake.read(name).where(f"run_id = '{run}'").join(warm_series, ["sku", "location"], "left_anti")
            for run in ("run-2", "run-3")
        )
        restamped = ("run_id", "mlflow_run_id", "input_versions")  # this run's: its own MLflow run, inputs read
        columns = [c for c in before.columns if c not in restamped]
        assert _same_rows(before.select(columns), after.select(columns)), name
        assert name != "gold.forecast" or before.count() > 0, "some series are carried"


def test_incremental_forecast_falls_back_to_a_full_run_and_says_why(weekly_lakes) -> None:
    from replenish_jobs import features, forecast

    lake, _, _, quiet = weekly_lakes
    horizon = quiet(forecast, "forecast-4", "--freq", "W", "--run-id", "run-4", "--incremental", "--horizon", "3")
    assert horizon["incremental"] == "full: the settings that shape forecasts changed (horizon 4 -> 3)"
    assert lake.read("gold.forecast").where("run_id = 'run-4'").select("sku").distinct().count() == 6
    settings = quiet(
        forecast,
        "forecast-5",
        "--freq",
        "W",
        "--run-id",
        "run-5",
        "--incremental",
        "--set",
        "forecast.backtest.folds=1",
    )
    assert settings["incremental"].startswith(
        "full: the settings that shape forecasts changed (horizon 3 -> 4; config_hash"
    )
    # a new complete week moves every series' window (at daily grain, every new day does)
    raw = Path(lake.root).parent / "raw"
    _weekly_sales(raw / "sales" / "part-0003.csv", skus=range(0, 6), parity=None, days=range(WEEKS * 7, WEEKS * 7 + 7))
    quiet(ingest, "ingest-3", "--all", str(raw), "--incremental")
    quiet(features, "features-3", "--freq", "W", "--incremental")
    folds = ("--set", "forecast.backtest.folds=1")  # run-5's settings: only the data moved
    moved = quiet(forecast, "forecast-6", "--freq", "W", "--run-id", "run-6", "--incremental", *folds)
    assert moved["incremental"].startswith("full: the data's last period moved from 2024-09-02 to 2024-09-09"), moved
