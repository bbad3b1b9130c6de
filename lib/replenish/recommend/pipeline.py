"""The recommender as one call: confidence → id maps → search on a time split → refit → outputs.

Kept free of I/O: the job (jobs/recommend.py) and notebooks/03_recommendations.py read the tables,
call `build_recommender`, and write what it returns.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.ml.feature import PCA
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Window
from pyspark.sql import functions as F

from replenish.io.catalog import table, with_required
from replenish.recommend.confidence import confidence, event_weights, time_split
from replenish.recommend.ids import extend_id_map
from replenish.recommend.model import (
    ITEM,
    USER,
    AlsSettings,
    EvaluationData,
    ImplicitAls,
    evaluate_als,
    evaluate_popularity,
    search_grid,
)
from replenish.recommend.settings import RecommendConfig
from replenish.recommend.similar import similar_items

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

# gold.recommender_evaluation's catalog columns; the ALS settings and the measures may be null.
EVALUATION_SCHEMA = with_required(
    table("gold.recommender_evaluation").schema, ("run_id", "run_date", "model", "k", "test_users", "chosen")
)


@dataclass
class RecommenderResult:
    """What one run produces; the DataFrames are lazy except the persisted id maps."""

    user_index_new: DataFrame
    sku_index_new: DataFrame
    recommendations: DataFrame
    item_factors: DataFrame
    similar_items: DataFrame
    evaluation: DataFrame
    chosen: AlsSettings
    metrics: dict[str, Any] = field(default_factory=dict)
    cached: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Unpersist what the run cached, once its tables are written (a notebook's session lives on)."""
        for frame in self.cached:
            frame.unpersist()

    def by_table(self) -> dict[str, DataFrame]:
        return {
            "silver.user_index": self.user_index_new,
            "silver.sku_index": self.sku_index_new,
            "gold.recommender_evaluation": self.evaluation,
            "gold.item_factors": self.item_factors,
            "gold.similar_items": self.similar_items,
            "gold.recommendations": self.recommendations,
        }


def _stamp(df: DataFrame, run_id: str, run_date: dt.date) -> DataFrame:
    return df.withColumn("run_id", F.lit(run_id)).withColumn("run_date", F.lit(run_date).cast("date"))


def item_factor_table(model: ImplicitAls, sku_map: DataFrame, *, projection_dim: int) -> DataFrame:
    """sku, factors (array<float>), projection (array<float>, PCA of the factors to `projection_dim`)."""
    factors = model.model.itemFactors.select(F.col("id").alias(ITEM), F.col("features").alias("factors"))
    factors = factors.join(sku_map, ITEM).select("sku", "factors")
    vectors = factors.withColumn("_vector", array_to_vector(F.col("factors")))
    pca = PCA(k=projection_dim, inputCol="_vector", outputCol="_projection").fit(vectors)
    projected = pca.transform(vectors)
    return projected.select(
        "sku",
        F.col("factors").cast("array<float>").alias("factors"),
        vector_to_array(F.col("_projection"), dtype="float32").alias("projection"),
    )


def recommendations_table(
    model: ImplicitAls,
    ratings: DataFrame,
    user_map: DataFrame,
    sku_map: DataFrame,
    *,
    top_n: int,
    exclude_purchased: bool,
) -> DataFrame:
    """user_id, sku, rank (1 = best), score: each user's top `top_n`, purchased SKUs left out if asked.

    Spark ranks `top_n + m` SKUs per user, m the most SKUs any user purchased, so that `top_n` remain
    after the exclusion for every user.
    """
    purchased = ratings.where("purchased").select(USER, ITEM)
    extra = 0
    if exclude_purchased:
        most = purchased.groupBy(USER).count().agg(F.max("count")).first()
        extra = int(most[0] or 0) if most is not None else 0
    recs = model.model.recommendForAllUsers(top_n + extra)
    scored = recs.select(USER, F.explode("recommendations").alias("rec")).select(
        USER, F.col("rec")[ITEM].alias(ITEM), F.col("rec")["rating"].cast("double").alias("score")
    )
    if exclude_purchased:
        scored = scored.join(purchased, [USER, ITEM], "left_anti")
    order = Window.partitionBy(USER).orderBy(F.desc("score"), ITEM)
    ranked = scored.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= top_n)
    ranked = ranked.join(user_map, USER).join(sku_map, ITEM)
    return ranked.select("user_id", "sku", F.col("rank").cast("int").alias("rank"), "score")


