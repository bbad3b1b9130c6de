"""Recommender benchmark: Spark ALS against the `implicit` library, and similar items at scale.

Run: `.venv/bin/python -m benchmarks.recommend_bench [--sizes 1000000 10000000] [--sku-sizes 100000 1000000]`.
Prints Markdown tables (and JSON with `--json PATH`); asserts nothing.

(1) ALS. The generator's interactions (`generate_dataset`, users scaled so the log holds about N
    events) are weighted into confidences once (`recommend.confidence`), split in time
    (`time_split`), and both libraries fit the same training pairs with the same rank, alpha,
    iterations and regularisation: Spark MLlib `ALS(implicitPrefs=True)` on local[cores] and
    `implicit.cpu.als.AlternatingLeastSquares` with as many threads. Fit wall time only (data
    preparation excluded on both sides); then precision@10 and NDCG@10 of both models' top 10 unseen
    SKUs, scored by the same `RankingEvaluator` against the same held-out labels. Note: Spark scales
    regParam by each user's and item's rating count (ALS-WR), implicit does not, so the same number
    regularises differently; each side gets its own default-ish value.
(2) Similar items: `recommend.similar.similar_items` on random rank-16 factors with SKU counts from
    100k up (LSH buckets above `exact_max_skus`): wall time, peak RSS of the JVM and Python workers,
    and recall@10 against exact neighbours on a sample of SKUs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.forecast_bench import Meter

RANK, ALPHA, ITERATIONS, K = 16, 10.0, 15, 10
SPARK_REG, IMPLICIT_REG = 0.1, 0.01


def _events(spark: Any, target: int, folder: Path) -> tuple[Any, int]:
    """Generated interactions with about `target` events, written once to Parquet and read back."""
    from replenish.data.generate import GeneratorConfig, generate_dataset

    per_user = 40
    events_per_view = 1.35  # views plus the carts and purchases they lead to (measured at 100k)
    users = max(100, int(target / (per_user * events_per_view)))
    skus = max(1000, min(100_000, users // 5))
    cfg = GeneratorConfig(skus=skus, locations=5, days=365, users=users, interactions_per_user=per_user)
    path = folder / f"interactions-{target}"
    generate_dataset(spark, cfg)["interactions"].write.mode("overwrite").parquet(str(path))
    frame = spark.read.parquet(str(path))
    return frame, frame.count()


def bench_als(spark: Any, target: int, folder: Path, cores: int) -> dict[str, Any]:
    import implicit
    import pandas as pd
    import scipy.sparse as sp
    from pyspark.sql import functions as F

    from replenish.recommend.confidence import confidence, event_weights, time_split
    from replenish.recommend.ids import extend_id_map
    from replenish.recommend.model import (
        ITEM,
        USER,
        AlsSettings,
        EvaluationData,
        ImplicitAls,
        ranking_metrics,
        top_k_unseen,
    )

    events, n_events = _events(spark, target, folder)
    weighted = event_weights(events, weights={"view": 1.0, "add_to_cart": 3.0, "purchase": 10.0}, half_life_days=90.0)
    users = extend_id_map(weighted, None, id_column="user_id", index_column=USER)
    skus = extend_id_map(weighted, None, id_column="sku", index_column=ITEM)
    indexed = weighted.join(F.broadcast(skus), "sku").join(users, "user_id")
    train_events, test_events = time_split(indexed, holdout_share=0.2)
    train = confidence(train_events, keys=(USER, ITEM))
    train_path, test_path = folder / f"train-{target}", folder / f"test-{target}"
    train.select(USER, ITEM, "rating").write.mode("overwrite").parquet(str(train_path))
    test_events.select(USER, ITEM).write.mode("overwrite").parquet(str(test_path))
    train = spark.read.parquet(str(train_path)).cache()
    pairs = train.count()
    data = EvaluationData.build(train, spark.read.parquet(str(test_path)))
    data.labels.cache().count()

    started = time.perf_counter()
    model = ImplicitAls(AlsSettings(RANK, SPARK_REG, ALPHA), max_iter=ITERATIONS, seed=1).fit(train)
    model.model.itemFactors.count()
    model.model.userFactors.count()
    spark_seconds = time.perf_counter() - started
    spark_metrics = ranking_metrics(
        top_k_unseen(model.recommend(data.labels, count=K + data.max_seen), data.train, k=K), data.labels, k=K
    )

    local = train.toPandas()
    n_users = int(local[USER].max()) + 1
    n_items = int(local[ITEM].max()) + 1
    matrix = sp.csr_matrix(
        (local["rating"].to_numpy(np.float32), (local[USER].to_numpy(), local[ITEM].to_numpy())),
        shape=(n_users, n_items),
    )
    reference = implicit.cpu.als.AlternatingLeastSquares(
        factors=RANK, regularization=IMPLICIT_REG, alpha=ALPHA, iterations=ITERATIONS, num_threads=cores, random_state=1
    )
    started = time.perf_counter()
    reference.fit(matrix, show_progress=False)
    implicit_seconds = time.perf_counter() - started
    test_users = np.asarray(data.labels.select(USER).toPandas().iloc[:, 0], dtype=np.int64)
    ids, _scores = reference.recommend(test_users, matrix[test_users], N=K, filter_already_liked_items=True)
    predictions = pd.DataFrame({USER: test_users, "prediction": [[float(i) for i in row if i >= 0] for row in ids]})
    implicit_metrics = ranking_metrics(
        spark.createDataFrame(predictions, f"{USER} int, prediction array<double>"), data.labels, k=K
    )
    train.unpersist()
    return {
        "events": n_events,
        "training_pairs": pairs,
        "users": n_users,
        "skus": n_items,
        "spark_fit_s": round(spark_seconds, 1),
        "implicit_fit_s": round(implicit_seconds, 1),
        "fit_ratio": round(spark_seconds / implicit_seconds, 1),
        "spark_precision_at_10": round(spark_metrics["precision_at_k"], 4),
        "implicit_precision_at_10": round(implicit_metrics["precision_at_k"], 4),
        "spark_ndcg_at_10": round(spark_metrics["ndcg_at_k"], 4),
        "implicit_ndcg_at_10": round(implicit_metrics["ndcg_at_k"], 4),
    }


def bench_similar(spark: Any, meter: Meter, sku_count: int, folder: Path, *, exact_max: int) -> dict[str, Any]:
    from replenish.recommend.similar import similar_items

    rng = np.random.default_rng(sku_count)
    # Clustered factors (64 tastes), as ALS produces, rather than isotropic noise.
    centers = rng.standard_normal((64, RANK))
    factors = (centers[rng.integers(0, 64, sku_count)] + 0.5 * rng.standard_normal((sku_count, RANK))).astype(
        np.float32
    )
    skus = np.array([f"S{i:08d}" for i in range(sku_count)], dtype=object)
    path = folder / f"factors-{sku_count}"
    import pandas as pd

    spark.createDataFrame(
        pd.DataFrame({"sku": skus, "factors": list(factors)}), "sku string, factors array<float>"
    ).write.mode("overwrite").parquet(str(path))
    frame = spark.read.parquet(str(path))
    out = folder / f"similar-{sku_count}"

    def work() -> None:
        similar_items(frame, k=K, exact_max_skus=exact_max, bucket_size=2000, tables=3).write.mode("overwrite").parquet(
            str(out)
        )

    started = time.perf_counter()
    _, usage = meter.measure(work)
    seconds = time.perf_counter() - started
    sample = rng.choice(sku_count, 200, replace=False)
    written = spark.read.parquet(str(out))
    found = written.where(written["sku"].isin(list(skus[sample]))).toPandas()
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    hits = 0
    for index in sample:
        truth = set(skus[np.argsort(-(unit @ unit[index]))[1 : K + 1]])
        hits += len(truth & set(found.loc[found["sku"] == skus[index], "similar_sku"]))
    return {
        "skus": sku_count,
        "method": "exact" if sku_count <= exact_max else "LSH",
        "seconds": round(seconds, 1),
        "jvm_peak_rss_mb": round(usage.get("jvm_rss_mb", 0.0)),
        "worker_peak_rss_mb": round(usage.get("worker_rss_mb", 0.0)),
        "recall_at_10": round(hits / (K * len(sample)), 3),
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000], help="interaction counts")
    parser.add_argument("--sku-sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--exact-max", type=int, default=50_000, help="recommend.exact_similarity_max_skus")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from replenish_jobs.harness import build_spark

    spark = build_spark(
        {
            "app_name": "recommend-bench",
            "master": f"local[{args.cores}]",
            "log_level": "ERROR",
            "conf": {
                "spark.driver.memory": "2g",
                "spark.sql.shuffle.partitions": str(args.cores * 4),
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
            },
        }
    )
    gateway = getattr(spark.sparkContext, "_gateway", None)
    meter = Meter(getattr(getattr(gateway, "proc", None), "pid", None))
    meta = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": args.cores,
        "load": os.getloadavg()[0],
    }
    results: dict[str, Any] = {"meta": meta, "als": [], "similar": []}
    try:
        with tempfile.TemporaryDirectory(prefix="recommend-bench-") as name:
            folder = Path(name)
            spark.sparkContext.setCheckpointDir(str(folder / "checkpoints"))
            for size in args.sizes:
                results["als"].append(bench_als(spark, size, folder, args.cores))
                print(_markdown(results["als"][-1:]), flush=True)
            for count in args.sku_sizes:
                results["similar"].append(bench_similar(spark, meter, count, folder, exact_max=args.exact_max))
                print(_markdown(results["similar"][-1:]), flush=True)
    finally:
        spark.stop()
    print(f"\n{meta}\n\n## ALS fit\n{_markdown(results['als'])}\n\n## Similar items\n{_markdown(results['similar'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
