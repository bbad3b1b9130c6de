"""Collaborative filtering on user interactions: implicit-feedback ALS, recommendations, similar SKUs.

`build_recommender` is the whole job as one call; the modules hold its stages: `confidence`
(event weights and the time split), `ids` (stable integer indices), `model` (ALS, ranking metrics,
search), `similar` (blocked / LSH top-k cosine neighbours) and `pipeline`.
"""

from replenish.recommend.pipeline import RecommenderResult, build_recommender
from replenish.recommend.settings import RecommendConfig

__all__ = ["RecommendConfig", "RecommenderResult", "build_recommender"]
