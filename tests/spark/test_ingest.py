"""Ingest on Spark: planted bad rows are quarantined exactly, good rows all reach bronze, reruns add nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from replenish.ingest.read import prepare_session, read_raw
from replenish.ingest.validate import IngestConfig, validate
from replenish_jobs import ingest

pytestmark = pytest.mark.spark

# The planted file names quantity `qty`, its owner's name, so the job needs `--map qty=quantity`.
SALES_HEADER = "sku,location,date,qty,price,promo,in_stock,is_return"
INGESTED_AT = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def _good_sales_row(i: int) -> str:
    day = dt.date(2024, 1, 1) + dt.timedelta(days=i // 10)
    quantity, is_return = (-1, "true") if i % 25 == 7 else (i % 5, "false")
    return f"SKU-{i % 10:02d},L1,{day},{quantity},{4.5 + i % 3},{str(i % 4 == 0).lower()},true,{is_return}"


# Planted rows: (line, reason). They replace nothing: they are inserted between the good rows.
PLANTED: dict[int, tuple[str, str]] = {
    3: (",L1,2024-03-01,1,1.0,false,true,false", "sku is empty"),
    9: ("SKU-90,L1,2024-13-45,1,1.0,false,true,false", "date is not a date (yyyy-MM-dd): '2024-13-45'"),
    15: ("SKU-91,L1,2024-03-01,abc,1.0,false,true,false", "quantity is not a number: 'abc'"),
    21: ("SKU-92,L1,2024-03-01,-3,1.0,false,true,false", "quantity is negative (-3) and is_return is not true"),
    30: (_good_sales_row(0).replace(",0,", ",9,", 1), "duplicate key (sku, location, date) first seen at row 1"),
    36: ("SKU-93,L1,2024-03-01,1,1.0,maybe,true,false", "promo is not true/false: 'maybe'"),
    44: ("SKU-94,L1,2024-03-01,2,1.5,false", "malformed CSV record: expected 8 fields"),
    52: (",L1,2024-03-02,1,-1,false,true,false", "sku is empty; price is negative: '-1'"),
}


def write_planted_sales(path: Path) -> tuple[set[tuple[str, str, dt.date]], dict[int, str]]:
    """50 good rows with 8 bad ones planted among them (and one blank line, which is not a row).

    Returns the keys of the good rows and {row_number: reason} of the bad ones.
    """
    lines, good_keys, expected = [SALES_HEADER], set(), {}
    good = iter(range(50))
    for row_number in range(1, 59):
        if row_number in PLANTED:
            line, reason = PLANTED[row_number]
            expected[row_number] = reason
        else:
            i = next(good)
            line = _good_sales_row(i)
            good_keys.add((f"SKU-{i % 10:02d}", "L1", dt.date(2024, 1, 1) + dt.timedelta(days=i // 10)))
        lines.append(line)
        if row_number == 20:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return good_keys, expected


def run_job(capsys: pytest.CaptureFixture[str], spark: Any, *argv: str) -> tuple[int, dict[str, Any]]:
    code = ingest.main(list(argv), spark=spark)
    out = capsys.readouterr().out.strip().splitlines()
    return code, (json.loads(out[-1]) if code == 0 else {})


def _raw(spark: Any, rows: list[dict[str, str | None]]) -> Any:
    """A raw frame as read_raw returns it: text columns plus the row number and source file."""
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna(), None)
    frame["_row_number"] = range(1, len(rows) + 1)
    frame["_source_file"] = "file:/in-memory.csv"
    return spark.createDataFrame(frame)


def _reasons(validated: Any) -> dict[int, str]:
    return {row["row_number"]: row["reason"] for row in validated.quarantine.collect()}


def test_planted_bad_rows_are_quarantined_exactly_and_a_rerun_adds_nothing(spark, lake, tmp_path, capsys) -> None:
    source = tmp_path / "sales.csv"
    good_keys, expected = write_planted_sales(source)
    argv = ("sales", str(source), "--map", "qty=quantity", "--lake", lake.root)

    code, summary = run_job(capsys, spark, *argv)

    assert code == 0
    sales = summary["entities"]["sales"]
    assert (sales["rows_read"], sales["good"], sales["quarantined"]) == (58, 50, 8)
    assert (sales["added_to_bronze"], sales["added_to_quarantine"]) == (50, 8)
    assert sales["quarantined_by_reason"]["sku is empty"] == 2
    assert sales["quarantined_by_reason"]["duplicate key"] == 1
    bronze = lake.read("bronze.sales").collect()
    assert {(r["sku"], r["location"], r["date"]) for r in bronze} == good_keys
    returns = [r for r in bronze if r["is_return"]]
    assert len(returns) == 2 and all(r["quantity"] == -1.0 for r in returns)
    assert {r["source_file"] for r in bronze} == {source.resolve().as_uri().replace("file:///", "file:/")}
    quarantine = lake.read("quarantine.sales").collect()
    assert {r["row_number"]: r["reason"] for r in quarantine} == expected
    by_row = {r["row_number"]: r for r in quarantine}
    assert by_row[15]["quantity"] == "abc" and by_row[9]["date"] == "2024-13-45"
    assert by_row[3]["sku"] is None and by_row[3]["ingested_at"] is not None
    versions = lake.versions(["bronze.sales", "quarantine.sales"])

    code, summary = run_job(capsys, spark, *argv)

    assert code == 0
    rerun = summary["entities"]["sales"]
    assert (rerun["rows_read"], rerun["added_to_bronze"], rerun["added_to_quarantine"]) == (58, 0, 0)
    assert rerun["already_in_bronze"] == 50
    assert lake.read("bronze.sales").count() == 50
    assert lake.read("quarantine.sales").count() == 8
    assert lake.versions(["bronze.sales", "quarantine.sales"]) == versions


def test_missing_required_column_fails_the_file_and_writes_nothing(spark, lake, tmp_path, capsys) -> None:
    source = tmp_path / "sales.csv"
    source.write_text("sku,date,qty\nA,2024-01-01,3\n")

    code = ingest.main(["sales", str(source), "--lake", lake.root], spark=spark)

    error = capsys.readouterr().err
    assert code == 2
    assert "'quantity'" in error and str(source) in error
    assert not lake.exists("bronze.sales") and not lake.exists("quarantine.sales")

    assert ingest.main(["sales", str(tmp_path / "nowhere.csv"), "--lake", lake.root], spark=spark) == 2
    assert "nowhere.csv: no such file or folder" in capsys.readouterr().err


def test_part_files_with_different_headers_fail_with_a_clear_error(spark, lake, tmp_path, capsys) -> None:
    folder = tmp_path / "sales"
    folder.mkdir()
    (folder / "part-0.csv").write_text("sku,date,quantity\nA,2024-01-01,1\n")
    (folder / "part-1.csv").write_text("date,sku,quantity\n2024-01-02,B,1\n")

    code = ingest.main(["sales", str(folder), "--lake", lake.root], spark=spark)

    assert code == 2
    assert "part files have different headers" in capsys.readouterr().err
    assert not lake.exists("bronze.sales")


def test_ingest_all_reads_folders_of_part_files_parquet_mapped_columns_and_defaults(
    spark, lake, tmp_path, capsys
) -> None:
    raw = tmp_path / "raw"
    (raw / "sales").mkdir(parents=True)
    (raw / "sales" / "part-00000.csv").write_text("sku,date,quantity\nA,2024-01-01,1\nA,2024-01-02,2\n")
    (raw / "sales" / "part-00001.csv").write_text("sku,date,quantity\nB,2024-01-01,1\nA,2024-01-02,5\n")
    (raw / "sales" / "_SUCCESS").write_text("")
    pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "cost": [2.0, -1.0, 3.5],
            "unit_price": [10, 20, 30],
            "launch_date": [dt.date(2023, 5, 1), None, dt.date(2024, 1, 1)],
        }
    ).to_parquet(raw / "products.parquet")
    (raw / "inventory.csv").write_text("sku,location,on_hand\nA,L1,5\nB,L1,-2\n")
    (raw / "notes.txt").write_text("not an entity")
    argv = ("--all", str(raw), "--set", "ingest.column_mapping.products.cost=unit_cost", "--run-date", "2024-02-01")

    code, summary = run_job(capsys, spark, *argv, "--lake", lake.root)

    assert code == 0
    entities = summary["entities"]
    assert list(entities) == ["sales", "products", "inventory"]
    assert summary["added_to_bronze"] == 3 + 2 + 1
    sales = lake.read("bronze.sales").collect()
    assert {(r["sku"], str(r["date"]), r["quantity"]) for r in sales} == {
        ("A", "2024-01-01", 1.0),
        ("A", "2024-01-02", 2.0),
        ("B", "2024-01-01", 1.0),
    }
    assert {(r["location"], r["price"], r["promo"], r["in_stock"], r["is_return"]) for r in sales} == {
        ("ALL", None, False, True, False)
    }
    (duplicate,) = lake.read("quarantine.sales").collect()
    assert duplicate["row_number"] == 2 and duplicate["source_file"].endswith("part-00001.csv")
    assert duplicate["reason"].startswith("duplicate key (sku, location, date) first seen at row 2 of file:")
    assert duplicate["reason"].endswith("part-00000.csv")
    products = lake.read("quarantine.products").collect()
    assert [(r["sku"], r["row_number"], r["reason"]) for r in products] == [("B", 2, "unit_cost is negative: '-1.0'")]
    bronze_products = {
        r["sku"]: (r["unit_cost"], r["unit_price"], r["launch_date"]) for r in lake.read("bronze.products").collect()
    }
    assert bronze_products == {"A": (2.0, 10.0, dt.date(2023, 5, 1)), "C": (3.5, 30.0, dt.date(2024, 1, 1))}
    inventory = lake.read("bronze.inventory").collect()
    assert [(r["sku"], r["snapshot_date"], r["on_order"]) for r in inventory] == [("A", dt.date(2024, 2, 1), 0.0)]
    assert lake.read("quarantine.inventory").collect()[0]["reason"] == "on_hand is negative: '-2'"


@pytest.fixture()
def small_splits(spark) -> Iterator[None]:
    """Make Spark cut even a small file into several splits, as it does a large one."""
    keys = {"spark.sql.files.maxPartitionBytes": "512", "spark.sql.files.openCostInBytes": "0"}
    before = {key: spark.conf.get(key) for key in keys}
    for key, value in keys.items():
        spark.conf.set(key, value)
    yield
    for key, value in before.items():
        spark.conf.set(key, value)


def test_row_numbers_are_per_file_and_exact_across_splits(spark, tmp_path, small_splits) -> None:
    folder = tmp_path / "products"
    folder.mkdir()
    for part, rows in (("a", 300), ("b", 7)):
        lines = ["sku,name", *[f"{part}{n},{n}" for n in range(1, rows + 1)]]
        (folder / f"part-{part}.csv").write_text("\n".join(lines) + "\n")

    raw = read_raw(spark, str(folder))

    assert raw.rdd.getNumPartitions() > 3
    rows = raw.select("_source_file", "_row_number", "name", "_malformed_record").collect()
    assert len(rows) == 307 and all(r["_malformed_record"] is None for r in rows)
    assert all(r["_row_number"] == int(r["name"]) for r in rows)
    assert {r["_source_file"].rsplit("/", 1)[1] for r in rows} == {"part-a.csv", "part-b.csv"}


def test_date_format_timestamps_and_returns_policy(spark) -> None:
    sales = _raw(
        spark,
        [
            {"sku": "A", "date": "05/01/2024", "quantity": "-2", "is_return": None},
            {"sku": "A", "date": "2024-01-06", "quantity": "1", "is_return": None},
            {"sku": "A", "date": "31/02/2024", "quantity": "1", "is_return": None},
            {"sku": "B", "date": "07/01/2024", "quantity": "-1", "is_return": "no"},
            {"sku": "C", "date": "07/01/2024", "quantity": " 1e2 ", "is_return": "0"},
        ],
    )
    cfg = IngestConfig(date_format="dd/MM/yyyy", allow_returns=True)
    prepare_session(spark)

    validated = validate(sales, "sales", cfg, ingested_at=INGESTED_AT)

    assert _reasons(validated) == {
        2: "date is not a date (dd/MM/yyyy): '2024-01-06'",
        3: "date is not a date (dd/MM/yyyy): '31/02/2024'",
        4: "quantity is negative (-1) and is_return is not true",
    }
    good = {r["sku"]: r for r in validated.good.collect()}
    assert good["A"]["date"] == dt.date(2024, 1, 5) and good["A"]["is_return"] is True
    assert good["C"]["quantity"] == 100.0 and good["C"]["is_return"] is False
    (stamp,) = validated.good.selectExpr("cast(ingested_at as string)").distinct().collect()
    assert stamp[0] == "2024-06-01 12:00:00"


def test_iso_dates_are_strict_and_timestamps_accept_iso_variants(spark) -> None:
    interactions = _raw(
        spark,
        [
            {"user_id": "u", "sku": "A", "event": "purchase", "timestamp": "2024-01-05T10:00:00+02:00"},
            {"user_id": "u", "sku": "A", "event": "VIEW", "timestamp": "2024-01-05 10:00"},
            {"user_id": "u", "sku": "A", "event": "view", "timestamp": "2024"},
            {"user_id": " ", "sku": "A", "event": "add_to_cart", "timestamp": "yesterday"},
        ],
    )

    validated = validate(interactions, "interactions", IngestConfig())

    assert _reasons(validated) == {
        3: "timestamp is not a timestamp (yyyy-MM-dd HH:mm:ss): '2024'",
        4: "user_id is empty; timestamp is not a timestamp (yyyy-MM-dd HH:mm:ss): 'yesterday'",
    }
    good = sorted(validated.good.selectExpr("event", "cast(timestamp as string)").collect())
    assert [tuple(r) for r in good] == [("purchase", "2024-01-05 08:00:00"), ("view", "2024-01-05 10:00:00")]

    products = _raw(spark, [{"sku": "A", "launch_date": "2024-1-5"}, {"sku": "B", "launch_date": "2024-01"}])
    assert _reasons(validate(products, "products", IngestConfig())) == {
        2: "launch_date is not a date (yyyy-MM-dd): '2024-01'"
    }


def test_every_row_is_either_good_or_quarantined(spark) -> None:
    suppliers = _raw(
        spark,
        [
            {"sku": "A", "pack_size": "12", "lead_time_mean_days": "7", "moq": ""},
            {"sku": "A", "pack_size": "6", "lead_time_mean_days": "5", "moq": "1"},
            {"sku": "B", "pack_size": "0", "lead_time_mean_days": "Infinity", "moq": "1"},
            {"sku": "C", "pack_size": "1", "lead_time_mean_days": "NaN", "moq": "x"},
        ],
    )

    validated = validate(suppliers, "suppliers", IngestConfig())

    assert _reasons(validated) == {
        2: "duplicate key (sku, location) first seen at row 1",
        3: "lead_time_mean_days is not a number: 'Infinity'; pack_size is not positive: '0'",
        4: "lead_time_mean_days is not a number: 'NaN'; moq is not a number: 'x'",
    }
    (good,) = validated.good.collect()
    assert (good["sku"], good["location"], good["pack_size"], good["moq"]) == ("A", "ALL", 12.0, None)
    counts = validated.counts()
    assert (counts.rows_read, counts.good, counts.quarantined) == (4, 1, 3)
    assert counts.by_reason == {
        "duplicate key": 1,
        "lead_time_mean_days is not a number": 2,
        "pack_size is not positive": 1,
        "moq is not a number": 1,
    }


def test_the_job_sets_its_parser_settings_for_its_own_duration(spark, lake, tmp_path) -> None:
    # run-all runs every job in one session: ingest's settings must not leak into the jobs after it.
    from replenish.ingest.read import SESSION_SETTINGS
    from replenish.shared import session_conf

    source = tmp_path / "sales.csv"
    source.write_text("sku,date,quantity\nA,2024-01-01,3\nB,2024-1-5,1\n")
    before = {key: "true" if "Pruning" in key else "EXCEPTION" for key in SESSION_SETTINGS}
    with session_conf(spark, before):
        argv = ["sales", str(source), "--lake", lake.root, "--set", "ingest.date_format=yyyy-MM-dd"]
        assert ingest.main(argv, spark=spark) == 0
        assert {key: spark.conf.get(key) for key in SESSION_SETTINGS} == before
    # Inside the job the settings held: with a date pattern, a date only the pre-3.0 parser reads is
    # quarantined instead of failing the job.
    reasons = [r["reason"] for r in lake.read("quarantine.sales").collect()]
    assert len(reasons) == 1 and reasons[0].startswith("date is not a date") and "2024-1-5" in reasons[0]
