"""Pure pieces of the lake layer: catalog paths, partition folders, footer statistics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replenish.errors import ConfigError, LakeError
from replenish.io._embedded import footer_statistics, partition_values_from_path
from replenish.io.catalog import TABLES, table
from replenish.io.lake import table_uri


def test_catalog_paths_follow_layer_and_name(tmp_path: Path) -> None:
    assert table_uri(str(tmp_path), table("bronze.sales")) == f"{tmp_path}/bronze/sales"
    assert table_uri("s3a://bucket/lake/", table("gold.forecast")) == "s3a://bucket/lake/gold/forecast"
    assert all(spec.layer in {"bronze", "quarantine", "silver", "gold"} for spec in TABLES.values())
    with pytest.raises(ConfigError, match="unknown table"):
        table("gold.nope")


def test_partition_values_are_unescaped_and_null_aware() -> None:
    path = "run_date=2024-01-01/location=a%3Ab c/region=__HIVE_DEFAULT_PARTITION__/part-0.parquet"
    assert partition_values_from_path(path, ["run_date", "location", "region"]) == {
        "run_date": "2024-01-01",
        "location": "a:b c",
        "region": None,
    }
    with pytest.raises(LakeError, match="lacks partition"):
        partition_values_from_path("part-0.parquet", ["run_date"])


def test_footer_statistics_combine_row_groups(tmp_path: Path) -> None:
    data = pa.table(
        {
            "quantity": [3.0, None, 7.5, 1.0],
            "sku": ["b", "a", None, "c"],
            "day": [dt.date(2024, 1, 2), dt.date(2024, 1, 1), dt.date(2024, 1, 9), None],
            "long_text": ["x" * 40] * 4,
            "flag": [True, False, True, True],
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(data, path, row_group_size=2)
    rows, stats_json = footer_statistics(str(path))
    stats = json.loads(stats_json)
    assert rows == 4 and stats["numRecords"] == 4
    assert stats["minValues"] == {"quantity": 1.0, "sku": "a", "day": "2024-01-01"}
    assert stats["maxValues"] == {"quantity": 7.5, "sku": "c", "day": "2024-01-09"}
    assert stats["nullCount"] == {"quantity": 1, "sku": 1, "day": 1, "long_text": 0, "flag": 0}
