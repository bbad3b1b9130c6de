"""`replenish recommend` on planted structure: clusters of users that buy within their cluster."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyspark.sql import functions as F

from replenish.errors import ValidationError
from replenish.io.lake import Lake
from replenish.recommend import RecommendConfig, build_recommender
from replenish.recommend.confidence import event_weights
from replenish.recommend.ids import extend_id_map
from replenish_jobs import recommend

pytestmark = [pytest.mark.spark]

CLUSTERS, SKUS_PER_CLUSTER, USERS_PER_CLUSTER = 4, 10, 15
START = dt.datetime(2025, 1, 1)
SMALL = [
    "--set",
    "recommend.ranks=[6]",
    "--set",
    "recommend.reg_params=[0.05]",
    "--set",
    "recommend.alphas=[10.0]",
    "--set",
    "recommend.max_iter=8",
    "--set",
    "recommend.projection_dim=3",
]


def _cluster(sku: str) -> int:
    return int(sku[1:]) // SKUS_PER_CLUSTER


def planted_events(*, only_purchases: bool = False, seed: int = 3) -> list[tuple]:
    """Users of cluster c view, cart and buy SKUs of cluster c only; one popular SKU everyone views."""
    rng = random.Random(seed)
    rows = []
    for cluster in range(CLUSTERS):
        skus = [f"S{cluster * SKUS_PER_CLUSTER + i:03d}" for i in range(SKUS_PER_CLUSTER)]
        for u in range(USERS_PER_CLUSTER):
            user = f"U{cluster}-{u:02d}"
            minute = rng.randrange(100)
            for sku in rng.sample(skus, 6):
                minute += rng.randrange(1, 600)
                when = START + dt.timedelta(minutes=minute)
                if not only_purchases:
                    rows.append((user, sku, "view", when, "L1"))
                    rows.append((user, sku, "add_to_cart", when + dt.timedelta(seconds=30), "L1"))
                rows.append((user, sku, "purchase", when + dt.timedelta(seconds=90), "L1"))
    return rows


def interactions_frame(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, "user_id string, sku string, event string, timestamp timestamp, location string")


def run_job(spark, lake: Lake, *extra: str) -> dict:
    from replenish_jobs import harness

    results: dict = {}
    original = recommend.run

    def capture(ctx, args):
        results.update(original(ctx, args))
        return results

    parser_run = harness.job_main("recommend", recommend.__doc__, recommend.add_arguments, capture)
    assert parser_run(["--lake", lake.root, "--run-date", "2025-02-01", *SMALL, *extra], spark=spark) == 0
    return results


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory: pytest.TempPathFactory) -> dict:
    lake = Lake(spark, str(tmp_path_factory.mktemp("recommend") / "lakehouse"))
    rows = planted_events()
    rows.append(("U-lonely", "S001", "view", START, "L1"))  # a user with a single interaction
    rows.append(("U0-00", "X-UNKNOWN", "view", START, "L1"))  # a SKU absent from products
    lake.write(interactions_frame(spark, rows), "bronze.interactions")
    products = spark.createDataFrame([(f"S{i:03d}",) for i in range(CLUSTERS * SKUS_PER_CLUSTER)], "sku string")
    lake.write(products, "bronze.products")
    return {"lake": lake, "result": run_job(spark, lake), "rows": rows}


def test_als_recommends_in_cluster_far_above_popularity(planted: dict) -> None:
    lake, result = planted["lake"], planted["result"]
    recs = lake.read("gold.recommendations").where(F.col("user_id").startswith("U") & (F.col("rank") <= 3))
    recs = recs.where(~F.col("user_id").isin("U-lonely")).where(F.col("sku") != "X-UNKNOWN").collect()
    in_cluster = sum(int(row["user_id"][1]) == _cluster(row["sku"]) for row in recs) / len(recs)
    assert in_cluster > 0.9
    evaluation = {row["model"]: row for row in lake.read("gold.recommender_evaluation").collect()}
    assert evaluation["als"]["chosen"]
    assert evaluation["als"]["precision_at_k"] > 2 * evaluation["popularity"]["precision_at_k"]
    assert result["als"]["ndcg_at_k"] == pytest.approx(evaluation["als"]["ndcg_at_k"])


def test_similar_items_of_a_sku_are_in_its_cluster(planted: dict) -> None:
    similar = planted["lake"].read("gold.similar_items").where("rank <= 3 AND sku LIKE 'S%'")
    similar = similar.where("similar_sku != 'X-UNKNOWN'").collect()  # viewed by one cluster-0 user
    share = sum(_cluster(row["sku"]) == _cluster(row["similar_sku"]) for row in similar) / len(similar)
    assert share > 0.9
    assert all(row["similarity"] <= 1.0 + 1e-6 for row in similar)


def test_purchased_skus_are_not_recommended(planted: dict) -> None:
    lake = planted["lake"]
    bought = {(u, s) for u, s, e, *_ in planted["rows"] if e == "purchase"}
    recs = {(row["user_id"], row["sku"]) for row in lake.read("gold.recommendations").collect()}
    assert recs and not recs & bought
    per_user = lake.read("gold.recommendations").groupBy("user_id").count().agg(F.min("count")).first()[0]
    assert per_user == 20  # top_n survive the exclusion


def test_single_interaction_user_and_unknown_sku_are_kept(planted: dict) -> None:
    lake, result = planted["lake"], planted["result"]
    assert lake.read("gold.recommendations").where("user_id = 'U-lonely'").count() == 20
    factors = lake.read("gold.item_factors")
    assert factors.where("sku = 'X-UNKNOWN'").count() == 1
    assert result["skus_not_in_products"] == 1
    row = factors.first()
    assert len(row["factors"]) == 6 and len(row["projection"]) == 3
    assert dict(factors.dtypes)["factors"] == "array<float>" and dict(factors.dtypes)["projection"] == "array<float>"


def test_id_maps_round_trip_and_stay_stable_across_runs(spark, planted: dict) -> None:
    lake = planted["lake"]
    skus = {row["sku"]: row["sku_index"] for row in lake.read("silver.sku_index").collect()}
    users = lake.read("silver.user_index")
    assert len(skus) == len(set(skus.values())) == CLUSTERS * SKUS_PER_CLUSTER + 1
    assert users.count() == users.select("user_index").distinct().count()
    # Round trip: indices -> ids -> indices through the stored map.
    back = lake.read("silver.sku_index").join(lake.read("silver.sku_index"), "sku_index").collect()
    assert all(row[1] == row[2] for row in back)
    # A later run with one new SKU keeps every index and appends the new one after the maximum.
    more = [("U9", "S-NEW", "view", START + dt.timedelta(days=1), "L1")]
    extra = extend_id_map(
        interactions_frame(spark, planted["rows"] + more),
        lake.read("silver.sku_index"),
        id_column="sku",
        index_column="sku_index",
    ).collect()
    assert [(row["sku"], row["sku_index"]) for row in extra] == [("S-NEW", max(skus.values()) + 1)]


def test_id_overflow_is_a_clear_error(spark, monkeypatch) -> None:
    from replenish.recommend import ids

    monkeypatch.setattr(ids, "MAX_INDEX", 2)
    frame = spark.createDataFrame([("a",), ("b",), ("c",), ("d",)], "sku string")
    with pytest.raises(ValidationError, match="exceed"):
        extend_id_map(frame, None, id_column="sku", index_column="sku_index")


def test_event_weights_order_types_and_decay_with_age(spark) -> None:
    rows = [
        ("u", "a", "view", START),
        ("u", "a", "purchase", START),
        ("u", "b", "view", START + dt.timedelta(days=90)),
    ]
    frame = spark.createDataFrame(rows, "user_id string, sku string, event string, timestamp timestamp")
    weights = {
        (r["sku"], r["event"]): r["weight"]
        for r in event_weights(
            frame, weights={"view": 1.0, "add_to_cart": 3.0, "purchase": 10.0}, half_life_days=90.0
        ).collect()
    }
    assert weights[("b", "view")] == pytest.approx(1.0)
    assert weights[("a", "view")] == pytest.approx(0.5)
    assert weights[("a", "purchase")] == pytest.approx(5.0)


def test_only_purchases_on_a_lake_with_only_interactions(spark, tmp_path) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    lake.write(interactions_frame(spark, planted_events(only_purchases=True, seed=5)), "bronze.interactions")
    result = run_job(spark, lake)
    assert "skus_not_in_products" not in result
    assert lake.read("gold.recommendations").count() > 0
    assert lake.read("gold.similar_items").count() > 0


def test_without_interactions_run_all_skips_and_the_job_fails_clearly(spark, tmp_path, capsys) -> None:
    lake = Lake(spark, str(tmp_path / "lakehouse"))
    assert recommend.main(["--lake", lake.root, "--if-interactions"], spark=spark) == 0
    assert "skipped" in capsys.readouterr().out
    assert recommend.main(["--lake", lake.root], spark=spark) != 0


def test_build_recommender_is_callable_without_a_lake(spark, tmp_path) -> None:
    spark.sparkContext.setCheckpointDir(str(tmp_path / "checkpoints"))
    cfg = RecommendConfig(ranks=(4,), reg_params=(0.1,), alphas=(10.0,), max_iter=5, projection_dim=2, top_n=5)
    result = build_recommender(
        interactions_frame(spark, planted_events()),
        cfg=cfg,
        user_map=None,
        sku_map=None,
        run_id="r1",
        run_date=dt.date(2025, 2, 1),
    )
    assert result.recommendations.groupBy("user_id").count().agg(F.max("count")).first()[0] == 5