def build_recommender(
    interactions: DataFrame,
    *,
    cfg: RecommendConfig,
    user_map: DataFrame | None,
    sku_map: DataFrame | None,
    run_id: str,
    run_date: dt.date,
    known_skus: DataFrame | None = None,
) -> RecommenderResult:
    """Fit, evaluate and publish the recommender from `bronze.interactions`.

    Args:
        interactions: user_id, sku, event, timestamp (the ingest contract; location is ignored).
        cfg: weights, decay, search grid and output sizes.
        user_map, sku_map: the current id maps (silver.user_index / silver.sku_index), None if absent.
        run_id, run_date: stamped on every output row.
        known_skus: `bronze.products.sku` when the lake has products: SKUs interacted with but not in
            products are still modelled and recommended (the interaction proves they exist); their
            count is reported as `skus_not_in_products`.

    Returns:
        The new id-map rows, the four gold tables and the run's metrics.
    """
    spark = interactions.sparkSession
    weighted = event_weights(interactions, weights=cfg.event_weights(), half_life_days=cfg.half_life_days)

    user_new = extend_id_map(weighted, user_map, id_column="user_id", index_column=USER).cache()
    sku_new = extend_id_map(weighted, sku_map, id_column="sku", index_column=ITEM).cache()
    users = user_new if user_map is None else user_map.unionByName(user_new)
    skus = sku_new if sku_map is None else sku_map.unionByName(sku_new)
    indexed = weighted.join(F.broadcast(skus) if sku_map is None else skus, "sku").join(users, "user_id")
    indexed = indexed.cache()

    train_events, test_events = time_split(indexed, holdout_share=cfg.holdout_share)
    train = confidence(train_events, keys=(USER, ITEM)).cache()
    data = EvaluationData.build(train, test_events.select(USER, ITEM))
    test_users = data.labels.count()

    rows: list[tuple[Any, ...]] = []
    grid = search_grid(cfg.ranks, cfg.reg_params, cfg.alphas)
    scores: dict[AlsSettings, dict[str, float]] = {}
    if test_users > 0:
        for settings in grid:
            scores[settings] = evaluate_als(
                data, settings, k=cfg.eval_k, max_iter=cfg.max_iter, seed=cfg.seed, num_blocks=cfg.num_blocks
            )
            log.info("ALS %s: %s", settings, scores[settings])
        chosen = max(grid, key=lambda s: (scores[s]["ndcg_at_k"], scores[s]["precision_at_k"]))
        popularity = evaluate_popularity(data, k=cfg.eval_k)
    else:
        log.warning("no user has held-out interactions new to them: settings not searched, the first are used")
        chosen, popularity = grid[0], {}
    train.unpersist()

    def row(model: str, settings: AlsSettings | None, metrics: dict[str, float], is_chosen: bool) -> tuple[Any, ...]:
        return (
            run_id,
            run_date,
            model,
            None if settings is None else settings.rank,
            None if settings is None else settings.reg_param,
            None if settings is None else settings.alpha,
            cfg.eval_k,
            metrics.get("precision_at_k"),
            metrics.get("recall_at_k"),
            metrics.get("map_at_k"),
            metrics.get("ndcg_at_k"),
            test_users,
            is_chosen,
        )

    rows = [row("als", s, scores.get(s, {}), s == chosen) for s in grid]
    rows.append(row("popularity", None, popularity, False))
    evaluation = spark.createDataFrame(rows, EVALUATION_SCHEMA)

    ratings = confidence(indexed, keys=(USER, ITEM)).cache()
    model = ImplicitAls(chosen, max_iter=cfg.max_iter, seed=cfg.seed, num_blocks=cfg.num_blocks).fit(ratings)
    factors = item_factor_table(model, skus, projection_dim=cfg.projection_dim).cache()
    similar = similar_items(
        factors,
        k=cfg.similar_k,
        exact_max_skus=cfg.exact_similarity_max_skus,
        bucket_size=cfg.lsh_bucket_size,
        tables=cfg.lsh_tables,
    )
    recommendations = recommendations_table(
        model, ratings, users, skus, top_n=cfg.top_n, exclude_purchased=cfg.exclude_purchased
    )
    metrics: dict[str, Any] = {
        "chosen": {"rank": chosen.rank, "reg_param": chosen.reg_param, "alpha": chosen.alpha},
        "k": cfg.eval_k,
        "test_users": test_users,
        "als": scores.get(chosen, {}),
        "popularity": popularity,
        "new_users": user_new.count(),
        "new_skus": sku_new.count(),
    }
    if known_skus is not None:
        metrics["skus_not_in_products"] = skus.join(known_skus.select("sku"), "sku", "left_anti").count()
    return RecommenderResult(
        user_index_new=user_new,
        sku_index_new=sku_new,
        recommendations=_stamp(recommendations, run_id, run_date),
        item_factors=_stamp(factors, run_id, run_date),
        similar_items=_stamp(similar, run_id, run_date),
        evaluation=evaluation,
        chosen=chosen,
        metrics=metrics,
        cached=(user_new, sku_new, indexed, ratings, factors),
    )
