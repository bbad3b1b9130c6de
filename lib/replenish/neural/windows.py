"""Training and inference windows of the global LSTM, built in Spark from `silver.demand`.

Every series becomes one array of its periods (sorted, left-padded with `history` masked periods so
short and new series still yield windows); each forecast origin then slices its history and its
future out of that array. Nothing is collected to the driver: the windows are written as
`silver.lstm_windows` (training) or fed to `mapInPandas` (inference).

A window row (the columns of `WINDOW_COLUMNS`):

* freq, sku, location string; origin date (first forecast period); origin_idx int (its period index);
  split string (`train`, `valid`, `predict`, or `train_cut`: a train window cut to a short history,
  see `short_history_cuts`).
* history array<float> (history x HISTORY_CHANNELS, row-major): per past period the raw demand, 1 where
  it is observed demand (not censored, not padding), then the `COVARIATES`.
* future array<float> (horizon x len(COVARIATES)): the known-future covariates of each forecast period.
* target, target_mask array<float> (horizon): raw demand and 1 where it is scored (observed, uncensored).
* scale float: 1 + mean observed history demand (DeepAR's per-series scaling).
* category_bucket, location_bucket int: hashed static ids; projection array<float> (projection_dim):
  the SKU's `gold.item_factors.projection` (zeros without one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from replenish.errors import ValidationError
from replenish.shared import FREQUENCIES, MONTHS_PER_PERIOD

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

COVARIATES: tuple[str, ...] = ("promo", "price_change", "holiday", "dow_sin", "dow_cos", "doy_sin", "doy_cos")
"""Known-future covariates per period: promo share, price_ratio - 1 (clipped), holiday flag, calendar."""
HISTORY_CHANNELS: int = 2 + len(COVARIATES)
WINDOW_COLUMNS: tuple[str, ...] = (
    "freq",
    "sku",
    "location",
    "origin",
    "origin_idx",
    "split",
    "history",
    "future",
    "target",
    "target_mask",
    "scale",
    "category_bucket",
    "location_bucket",
    "projection",
)
TRAIN_CUT = "train_cut"
"""The split of the windows `short_history_cuts` cut: trained on with `train`, named apart to be counted."""
TRAINED_SPLITS: tuple[str, ...] = ("train", TRAIN_CUT)
_REQUIRED = ("freq", "sku", "location", "date", "demand", "censored")
_EPOCH = {"D": "1970-01-01", "W": "1970-01-05", "M": "1970-01-01", "Q": "1970-01-01"}


@dataclass(frozen=True)
class WindowSpec:
    """The shape of a window: encoder length, horizon and static features of one frequency."""

    freq: str
    history: int
    horizon: int
    hash_buckets: int = 64
    projection_dim: int = 4

    def __post_init__(self) -> None:
        if self.freq not in FREQUENCIES:
            raise ValidationError(f"freq must be one of {', '.join(FREQUENCIES)}, got {self.freq!r}")
        if self.history < 2 or self.horizon < 1:
            raise ValidationError(f"history must be >= 2 and horizon >= 1, got {self.history}, {self.horizon}")


def period_index(date: Column, freq: str) -> Column:
    """A global integer index of the period starting at `date` (consecutive periods differ by 1)."""
    from pyspark.sql import functions as F

    if freq in MONTHS_PER_PERIOD:
        return F.floor(((F.year(date) - 1970) * 12 + F.month(date) - 1) / MONTHS_PER_PERIOD[freq]).cast("int")
    days = F.datediff(date, F.lit(_EPOCH[freq]).cast("date"))
    return (F.floor(days / 7) if freq == "W" else days).cast("int")


def period_date(index: Column, freq: str) -> Column:
    """The start date of the period with global index `index` (inverse of `period_index`)."""
    from pyspark.sql import functions as F

    epoch = F.lit(_EPOCH[freq]).cast("date")
    if freq in MONTHS_PER_PERIOD:
        return F.add_months(epoch, index * MONTHS_PER_PERIOD[freq])
    return F.date_add(epoch, index * 7 if freq == "W" else index)


def index_of(day: dt.date, freq: str) -> int:
    """`period_index` of a Python date (for cutoffs computed on the driver from one scalar)."""
    if freq in MONTHS_PER_PERIOD:
        return ((day.year - 1970) * 12 + day.month - 1) // MONTHS_PER_PERIOD[freq]
    days = (day - dt.date.fromisoformat(_EPOCH[freq])).days
    return days // 7 if freq == "W" else days


def date_of(index: int, freq: str) -> dt.date:
    """Inverse of `index_of`."""
    if freq in MONTHS_PER_PERIOD:
        months = index * MONTHS_PER_PERIOD[freq]
        return dt.date(1970 + months // 12, months % 12 + 1, 1)
    return dt.date.fromisoformat(_EPOCH[freq]) + dt.timedelta(days=index * 7 if freq == "W" else index)


def period_rows(demand: DataFrame, spec: WindowSpec, *, holidays: DataFrame | None = None) -> DataFrame:
    """Stage 1: the periods of `spec.freq` with the model's per-period channels.

    Adds idx int (`period_index`), observed float (1: uncensored demand) and the `COVARIATES` floats.
    Missing covariate columns (a lake of sales only) and NaN / null values take neutral values: no
    promotion, regular price, no holiday. `holidays` (date, is_holiday) supplies the holiday flag when
    `demand` lacks `is_holiday`.

    Raises:
        ValidationError: a required column is missing, or no row has the frequency.
    """
    from pyspark.sql import functions as F

    missing = [name for name in _REQUIRED if name not in demand.columns]
    if missing:
        raise ValidationError(f"silver.demand lacks column(s) {missing}; it has {demand.columns}")
    rows = demand.where(F.col("freq") == F.lit(spec.freq))
    if holidays is not None and "is_holiday" not in rows.columns:
        rows = rows.join(holidays.select("date", "is_holiday"), on="date", how="left")

    def clean(name: str, neutral: float) -> Column:
        if name not in rows.columns:
            return F.lit(neutral)
        value = F.col(name).cast("double")
        return F.when(value.isNull() | F.isnan(value), F.lit(neutral)).otherwise(value)

    day = F.col("date")
    dow = (F.dayofweek(day) + 5) % 7  # Monday 0
    two_pi = 2 * 3.141592653589793
    demand_value = F.col("demand").cast("double")
    known = ~F.coalesce(F.col("censored").cast("boolean"), F.lit(False)) & demand_value.isNotNull()
    known = known & ~F.isnan(demand_value)
    channels = {
        "demand": F.when(known, demand_value).otherwise(F.lit(0.0)),
        "observed": F.when(known, F.lit(1.0)).otherwise(F.lit(0.0)),
        "promo": F.least(F.greatest(clean("promo", 0.0), F.lit(0.0)), F.lit(1.0)),
        "price_change": F.least(F.greatest(clean("price_ratio", 1.0) - 1.0, F.lit(-1.0)), F.lit(1.0)),
        "holiday": F.least(clean("is_holiday", 0.0), F.lit(1.0)),
        "dow_sin": F.sin(dow * (two_pi / 7)),
        "dow_cos": F.cos(dow * (two_pi / 7)),
        "doy_sin": F.sin(F.dayofyear(day) * (two_pi / 365.25)),
        "doy_cos": F.cos(F.dayofyear(day) * (two_pi / 365.25)),
    }
    category = F.col("category") if "category" in rows.columns else F.lit(None).cast("string")
    return rows.select(
        "sku",
        "location",
        F.coalesce(category, F.lit("")).alias("category"),
        "date",
        period_index(day, spec.freq).alias("idx"),
        *[value.cast("float").alias(name) for name, value in channels.items()],
    )


def future_rows(periods: DataFrame, spec: WindowSpec, *, holidays: DataFrame | None = None) -> DataFrame:
    """Stage 1b: `spec.horizon` periods after each series' last one, for the forecast proper.

    Future periods are unobserved, without promotion, at the regular price; the holiday flag comes
    from `holidays` (date, is_holiday) when given. Same columns as `period_rows`.
    """
    from pyspark.sql import functions as F

    last = periods.groupBy("sku", "location", "category").agg(F.max("idx").alias("last_idx"))
    future = last.select(
        "sku",
        "location",
        "category",
        F.explode(F.sequence(F.col("last_idx") + 1, F.col("last_idx") + spec.horizon)).alias("idx"),
    ).withColumn("date", period_date(F.col("idx"), spec.freq))
    if holidays is not None:
        future = future.join(holidays.select("date", F.col("is_holiday").alias("_holiday")), "date", "left")
    else:
        future = future.withColumn("_holiday", F.lit(0.0))
    day = F.col("date")
    dow = (F.dayofweek(day) + 5) % 7
    two_pi = 2 * 3.141592653589793
    channels = {
        "demand": F.lit(0.0),
        "observed": F.lit(0.0),
        "promo": F.lit(0.0),
        "price_change": F.lit(0.0),
        "holiday": F.least(F.coalesce(F.col("_holiday").cast("double"), F.lit(0.0)), F.lit(1.0)),
        "dow_sin": F.sin(dow * (two_pi / 7)),
        "dow_cos": F.cos(dow * (two_pi / 7)),
        "doy_sin": F.sin(F.dayofyear(day) * (two_pi / 365.25)),
        "doy_cos": F.cos(F.dayofyear(day) * (two_pi / 365.25)),
    }
    return future.select(
        "sku", "location", "category", "date", "idx", *[v.cast("float").alias(k) for k, v in channels.items()]
    )


def series_arrays(periods: DataFrame, spec: WindowSpec) -> DataFrame:
    """Stage 2: one row per series with its periods as one sorted, left-padded array.

    Columns: sku, location, category, first_idx, last_idx int, cells array<struct<idx, channels...>>:
    `spec.history` padding cells (unobserved, zero covariates) and then one cell per period, so the
    cell of period index i sits at 1-based position `history + i - first_idx + 1`.
    """
    from pyspark.sql import functions as F

    names = ["demand", "observed", *COVARIATES]
    cell = F.struct(F.col("idx"), *[F.col(name) for name in names])
    pad = F.struct(F.lit(0).alias("idx"), *[F.lit(0.0).cast("float").alias(name) for name in names])
    grouped = periods.groupBy("sku", "location").agg(
        F.max("category").alias("category"),
        F.min("idx").alias("first_idx"),
        F.max("idx").alias("last_idx"),
        F.count(F.lit(1)).alias("_n"),
        F.sort_array(F.collect_list(cell)).alias("_cells"),
    )
    complete = F.col("_n") == F.col("last_idx") - F.col("first_idx") + 1
    gap_error = F.raise_error(
        F.concat(
            F.lit("silver.demand series "),
            F.col("sku"),
            F.lit("/"),
            F.col("location"),
            F.lit(" has missing periods; rerun `replenish features` (it gap-fills every series)"),
        )
    )
    padded = F.concat(F.array_repeat(pad, spec.history), F.col("_cells"))
    return grouped.select(
        "sku",
        "location",
        "category",
        "first_idx",
        "last_idx",
        F.when(complete, padded).otherwise(gap_error).alias("cells"),
    )


def window_scale(demand_sum: Column, observed_sum: Column) -> Column:
    """The `scale` column: 1 + mean observed history demand (DeepAR's), from the history's two sums."""
    from pyspark.sql import functions as F

    return (F.lit(1.0) + demand_sum / F.greatest(observed_sum, F.lit(1.0))).cast("float")


def slice_windows(
    origins: DataFrame,
    spec: WindowSpec,
    *,
    split: Column,
    factors: DataFrame | None = None,
    neutral_future: bool = False,
) -> DataFrame:
    """Stage 4: slice each (series, origin_idx) row of `origins` into a window (`WINDOW_COLUMNS`).

    `origins` has the `series_arrays` columns plus origin_idx int; `split` computes the split column.
    `factors` (sku, projection array<float>) gives the static item vectors, or None for zeros.
    `neutral_future`: the future's promo and price change are 0 (what is assumed known in advance).
    """
    from pyspark.sql import functions as F

    h, L, p = spec.horizon, spec.history, spec.projection_dim
    position = F.lit(L) + F.col("origin_idx") - F.col("first_idx") + 1
    past = F.slice("cells", position - L, L)
    ahead = F.slice("cells", position, h)
    history = F.flatten(
        F.transform(past, lambda c: F.array(c["demand"], c["observed"], *[c[name] for name in COVARIATES]))
    )
    unknown_ahead = ("promo", "price_change") if neutral_future else ()

    def ahead_value(c: Column, name: str) -> Column:
        return F.lit(0.0).cast("float") if name in unknown_ahead else c[name]

    future = F.flatten(F.transform(ahead, lambda c: F.array(*[ahead_value(c, name) for name in COVARIATES])))
    observed_sum = F.aggregate(past, F.lit(0.0), lambda acc, c: acc + c["observed"])
    demand_sum = F.aggregate(past, F.lit(0.0), lambda acc, c: acc + c["demand"])
    rows = origins
    if factors is not None and p > 0:
        rows = rows.join(factors.select("sku", F.col("projection").alias("_factors")), on="sku", how="left")
    else:
        rows = rows.withColumn("_factors", F.lit(None).cast("array<float>"))
    head = F.slice(F.coalesce(F.col("_factors").cast("array<float>"), F.array().cast("array<float>")), 1, p)
    projection = F.concat(head, F.array_repeat(F.lit(0.0).cast("float"), F.lit(p) - F.size(head)))

    def bucket(column: str) -> Column:
        return F.pmod(F.xxhash64(F.col(column)), F.lit(spec.hash_buckets)).cast("int")

    return rows.select(
        F.lit(spec.freq).alias("freq"),
        "sku",
        "location",
        period_date(F.col("origin_idx"), spec.freq).alias("origin"),
        "origin_idx",
        split.alias("split"),
        history.cast("array<float>").alias("history"),
        future.cast("array<float>").alias("future"),
        F.transform(ahead, lambda c: c["demand"]).cast("array<float>").alias("target"),
        F.transform(ahead, lambda c: c["observed"]).cast("array<float>").alias("target_mask"),
        window_scale(demand_sum, observed_sum).alias("scale"),
        bucket("category").alias("category_bucket"),
        bucket("location").alias("location_bucket"),
        (projection if p > 0 else F.array().cast("array<float>")).cast("array<float>").alias("projection"),
        observed_sum.alias("_observed"),
    )


def training_windows(
    demand: DataFrame,
    spec: WindowSpec,
    *,
    train_end: dt.date,
    stride: int = 7,
    max_origins: int = 12,
    min_history: int = 4,
    short_history_share: float = 0.0,
    seed: int = 42,
    factors: DataFrame | None = None,
    holidays: DataFrame | None = None,
) -> DataFrame:
    """The training and validation windows of every series whose targets end by `train_end`.

    Origins are aligned across series (`stride` periods apart, the last one `horizon` periods before
    `train_end`'s period ends). The latest origin of each series is its `valid` window (a time-based
    validation slice); the `max_origins` origins whose targets end before it are `train`. A window
    needs `min_history` observed history periods. `short_history_share` of the train windows are
    cut to a short history (split `train_cut`; `short_history_cuts`, seeded by `seed`).

    Returns:
        `WINDOW_COLUMNS` rows; empty when no series is long enough (the caller reports it).
    """
    from pyspark.sql import functions as F

    last_valid = index_of(train_end, spec.freq) - spec.horizon + 1
    first_train = last_valid - spec.horizon - (max_origins - 1) * stride
    periods = period_rows(demand, spec, holidays=holidays)
    # only the periods some window reads: the arrays stay short however long the history
    periods = periods.where(F.col("idx") >= F.lit(first_train - spec.history))
    series = series_arrays(periods, spec)
    candidates = F.array_union(
        F.sequence(F.lit(first_train), F.lit(last_valid - spec.horizon), F.lit(stride)), F.array(F.lit(last_valid))
    )
    origins = series.select("*", F.explode(candidates).alias("origin_idx")).where(
        (F.col("origin_idx") > F.col("first_idx")) & (F.col("origin_idx") + spec.horizon - 1 <= F.col("last_idx"))
    )
    split = F.when(F.col("origin_idx") == F.lit(last_valid), F.lit("valid")).otherwise(F.lit("train"))
    windows = slice_windows(origins, spec, split=split, factors=factors)
    if short_history_share > 0:
        windows = short_history_cuts(windows, spec, share=short_history_share, min_history=min_history, seed=seed)
    return windows.where(F.col("_observed") >= F.lit(float(min_history))).drop("_observed")


def short_history_cuts(windows: DataFrame, spec: WindowSpec, *, share: float, min_history: int, seed: int) -> DataFrame:
    """Stage 5: a `share` of the train windows cut to a short history, as a new series has.

    Established series rarely have a padded history at the training origins, so without these the
    network reads a new series' padding as periods without demand and forecasts close to zero
    (docs/lstm.md, "Short and new series"). Each chosen window keeps its last k history periods, k
    drawn in [`min_history`, `history` - 1]; the periods before are padding, exactly as
    `series_arrays` pads a series that starts there, and `scale` is recomputed from what is kept.
    The window is cut in place, not copied, so training costs what it did without. Choice and length
    are hashes of (sku, location, origin_idx, seed): the same windows every run.

    Returns:
        `windows` with the chosen rows' history, scale and `_observed` replaced and split `train_cut`.
    """
    from pyspark.sql import functions as F

    if not 0 < share <= 1:
        raise ValidationError(f"share must be in (0, 1], got {share}")
    length, channels = spec.history, HISTORY_CHANNELS
    if length - 1 < min_history:
        return windows

    def draw(salt: int) -> Column:
        return F.pmod(F.xxhash64("sku", "location", "origin_idx", F.lit(seed), F.lit(salt)), F.lit(1_000_000))

    def channel_sum(history: Column, channel: int) -> Column:
        values = F.filter(history, lambda value, i: i % channels == channel)
        return F.aggregate(values, F.lit(0.0).cast("double"), lambda acc, value: acc + value)

    chosen = (F.col("split") == "train") & (draw(0) < F.lit(int(share * 1_000_000)))
    kept = F.lit(min_history) + F.pmod(draw(1), F.lit(length - min_history))
    first_kept = (F.lit(length) - kept) * channels
    cut = F.transform("history", lambda value, i: F.when(i >= first_kept, value).otherwise(F.lit(0.0)))
    rows = windows.withColumn("_cut", F.when(chosen, cut.cast("array<float>")))
    observed = channel_sum(F.col("_cut"), 1)
    scale = window_scale(channel_sum(F.col("_cut"), 0), observed)
    is_cut = F.col("_cut").isNotNull()
    replaced = {
        "split": F.lit(TRAIN_CUT),
        "history": F.col("_cut"),
        "scale": scale,
        "_observed": observed,
    }
    return rows.select(
        *[
            F.when(is_cut, replaced[name]).otherwise(F.col(name)).alias(name) if name in replaced else F.col(name)
            for name in windows.columns
        ]
    )


def inference_windows(
    demand: DataFrame,
    spec: WindowSpec,
    *,
    origins: list[dt.date] | None = None,
    factors: DataFrame | None = None,
    holidays: DataFrame | None = None,
    neutral_future: bool = False,
    since: dt.date | None = None,
) -> DataFrame:
    """Windows to forecast from: at each backtest cutoff in `origins`, or after each series' end.

    With `origins` (the backtest), every series with at least one period before an origin and all
    `horizon` periods after it gets a `predict` window whose target holds the actuals. Without, each
    series gets one window at the period after its last, with `future_rows` as its future.
    Series without a single observed history period get none (nothing to scale from).
    `neutral_future` blanks the future's promo and price (see `slice_windows`). `since` (the forecast
    proper): only periods from `history` periods before it are read (pass the last demand date).
    """
    from pyspark.sql import functions as F

    periods = period_rows(demand, spec, holidays=holidays)
    if origins:
        periods = periods.where(F.col("idx") >= F.lit(min(index_of(day, spec.freq) for day in origins) - spec.history))
    elif since is not None:
        periods = periods.where(F.col("idx") >= F.lit(index_of(since, spec.freq) - spec.history))
    if origins is None:
        periods = periods.unionByName(future_rows(periods, spec, holidays=holidays))
    series = series_arrays(periods, spec)
    if origins is None:
        chosen = series.withColumn("origin_idx", F.col("last_idx") - spec.horizon + 1)
    else:
        indices = F.array(*[F.lit(index_of(day, spec.freq)) for day in origins])
        chosen = series.select("*", F.explode(indices).alias("origin_idx")).where(
            (F.col("origin_idx") > F.col("first_idx")) & (F.col("origin_idx") + spec.horizon - 1 <= F.col("last_idx"))
        )
    windows = slice_windows(chosen, spec, split=F.lit("predict"), factors=factors, neutral_future=neutral_future)
    return windows.where(F.col("_observed") >= F.lit(1.0)).drop("_observed")


SplitName = Literal["train", "valid", "predict", "train_cut"]
