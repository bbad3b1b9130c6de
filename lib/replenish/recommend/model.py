"""ALS on implicit feedback (Spark MLlib), its ranking evaluation and the search over its settings.

Evaluation ranks, for each user with held-out events, the SKUs they did not touch in training, and
scores the top k against the held-out SKUs they had not touched before (re-finding an item already
seen is not a recommendation). A popularity baseline (most users in training, same exclusions) is
scored the same way. Metrics come from `pyspark.ml.evaluation.RankingEvaluator`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.ml.evaluation import RankingEvaluator
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

USER, ITEM, RATING = "user_index", "sku_index", "rating"
METRICS: dict[str, Any] = {
    "precision_at_k": "precisionAtK",
    "recall_at_k": "recallAtK",
    "map_at_k": "meanAveragePrecisionAtK",
    "ndcg_at_k": "ndcgAtK",
}


@dataclass(frozen=True)
class AlsSettings:
    """One point of the search grid."""

    rank: int
    reg_param: float
    alpha: float


class ImplicitAls:
    """Spark ALS with `implicitPrefs=True` over (user_index, sku_index, rating).

    Spark needs a checkpoint directory for ALS: its lineage grows with every iteration and, past
    about 15, serialising it overflows the driver's stack. `fit` refuses to start without one.
    `num_blocks` (user and item blocks) defaults to the session's default parallelism.
    """

    def __init__(
        self, settings: AlsSettings, *, max_iter: int = 15, seed: int = 7, num_blocks: int | None = None
    ) -> None:
        self.settings = settings
        self.max_iter = max_iter
        self.seed = seed
        self.num_blocks = num_blocks
        self.model_: ALSModel | None = None

    def fit(self, ratings: DataFrame) -> ImplicitAls:
        if ratings.sparkSession.sparkContext.getCheckpointDir() is None:
            raise RuntimeError(
                "set a Spark checkpoint directory before fitting ALS (spark.sparkContext.setCheckpointDir)"
            )
        blocks = self.num_blocks or ratings.sparkSession.sparkContext.defaultParallelism
        als = ALS(
            rank=self.settings.rank,
            regParam=self.settings.reg_param,
            alpha=self.settings.alpha,
            maxIter=self.max_iter,
            implicitPrefs=True,
            userCol=USER,
            itemCol=ITEM,
            ratingCol=RATING,
            coldStartStrategy="drop",
            checkpointInterval=5,
            seed=self.seed,
            numUserBlocks=blocks,
            numItemBlocks=blocks,
        )
        self.model_ = als.fit(ratings.select(USER, ITEM, RATING))
        return self

    @property
    def model(self) -> ALSModel:
        if self.model_ is None:
            raise RuntimeError("call fit first")
        return self.model_

    def recommend(self, users: DataFrame, *, count: int) -> DataFrame:
        """Top `count` SKUs for the users of `users` (column user_index): user_index, sku_index, score."""
        recs = self.model.recommendForUserSubset(users.select(USER).distinct(), count)
        exploded = recs.select(USER, F.posexplode("recommendations").alias("position", "rec"))
        return exploded.select(USER, F.col("rec")[ITEM].alias(ITEM), F.col("rec")["rating"].alias("score"))


def popularity_recommend(train: DataFrame, users: DataFrame, *, count: int) -> DataFrame:
    """The baseline: the `count` SKUs with most distinct training users, for every user of `users`."""
    popular = (
        train.groupBy(ITEM)
        .agg(F.countDistinct(USER).cast("double").alias("score"))
        .orderBy(F.desc("score"), ITEM)
        .limit(count)
    )
    return users.select(USER).distinct().crossJoin(F.broadcast(popular))


def top_k_unseen(recommended: DataFrame, seen: DataFrame, *, k: int) -> DataFrame:
    """Drop the (user, SKU) pairs of `seen` and keep each user's best k: user_index, prediction (array)."""
    unseen = recommended.join(seen.select(USER, ITEM), [USER, ITEM], "left_anti")
    order = Window.partitionBy(USER).orderBy(F.desc("score"), ITEM)
    ranked = unseen.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") <= k)
    return ranked.groupBy(USER).agg(
        F.transform(F.array_sort(F.collect_list(F.struct("_rank", ITEM))), lambda s: s[ITEM].cast("double")).alias(
            "prediction"
        )
    )


@dataclass(frozen=True)
class EvaluationData:
    """Indexed training pairs, and per test user the held-out SKUs new to them (column `label`)."""

    train: DataFrame
    labels: DataFrame
    max_seen: int

    @classmethod
    def build(cls, train: DataFrame, test: DataFrame) -> EvaluationData:
        """`train`, `test`: user_index, sku_index (and rating for train)."""
        new_items = test.select(USER, ITEM).distinct().join(train.select(USER, ITEM), [USER, ITEM], "left_anti")
        labels = new_items.groupBy(USER).agg(F.array_sort(F.collect_set(F.col(ITEM).cast("double"))).alias("label"))
        seen = train.join(labels.select(USER), USER).groupBy(USER).count().agg(F.max("count")).first()
        return cls(train=train, labels=labels, max_seen=int(seen[0] or 0) if seen is not None else 0)


def ranking_metrics(predictions: DataFrame, labels: DataFrame, *, k: int) -> dict[str, float]:
    """precision@k, recall@k, MAP@k and NDCG@k of `predictions` (user_index, prediction) over `labels`.

    A test user without any prediction counts with an empty list (scores 0), so a model cannot gain
    by dropping users.
    """
    joined = labels.join(predictions, USER, "left").select(
        F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label"
    )
    joined = joined.cache()
    try:
        out = {}
        for name, metric in METRICS.items():
            evaluator = RankingEvaluator(metricName=metric, k=k, predictionCol="prediction", labelCol="label")
            out[name] = float(evaluator.evaluate(joined))
        return out
    finally:
        joined.unpersist()


def evaluate_als(
    data: EvaluationData, settings: AlsSettings, *, k: int, max_iter: int, seed: int, num_blocks: int | None = None
) -> dict[str, float]:
    """Fit on `data.train` with `settings` and score the top k unseen SKUs of each test user."""
    model = ImplicitAls(settings, max_iter=max_iter, seed=seed, num_blocks=num_blocks).fit(data.train)
    recommended = model.recommend(data.labels, count=k + data.max_seen)
    return ranking_metrics(top_k_unseen(recommended, data.train, k=k), data.labels, k=k)


def evaluate_popularity(data: EvaluationData, *, k: int) -> dict[str, float]:
    recommended = popularity_recommend(data.train, data.labels, count=k + data.max_seen)
    return ranking_metrics(top_k_unseen(recommended, data.train, k=k), data.labels, k=k)


def search_grid(ranks: tuple[int, ...], reg_params: tuple[float, ...], alphas: tuple[float, ...]) -> list[AlsSettings]:
    return [AlsSettings(r, g, a) for r, g, a in itertools.product(ranks, reg_params, alphas)]
