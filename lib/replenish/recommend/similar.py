"""Similar SKUs: the top k by cosine similarity of their ALS item factors, without an all-pairs join.

SKUs are grouped into buckets and every bucket is scored on its own, in row blocks of
`BLOCK_ROWS` (a block × bucket matrix product with numpy, `argpartition` for the top k), so memory
is bounded by the bucket, never by the catalogue:

- up to `exact_max_skus` SKUs, one bucket holds them all: the result is exact (n² / 2 products, in
  blocks; 50k SKUs of rank 16 take seconds);
- above it, random-hyperplane LSH (SimHash, the LSH family of cosine similarity): each of
  `tables` tables draws `bits = ceil(log2(n / bucket_size))` hyperplanes and a SKU's bucket is the
  sign pattern of its (mean-centred) factors on them, so a bucket holds about `bucket_size` SKUs and
  the work grows as n × bucket_size × tables, linearly in n. A true neighbour is missed only when it
  falls on the other side of some hyperplane in every table; more tables, fewer misses. A SKU whose
  buckets hold fewer than k others gets fewer than k rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import DataFrame

BLOCK_ROWS = 2048

BUCKETED_SCHEMA = StructType(
    [
        StructField("lsh_table", IntegerType(), False),
        StructField("bucket", IntegerType(), False),
        StructField("sku", StringType(), False),
        StructField("factors", ArrayType(FloatType()), False),
    ]
)
PAIR_SCHEMA = StructType(
    [
        StructField("sku", StringType(), False),
        StructField("similar_sku", StringType(), False),
        StructField("similarity", DoubleType(), False),
    ]
)


def lsh_bits(sku_count: int, *, bucket_size: int) -> int:
    """Hyperplanes per table so that buckets hold about `bucket_size` SKUs (at most 30)."""
    if sku_count <= bucket_size:
        return 0
    return min(30, math.ceil(math.log2(sku_count / bucket_size)))


def top_k_cosine(skus: np.ndarray, factors: np.ndarray, *, k: int) -> pd.DataFrame:
    """Exact top k most cosine-similar other rows of `factors` for every row, in row blocks.

    Args:
        skus: ids, one per row of `factors`.
        factors: (n, rank) item factors.
        k: neighbours per row (fewer when n - 1 < k).

    Returns:
        sku, similar_sku, similarity; each row's neighbours in descending similarity.
    """
    n = len(skus)
    keep = min(k, n - 1)
    if keep <= 0:
        return pd.DataFrame({"sku": [], "similar_sku": [], "similarity": []})
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = (factors / np.maximum(norms, 1e-12)).astype(np.float32)
    sku_out, similar_out, score_out = [], [], []
    for start in range(0, n, BLOCK_ROWS):
        block = unit[start : start + BLOCK_ROWS]
        scores = block @ unit.T
        rows = np.arange(len(block))
        scores[rows, start + rows] = -np.inf  # a SKU is not its own neighbour
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        sku_out.append(np.repeat(skus[start : start + len(block)], keep))
        similar_out.append(skus[top.ravel()])
        score_out.append(np.take_along_axis(top_scores, order, axis=1).ravel().astype(np.float64))
    return pd.DataFrame(
        {
            "sku": np.concatenate(sku_out),
            "similar_sku": np.concatenate(similar_out),
            "similarity": np.concatenate(score_out),
        }
    )


def _hyperplanes(rank: int, *, bits: int, tables: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((tables, bits, rank))


def _bucketer(planes: np.ndarray, center: np.ndarray) -> object:
    weights = (1 << np.arange(planes.shape[1], dtype=np.int64)) if planes.shape[1] else np.zeros(0, dtype=np.int64)

    def assign(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if frame.empty:
                continue
            factors = np.vstack(frame["factors"].to_numpy()).astype(np.float64)
            for table, table_planes in enumerate(planes):
                signs = ((factors - center) @ table_planes.T) > 0
                yield pd.DataFrame(
                    {
                        "lsh_table": table,
                        "bucket": (signs.astype(np.int64) @ weights).astype(np.int32),
                        "sku": frame["sku"].to_numpy(),
                        "factors": frame["factors"],
                    }
                )

    return assign


def similar_items(
    item_factors: DataFrame,
    *,
    k: int,
    exact_max_skus: int,
    bucket_size: int,
    tables: int,
    seed: int = 17,
) -> DataFrame:
    """Top `k` similar SKUs per SKU by cosine of `factors`.

    Args:
        item_factors: sku, factors (array of float), one row per SKU.
        k: similar SKUs per SKU.
        exact_max_skus: up to this many SKUs, exact; above, LSH buckets (module docstring).
        bucket_size, tables: LSH bucket target and table count.
        seed: hyperplane seed (same factors and seed, same buckets).

    Returns:
        sku, similar_sku, rank (1 = most similar), similarity.
    """
    factors = item_factors.select("sku", F.col("factors").cast("array<float>").alias("factors"))
    stats = factors.agg(F.count(F.lit(1)).alias("n"), F.max(F.size("factors")).alias("rank")).first()
    sku_count = int(stats["n"]) if stats is not None else 0
    if stats is None or sku_count < 2:
        return factors.sparkSession.createDataFrame([], PAIR_SCHEMA).withColumn("rank", F.lit(1))
    rank = int(stats["rank"])
    if sku_count <= exact_max_skus:
        bits, table_count, center = 0, 1, np.zeros(rank)
    else:
        bits, table_count = lsh_bits(sku_count, bucket_size=bucket_size), tables
        mean = factors.select(F.posexplode("factors").alias("i", "v")).groupBy("i").agg(F.avg("v").alias("v"))
        center = np.zeros(rank)
        for row in mean.collect():  # `rank` numbers
            center[int(row["i"])] = float(row["v"])
    planes = _hyperplanes(rank, bits=bits, tables=table_count, seed=seed)
    bucketed = factors.mapInPandas(_bucketer(planes, center), BUCKETED_SCHEMA)  # type: ignore[arg-type]

    def score_bucket(frame: pd.DataFrame) -> pd.DataFrame:
        matrix = np.vstack(frame["factors"].to_numpy()).astype(np.float32)
        return top_k_cosine(frame["sku"].to_numpy(dtype=object), matrix, k=k)

    pairs = bucketed.groupBy("lsh_table", "bucket").applyInPandas(score_bucket, PAIR_SCHEMA)
    if table_count > 1:
        pairs = pairs.groupBy("sku", "similar_sku").agg(F.max("similarity").alias("similarity"))
    order = Window.partitionBy("sku").orderBy(F.desc("similarity"), "similar_sku")
    ranked = pairs.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)
    return ranked.select("sku", "similar_sku", "rank", "similarity")
