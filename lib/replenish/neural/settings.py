"""Typed settings of the global LSTM (the `forecast.lstm:` section of conf/base.yaml).

Imported by `replenish.forecast.settings` without TensorFlow: nothing here imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from replenish.errors import ConfigError

QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)
"""The quantiles the model outputs: the 95% and 80% interval bounds and the median (the point forecast)."""

PERIODS_PER_YEAR: dict[str, int] = {"D": 365, "W": 52, "M": 12, "Q": 4}

DEFAULT_MEMORY_CACHE_BYTES = 256 * 1024 * 1024
"""`LstmSettings.memory_cache_bytes`' default: a worker keeps a shard of up to 256 MiB in memory."""


@dataclass(frozen=True)
class LstmSettings:
    """Settings of the global LSTM forecaster (`replenish train-lstm`, `forecast --model lstm`).

    Attributes:
        enabled: `forecast --model auto` adds the LSTM as a candidate per series.
        history: periods of history the encoder reads per window (D: 56 days). A series with less
            history is left-padded and masked, so short and new series still get a forecast.
        min_history: a training window needs this many observed (uncensored) history periods.
        stride: periods between consecutive training origins of a series; None spreads the
            `max_origins` origins over a year (`stride_for`), so the network is trained on the
            day-of-year inputs of every season, not only of the weeks before the first backtest
            cutoff (docs/lstm.md, "Origins over a year").
        max_origins: the most recent training origins kept per series (bounds the table's size).
        short_history_share: this share of the training windows is cut to a short history
            (`windows.short_history_cuts`), so the network learns what a new series' padded history
            means instead of reading it as periods without demand. 0: none.
        hidden: LSTM units; the decoder's dense layer has as many.
        embedding_dim: size of the category and location embeddings.
        hash_buckets: category and location names are hashed into this many buckets (no vocabulary
            to keep in sync between training and inference).
        projection_dim: leading entries of `gold.item_factors.projection` used as static features
            (zeros for SKUs without factors or when the table is absent: the model works without them).
        epochs: most training epochs (early stopping usually ends sooner).
        steps_per_epoch: batches per epoch per worker, fixed so no worker runs out before the others;
            None: the training windows divided by the global batch size, raised to `min_steps / epochs`.
        min_steps: optimizer steps a training may take at least (epochs x steps per epoch, before
            early stopping): one pass over a small catalogue's windows is a handful of steps, too few
            for the network to learn anything; the data repeat instead (early stopping still guards
            against over-fitting).
        batch_size: windows per batch per worker.
        learning_rate: Adam's.
        patience: epochs without validation improvement before stopping (the best weights are kept).
        seed: seeds TensorFlow, numpy and shuffling.
        workers: barrier tasks (TensorFlow workers); 1 trains in a single task.
        use_gpu: request a GPU per training task (needs `spark.task.resource.gpu.amount`).
        loader: `petastorm` (make_spark_converter / make_tf_dataset) or `arrow` (pyarrow dataset).
        planned_promotions: the backtest treats the test window's observed promo and price as
            planned in advance (a retailer's promotion calendar); False gives the LSTM what the
            statistical models get (no promotion, regular price), so the comparison is like for like.
        row_group_bytes: Parquet row-group size of the Petastorm cache; small enough that every
            worker's shard gets row groups.
        memory_cache_bytes: a worker whose shard of the training (or validation) windows is at most
            this many bytes, uncompressed, reads it once and serves every epoch from memory; a larger
            shard is read from Parquet every epoch. 0: always read from Parquet.
        seasonal_base: the median is a correction to each window's own seasonal profile (for daily
            data its weekday means over the history) instead of free. It helps a small catalogue of
            regular series and hurts a large one with intermittent series (docs/lstm.md), so it is off
            by default.
    """

    enabled: bool = True
    history: int | None = None
    min_history: int = 4
    stride: int | None = None
    max_origins: int = 12
    short_history_share: float = 0.25
    hidden: int = 32
    embedding_dim: int = 4
    hash_buckets: int = 64
    projection_dim: int = 4
    epochs: int = 8
    steps_per_epoch: int | None = None
    min_steps: int = 300
    batch_size: int = 128
    learning_rate: float = 0.005
    patience: int = 2
    seed: int = 42
    workers: int = 1
    use_gpu: bool = False
    loader: str = "petastorm"
    planned_promotions: bool = False
    row_group_bytes: int = 1024 * 1024
    memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES
    seasonal_base: bool = False

    def __post_init__(self) -> None:
        if self.stride is not None and self.stride < 1:
            raise ConfigError(f"forecast.lstm.stride must be >= 1 or null, got {self.stride}")
        positive = ("min_history", "max_origins", "hidden", "embedding_dim", "hash_buckets")
        for name in (*positive, "epochs", "batch_size", "workers", "min_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"forecast.lstm.{name} must be >= 1, got {getattr(self, name)}")
        if self.history is not None and self.history < 2:
            raise ConfigError(f"forecast.lstm.history must be >= 2, got {self.history}")
        if self.projection_dim < 1 or self.patience < 0:
            raise ConfigError("forecast.lstm.projection_dim must be >= 1 and patience >= 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"forecast.lstm.steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.learning_rate <= 0:
            raise ConfigError(f"forecast.lstm.learning_rate must be > 0, got {self.learning_rate}")
        if self.loader not in ("petastorm", "arrow"):
            raise ConfigError(f"forecast.lstm.loader must be petastorm or arrow, got {self.loader!r}")
        if not 0 <= self.short_history_share <= 1:
            raise ConfigError(f"forecast.lstm.short_history_share must be in [0, 1], got {self.short_history_share}")
        if self.memory_cache_bytes < 0:
            raise ConfigError(f"forecast.lstm.memory_cache_bytes must be >= 0, got {self.memory_cache_bytes}")
        if self.row_group_bytes < 1024:
            raise ConfigError(f"forecast.lstm.row_group_bytes must be >= 1024, got {self.row_group_bytes}")

    def stride_for(self, freq: str) -> int:
        """Periods between training origins: `stride`, or `max_origins` origins spread over a year.

        With the default 6 origins: 61 days (D), 9 weeks (W), 2 months (M), 1 quarter (Q).
        """
        if self.stride is not None:
            return self.stride
        return max(1, math.ceil(PERIODS_PER_YEAR[freq] / self.max_origins))

    def history_for(self, freq: str) -> int:
        """Encoder length in periods of `freq`: `history`, or 8 weeks (D), a year (W), 2 years (M, Q: 8)."""
        if self.history is not None:
            return self.history
        return {"D": 56, "W": 52, "M": 24, "Q": 8}[freq]
