"""Typed settings of `replenish recommend` (the `recommend:` section of conf/base.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from replenish.errors import ConfigError

EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase")


@dataclass(frozen=True)
class RecommendConfig:
    """Settings of the recommender.

    Attributes:
        view_weight, add_to_cart_weight, purchase_weight: confidence one event of that type adds to
            its (user, SKU) pair; a purchase says more than a view.
        half_life_days: an event's weight halves for every this many days it is older than the
            newest event of the input; 0 turns the decay off.
        ranks, reg_params, alphas: the search grid of ALS's rank, regParam and alpha; every
            combination is fitted and evaluated, the best NDCG@k is published.
        max_iter: ALS iterations.
        num_blocks: user and item blocks of ALS (its partitions); None: the session's default
            parallelism. Each stage of each iteration runs one task per block, so blocks beyond the
            cores only add scheduling waves (conf/local.yaml: 2; docs/recommend.md).
        seed: ALS seed (same input and settings, same factors).
        holdout_share: each user's last share of interactions (by time) held out for evaluation.
        eval_k: the k of precision@k, recall@k, MAP@k and NDCG@k.
        top_n: recommendations published per user.
        exclude_purchased: drop SKUs the user already purchased from the published recommendations.
        similar_k: similar SKUs published per SKU.
        exact_similarity_max_skus: up to this many SKUs the similar items are exact (every pair scored
            in blocks); above it, SKUs are bucketed by random-hyperplane LSH and scored within buckets.
        lsh_bucket_size: target SKUs per LSH bucket (fixes the number of hyperplanes).
        lsh_tables: independent LSH tables; more tables find more true neighbours, at their cost.
        projection_dim: width of `gold.item_factors.projection` (PCA of the factors), the SKU
            embedding other models read.
        checkpoint_dir: Spark checkpoint folder for ALS (its lineage grows with every iteration);
            None: `<lake>/_checkpoints/recommend`.
    """

    view_weight: float = 1.0
    add_to_cart_weight: float = 3.0
    purchase_weight: float = 10.0
    half_life_days: float = 90.0
    ranks: tuple[int, ...] = (8, 16)
    reg_params: tuple[float, ...] = (0.01, 0.1)
    alphas: tuple[float, ...] = (1.0, 10.0)
    max_iter: int = 15
    num_blocks: int | None = None
    seed: int = 7
    holdout_share: float = 0.2
    eval_k: int = 10
    top_n: int = 20
    exclude_purchased: bool = True
    similar_k: int = 10
    exact_similarity_max_skus: int = 50_000
    lsh_bucket_size: int = 2_000
    lsh_tables: int = 3
    projection_dim: int = 4
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("view_weight", "add_to_cart_weight", "purchase_weight", "half_life_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"recommend.{name} must be >= 0, got {getattr(self, name)}")
        if not self.ranks or not self.reg_params or not self.alphas:
            raise ConfigError("recommend.ranks, reg_params and alphas must each list at least one value")
        if min(self.ranks) < self.projection_dim:
            raise ConfigError(
                f"recommend.ranks must be >= projection_dim ({self.projection_dim}), got {list(self.ranks)}"
            )
        if self.projection_dim < 1:
            raise ConfigError(f"recommend.projection_dim must be >= 1, got {self.projection_dim}")
        if not 0.0 < self.holdout_share < 1.0:
            raise ConfigError(f"recommend.holdout_share must be in (0, 1), got {self.holdout_share}")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise ConfigError(f"recommend.num_blocks must be >= 1 (or null), got {self.num_blocks}")
        for name in ("max_iter", "eval_k", "top_n", "similar_k", "lsh_bucket_size", "lsh_tables"):
            if getattr(self, name) < 1:
                raise ConfigError(f"recommend.{name} must be >= 1, got {getattr(self, name)}")

    def event_weights(self) -> dict[str, float]:
        return {"view": self.view_weight, "add_to_cart": self.add_to_cart_weight, "purchase": self.purchase_weight}
