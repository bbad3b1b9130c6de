"""Series profiles: Syntetos-Boylan demand class (ADI / CV²) and the ABC × XYZ segment.

The numpy functions are the reference definitions, for one series and testable without Spark;
`profile_series` computes the same quantities for every series with DataFrame expressions (an
aggregate per series and one window over the few thousand series rows for ABC).

Definitions (censored periods are left out of ADI, CV² and XYZ: their sales are not demand):

* ADI, average demand interval: uncensored periods / uncensored periods with demand > 0.
* CV², squared coefficient of variation of the non-zero demand sizes (population variance).
* class: no_demand (no non-zero uncensored period), else smooth (ADI < 1.32, CV² < 0.49),
  erratic (ADI < 1.32, CV² >= 0.49), intermittent (ADI >= 1.32, CV² < 0.49), lumpy (both high).
* ABC: series sorted by revenue, descending; a series is A while the revenue share of the series
  before it is below the first threshold, B below the second, C after (and C without revenue), so
  the series that crosses a threshold still belongs to the higher class.
* XYZ: coefficient of variation of uncensored period demand (zeros included, population standard
  deviation): X up to the first threshold, Y up to the second, Z above or when mean demand is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from replenish.errors import ValidationError
from replenish.features.settings import FeaturesConfig
from replenish.io.catalog import table
from replenish.shared import check_freq

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
DEMAND_CLASSES: tuple[str, ...] = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")
PROFILE_COLUMNS: tuple[str, ...] = table("silver.series_profile").column_names  # the catalog's, in order


def _uncensored(demand: ArrayLike, censored: ArrayLike | None) -> np.ndarray:
    values = np.asarray(demand, dtype=float)
    if censored is None:
        return values
    mask = np.asarray(censored, dtype=bool)
    if mask.shape != values.shape:
        raise ValueError(f"censored has shape {mask.shape}, demand {values.shape}")
    return values[~mask]


def average_demand_interval(demand: ArrayLike, censored: ArrayLike | None = None) -> float:
    """Periods per non-zero demand period (ADI), censored periods left out; NaN without demand."""
    values = _uncensored(demand, censored)
    nonzero = np.count_nonzero(values > 0)
    return float(len(values) / nonzero) if nonzero else float("nan")


def squared_cv(demand: ArrayLike, censored: ArrayLike | None = None) -> float:
    """CV² of the non-zero demand sizes (population variance / mean²); NaN without demand."""
    values = _uncensored(demand, censored)
    sizes = values[values > 0]
    if not len(sizes):
        return float("nan")
    return float(np.var(sizes) / np.mean(sizes) ** 2)


def syntetos_boylan_class(
    adi: float, cv2: float, *, adi_cutoff: float = ADI_CUTOFF, cv2_cutoff: float = CV2_CUTOFF
) -> str:
    """smooth, erratic, intermittent or lumpy from ADI and CV²; no_demand when ADI is NaN."""
    if np.isnan(adi):
        return "no_demand"
    if adi < adi_cutoff:
        return "smooth" if cv2 < cv2_cutoff else "erratic"
    return "intermittent" if cv2 < cv2_cutoff else "lumpy"


def classify_demand(demand: ArrayLike, censored: ArrayLike | None = None) -> str:
    """The Syntetos-Boylan class of one series of period demand."""
    return syntetos_boylan_class(average_demand_interval(demand, censored), squared_cv(demand, censored))


def abc_classes(revenue: ArrayLike, thresholds: Sequence[float] = (0.8, 0.95)) -> np.ndarray:
    """ABC class of each series from its revenue, in the input order.

    Ties are broken by position, as `profile_series` breaks them by (sku, location).
    """
    values = np.asarray(revenue, dtype=float)
    a_share, b_share = thresholds
    order = np.argsort(-values, kind="stable")
    total = values.sum()
    share_before = np.empty_like(values)
    if total > 0:
        share_before[order] = (np.cumsum(values[order]) - values[order]) / total
    classes = np.select([share_before < a_share, share_before < b_share], ["A", "B"], default="C")
    return np.where((values > 0) & (total > 0), classes, "C")


def coefficient_of_variation(demand: ArrayLike, censored: ArrayLike | None = None) -> float:
    """Population standard deviation / mean of uncensored period demand; NaN when the mean is 0."""
    values = _uncensored(demand, censored)
    mean = values.mean() if len(values) else 0.0
    return float(values.std() / mean) if mean > 0 else float("nan")


def xyz_class(cv: float, thresholds: Sequence[float] = (0.5, 1.0)) -> str:
    """X (steady), Y or Z (erratic) from the coefficient of variation; Z when it is NaN."""
    x_cv, y_cv = thresholds
    if np.isnan(cv) or cv > y_cv:
        return "Z"
    return "X" if cv <= x_cv else "Y"


def demand_class_column(
    adi: Column, cv2: Column, *, adi_cutoff: float = ADI_CUTOFF, cv2_cutoff: float = CV2_CUTOFF
) -> Column:
    """Column version of `syntetos_boylan_class` (null ADI: no_demand)."""
    from pyspark.sql import functions as F

    low_variation = cv2 < F.lit(cv2_cutoff)
    return (
        F.when(adi.isNull(), F.lit("no_demand"))
        .when(adi < F.lit(adi_cutoff), F.when(low_variation, F.lit("smooth")).otherwise(F.lit("erratic")))
        .otherwise(F.when(low_variation, F.lit("intermittent")).otherwise(F.lit("lumpy")))
    )


def xyz_column(cv: Column, thresholds: Sequence[float]) -> Column:
    """Column version of `xyz_class` (null CV: Z)."""
    from pyspark.sql import functions as F

    x_cv, y_cv = thresholds
    return F.when(cv <= F.lit(x_cv), F.lit("X")).when(cv <= F.lit(y_cv), F.lit("Y")).otherwise(F.lit("Z"))


def profile_series(demand: DataFrame, products: DataFrame | None, cfg: FeaturesConfig, *, freq: str) -> DataFrame:
    """`silver.series_profile`: one row per SKU-location series of `demand` at frequency `freq`.

    Args:
        demand: `silver.demand` (at least freq, sku, location, date, demand, censored, price); rows
            of other frequencies are ignored.
        products: `bronze.products` for the category, or None (then `demand.category` is used).
        cfg: abc_thresholds, xyz_thresholds and the `new_series_periods` of `freq`.
        freq: D, W, M or Q.

    Returns:
        The columns of `silver.series_profile` (docs/tables.md): history span and counts, total demand,
        revenue (sum of demand × price), adi, cv2, demand_cv, demand_class, abc, xyz, abc_xyz,
        censored_share and is_new (at most `new_series_periods` periods of history).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_freq(freq)
    required = ["freq", "sku", "location", "date", "demand", "censored", "price"]
    missing = [name for name in required if name not in demand.columns]
    if missing:
        raise ValidationError(f"demand lacks column(s) {', '.join(missing)}; it has {', '.join(demand.columns)}")
    new_series_periods = cfg.for_freq(freq).new_series_periods
    uncensored = ~F.col("censored")
    true_demand = F.when(uncensored, F.col("demand"))
    true_size = F.when(uncensored & (F.col("demand") > 0), F.col("demand"))
    category = [] if products is not None or "category" not in demand.columns else [F.first("category", True)]
    stats = (
        demand.where(F.col("freq") == F.lit(freq))
        .groupBy("sku", "location")
        .agg(
            F.min("date").alias("first_date"),
            F.max("date").alias("last_date"),
            F.count(F.lit(1)).alias("n_periods"),
            F.count(F.when(F.col("demand") > 0, True)).alias("n_nonzero"),
            F.sum("demand").alias("total_demand"),
            F.coalesce(F.sum(F.col("demand") * F.col("price")), F.lit(0.0)).alias("revenue"),
            F.count(true_demand).alias("n_uncensored"),
            F.count(true_size).alias("n_sizes"),
            (F.var_pop(true_size) / F.avg(true_size) ** 2).alias("cv2"),
            F.when(F.avg(true_demand) > 0, F.stddev_pop(true_demand) / F.avg(true_demand)).alias("demand_cv"),
            F.avg(F.col("censored").cast("double")).alias("censored_share"),
            *[column.alias("category") for column in category],
        )
    )
    if products is not None:
        if "category" in products.columns:
            categories = products.select("sku", F.col("category").cast("string")).dropDuplicates(["sku"])
        else:
            categories = products.select("sku", F.lit(None).cast("string").alias("category")).dropDuplicates(["sku"])
        stats = stats.join(F.broadcast(categories), on="sku", how="left")
    elif not category:
        stats = stats.withColumn("category", F.lit(None).cast("string"))

    a_share, b_share = cfg.abc_thresholds
    ranking = Window.partitionBy("freq").orderBy(F.desc("revenue"), "sku", "location")
    revenue_before = F.coalesce(F.sum("revenue").over(ranking.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0.0))
    total_revenue = F.sum("revenue").over(Window.partitionBy("freq"))
    share_before = revenue_before / total_revenue
    abc = (
        F.when((F.col("revenue") <= 0) | (total_revenue <= 0), F.lit("C"))
        .when(share_before < F.lit(a_share), F.lit("A"))
        .when(share_before < F.lit(b_share), F.lit("B"))
        .otherwise(F.lit("C"))
    )
    adi = F.when(F.col("n_sizes") > 0, F.col("n_uncensored") / F.col("n_sizes"))
    profiled = (
        stats.withColumn("freq", F.lit(freq))
        .withColumn("adi", adi)
        .withColumn("demand_class", demand_class_column(F.col("adi"), F.col("cv2")))
        .withColumn("abc", abc)
        .withColumn("xyz", xyz_column(F.col("demand_cv"), cfg.xyz_thresholds))
        .withColumn("abc_xyz", F.concat("abc", "xyz"))
        .withColumn("is_new", F.col("n_periods") <= F.lit(new_series_periods))
    )
    return profiled.select(*PROFILE_COLUMNS)
