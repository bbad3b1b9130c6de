"""Synthetic e-commerce data with known structure: what `replenish generate` writes.

Everything is built with Spark (`spark.range` plus column expressions), so the code that makes the
demo's 1,000 SKUs x 10 locations on a laptop also makes millions of SKU-locations on a cluster. Every
random number is a hash of (seed, stream, keys) (see `replenish.data.draws`), so the output depends on
the seed and the scale only, never on partitioning, cores or shuffle settings.

The data carry the structure the later stages are meant to find:

- a product hierarchy (category, subcategory, brand) with prices and costs, and locations of three
  types in five regions; each SKU is carried at a subset of locations (the assortment);
- daily demand per SKU-location: a base rate times weekly and yearly seasonality, a trend, the price
  effect (regular price changes and promotion discounts through a constant elasticity), a promotion
  display lift, holiday uplift (the `holidays` calendar of `country`) and a ramp-up after launch,
  with gamma noise for smooth sellers, so the counts are over-dispersed like real sales;
- slow, intermittent movers (a fixed share of SKUs with low Poisson rates and lumpy order sizes),
  SKUs launched mid-period (no rows before their launch date), and stockout spells during which sales
  are censored (`in_stock = false`, the first day partial, later days zero);
- user-item interactions (view, add_to_cart, purchase) driven by latent user and item factors, so
  collaborative filtering has signal; suppliers with lead times and order constraints; an inventory
  snapshot on the last day;
- a small share of deliberately bad sales rows, so ingestion's quarantine has work to do.

Like a real transaction extract, `sales` has a row for each SKU-location-day that sold something or
was out of stock; an in-stock day without sales has no row. Zero demand and stockouts are thereby
distinguishable, as they are in real data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pyspark.sql import Column
from pyspark.sql import functions as F

from replenish.data import draws
from replenish.errors import ConfigError
from replenish.io.catalog import BRONZE_COLUMNS, ENTITIES, parse_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OutputFormat = Literal["csv", "parquet"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Scale and shape of the synthetic data set (the `generate:` section of the settings).

    Attributes:
        seed: the seed every random number derives from; same seed and scale, same data.
        skus: number of products.
        locations: number of locations (stores, fulfillment centers, dark stores).
        start: first day of the sales history, `YYYY-MM-DD` (YAML may hand over a date already).
        days: length of the sales history in days; the inventory snapshot is dated on the last one.
        users: number of users in the interaction log.
        interactions_per_user: mean number of product views per user (each may lead to an
            add-to-cart and a purchase).
        assortment_share: share of locations that carry a given SKU (every SKU is carried somewhere).
        intermittent_share: share of SKUs that are slow, intermittent movers.
        launch_share: share of SKUs launched during the history (cold start).
        stockout_rate: daily chance that a stockout spell starts at a SKU-location.
        promo_rate: share of SKU-weeks on promotion.
        bad_row_share: share of sales rows replaced by (or duplicated as) bad rows; 0 plants none.
        country: holiday calendar (an ISO country code the `holidays` package knows).
        latent_factors: dimension of the latent user and item tastes behind the interactions.
        out: where `replenish generate` writes, one folder per entity.
        format: `csv` (header row) or `parquet`. Only CSV can hold an unparseable date or a
            non-numeric quantity, so those two kinds of bad rows are planted in CSV only.
    """

    seed: int = 42
    skus: int = 1000
    locations: int = 10
    start: str | dt.date = "2023-01-01"
    days: int = 1095
    users: int = 5000
    interactions_per_user: int = 40
    assortment_share: float = 0.5
    intermittent_share: float = 0.35
    launch_share: float = 0.08
    stockout_rate: float = 0.02
    promo_rate: float = 0.04
    bad_row_share: float = 0.001
    country: str = "US"
    latent_factors: int = 4
    out: str = "./data/raw"
    format: OutputFormat = "csv"

    def __post_init__(self) -> None:
        for name in ("skus", "locations", "days", "users", "interactions_per_user", "latent_factors"):
            if getattr(self, name) < 1:
                raise ConfigError(f"generate.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("assortment_share", "intermittent_share", "launch_share", "promo_rate", "bad_row_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"generate.{name} must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.stockout_rate < 1.0:
            raise ConfigError(f"generate.stockout_rate must be in [0, 1), got {self.stockout_rate}")
        try:
            if not isinstance(self.start, dt.date):
                dt.date.fromisoformat(str(self.start))
        except ValueError:
            raise ConfigError(f"generate.start must be a date YYYY-MM-DD, got {self.start!r}") from None
        if self.format not in ("csv", "parquet"):
            raise ConfigError(f"generate.format must be csv or parquet, got {self.format!r}")

    @property
    def start_date(self) -> dt.date:
        """The first day of the history."""
        return self.start if isinstance(self.start, dt.date) else dt.date.fromisoformat(str(self.start))

    @property
    def end_date(self) -> dt.date:
        """The last day of the history, the date of the inventory snapshot."""
        return self.start_date + dt.timedelta(days=self.days - 1)


@dataclass(frozen=True)
class _Category:
    name: str
    subcategories: tuple[str, ...]
    brands: tuple[str, ...]
    price_level: float  # median list price
    season_peak_day: int  # day of year with the highest demand
    season_amplitude: float  # relative swing of the yearly cycle


CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "Electronics",
        subcategories=("Headphones", "Chargers", "Smart Home", "Cameras"),
        brands=("Voltra", "Nexon", "Auralis", "Brightway"),
        price_level=45.0,
        season_peak_day=345,
        season_amplitude=0.35,
    ),
    _Category(
        "Home & Kitchen",
        subcategories=("Cookware", "Storage", "Bedding", "Lighting"),
        brands=("Hearthly", "Casa Nova", "Kitchenly", "Dwell"),
        price_level=28.0,
        season_peak_day=330,
        season_amplitude=0.2,
    ),
    _Category(
        "Garden & Outdoor",
        subcategories=("Planters", "Garden Tools", "Grills", "Patio"),
        brands=("GreenThumb", "Terrace", "Ember Ridge", "Fieldcraft"),
        price_level=35.0,
        season_peak_day=150,
        season_amplitude=0.6,
    ),
    _Category(
        "Toys & Games",
        subcategories=("Puzzles", "Board Games", "Building Sets", "Plush"),
        brands=("Playwell", "Brickworks", "Cuddle Co", "Mindspark"),
        price_level=22.0,
        season_peak_day=350,
        season_amplitude=0.55,
    ),
    _Category(
        "Apparel",
        subcategories=("T-Shirts", "Jackets", "Socks", "Swimwear"),
        brands=("Northline", "Urban Thread", "Tidewear", "Basics Lab"),
        price_level=25.0,
        season_peak_day=300,
        season_amplitude=0.3,
    ),
    _Category(
        "Beauty",
        subcategories=("Skincare", "Hair Care", "Fragrance", "Oral Care"),
        brands=("Lumea", "Verdant", "Pure Ritual", "Glowlab"),
        price_level=18.0,
        season_peak_day=340,
        season_amplitude=0.15,
    ),
    _Category(
        "Sports & Fitness",
        subcategories=("Yoga", "Cycling", "Running", "Weights"),
        brands=("Stridex", "Peakform", "Cadence", "Ironhaus"),
        price_level=30.0,
        season_peak_day=15,
        season_amplitude=0.3,
    ),
    _Category(
        "Grocery",
        subcategories=("Coffee", "Snacks", "Tea", "Baking"),
        brands=("Morning Ritual", "Crunchbox", "Leaf & Kettle", "Flourish"),
        price_level=9.0,
        season_peak_day=330,
        season_amplitude=0.1,
    ),
    _Category(
        "Pet Supplies",
        subcategories=("Dog Food", "Cat Litter", "Pet Toys", "Aquarium"),
        brands=("Pawsome", "Whisker", "Fetch & Co", "Aquaria"),
        price_level=20.0,
        season_peak_day=200,
        season_amplitude=0.05,
    ),
    _Category(
        "Office & School",
        subcategories=("Paper", "Pens", "Desk Accessories", "Backpacks"),
        brands=("Scriptly", "Deskwise", "Paperline", "Trailpack"),
        price_level=12.0,
        season_peak_day=235,
        season_amplitude=0.45,
    ),
)
REGIONS: tuple[str, ...] = ("Northeast", "Southeast", "Midwest", "Southwest", "West")


@dataclass(frozen=True)
class _LocationType:
    name: str
    label: str
    share: float  # share of locations of this type
    volume: float  # demand multiplier relative to a store
    weekly_peak_day: int  # busiest day of the week, Monday = 0
    transit_days: float  # extra lead time from the supplier


LOCATION_TYPES: tuple[_LocationType, ...] = (
    _LocationType(
        "fulfillment_center", "Fulfillment Center", share=0.25, volume=2.5, weekly_peak_day=0, transit_days=0.0
    ),
    _LocationType("store", "Store", share=0.6, volume=1.0, weekly_peak_day=5, transit_days=2.0),
    _LocationType("dark_store", "Dark Store", share=0.15, volume=0.6, weekly_peak_day=4, transit_days=1.0),
)

# Demand model constants (rates are units per day per location at the list price).
SMOOTH_BASE_RATE = 3.0
INTERMITTENT_BASE_RATE = 0.08
PRICE_BLOCK_WEEKS = 13  # the regular price may change once a quarter
PRICE_CHANGE_CHANCE = 0.4
PRICE_CHANGE_SIZE = 0.12  # regular price moves up to +-12% off the list price
PROMO_DISPLAY_LIFT = 0.3  # uplift of being featured, on top of the discount's price effect
HOLIDAY_UPLIFT = 0.6
LAUNCH_RAMP_DAYS = 28
# Interest: a SKU-week shock (lognormal, mean 1) that draws views in its week and lifts sales in the
# next, so that views lead purchases. Not tuned: one standard deviation of 30% of the rate.
INTEREST_SIGMA = 0.3
STOCKOUT_MEAN_EXTRA_DAYS = 2.0  # a stockout spell lasts 1 + geometric(mean 2) days, at most a week
# Interactions: candidates scored per view, and the weights of the softmax choice among them.
CANDIDATES_PER_VIEW = 12
POPULARITY_WEIGHT = 0.7
AFFINITY_WEIGHT = 2.0
# Funnel: logit (intercept, slope per unit of affinity) of adding a viewed product to the cart, and
# of buying it once in the cart: about one view in six reaches the cart, over half of those sell.
CART_LOGIT = (-3.0, 1.0)
PURCHASE_LOGIT = (-0.8, 0.6)
BAD_DATE = "2024-13-45"
NON_NUMERIC_QUANTITY = "abc"
TEXT_ONLY_BAD_KINDS = ("unparseable_date", "non_numeric_quantity")
BAD_ROW_KINDS: tuple[str, ...] = (
    "null_sku",
    "negative_quantity",
    "duplicate",
    *TEXT_ONLY_BAD_KINDS,
)
ROWS_PER_PARTITION = 2_000_000

# The generating truth, kept for tests and benchmarks (ingest ignores columns it does not know).
TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {"products": ("demand_profile",)}
# The columns of each raw file: the catalog's bronze columns of the entity, then the truth.
OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    entity: (*(name for name, _ in parse_columns(BRONZE_COLUMNS[entity])), *TRUTH_COLUMNS.get(entity, ()))
    for entity in ENTITIES
}


# Key columns: every draw hashes some of these (all longs, except the int day `t`).
SKU, LOCATION, DAY, USER, VIEW = "sku_index", "location_index", "t", "user_index", "view_index"
# The columns every step of the daily panel carries forward.
PANEL_KEYS = (SKU, LOCATION, DAY, "sku", "location", "date", "price", "promo", "in_stock")


class _Random:
    """The draws of one generator run, bound to its seed; keys are column names."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def uniform(self, stream: str, *keys: str) -> Column:
        return draws.uniform(self.seed, stream, *keys)

    def hash(self, stream: str, *keys: str) -> Column:
        """64 random bits for the keys, to cut into several uniforms with `part`."""
        return draws.key_hash(self.seed, stream, *keys)

    @staticmethod
    def part(hashed: str, part: int, parts: int) -> Column:
        """Uniform number `part` of the `parts` cut from the hash column `hashed`."""
        return draws.hash_to_uniform(F.col(hashed), part=part, parts=parts)

    def normal(self, stream: str, *keys: str) -> Column:
        return draws.standard_normal(self.uniform(f"{stream}:a", *keys), self.uniform(f"{stream}:b", *keys))

    def index(self, stream: str, count: int, *keys: str) -> Column:
        """A uniformly chosen integer in `0 .. count - 1`, as a long (usable as a key itself)."""
        return F.floor(self.uniform(stream, *keys) * count)

    def share(self, stream: str, step: float, index: str) -> Column:
        """An evenly spread position in [0, 1) per index: `< share` selects an exact share of indices."""
        return draws.stratified(F.col(index), step, draws.seed_offset(self.seed, stream))


def _sql_literal(value: object) -> str:
    """A Spark SQL literal for a string, number or (nested) list of them."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, float):
        return f"{value!r}D"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return f"array({', '.join(_sql_literal(item) for item in value)})"
    raise TypeError(f"no SQL literal for {value!r}")


def _pick(values: Sequence[object], index: Column) -> Column:
    """The element of the literal list `values` at the 0-based `index` column."""
    # One SQL literal is one call into the JVM, where F.array(F.lit(...), ...) is one per element.
    return F.element_at(F.expr(_sql_literal(values)), (index + 1).cast("int"))


def _pick_nested(values: Sequence[Sequence[object]], outer: Column, inner: Column) -> Column:
    """`values[outer][inner]` for a literal list of lists and 0-based index columns."""
    return F.element_at(F.element_at(F.expr(_sql_literal(values)), (outer + 1).cast("int")), (inner + 1).cast("int"))


def sku_code(sku_index: Column) -> Column:
    """The SKU code of a 0-based product index: `SKU-000001`, ..."""
    return F.format_string("SKU-%06d", sku_index + 1)


def location_code(location_index: Column) -> Column:
    """The location code of a 0-based location index: `LOC-001`, ..."""
    return F.format_string("LOC-%03d", location_index + 1)


def _panel_partitions(spark: SparkSession, cfg: GeneratorConfig) -> int:
    """Partitions of the SKU-location-day panel: at most ~2M days each, and all cores busy."""
    carried = max(1.0, cfg.locations * cfg.assortment_share)
    days = cfg.skus * carried * cfg.days
    by_size = math.ceil(days / ROWS_PER_PARTITION)
    for_cores = min(spark.sparkContext.defaultParallelism, math.ceil(days / 50_000))
    return max(1, by_size, for_cores)


def _products(spark: SparkSession, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """Products: hierarchy, prices, launch day, and the latent parameters of their demand."""
    i = F.col(SKU)
    launched = rng.share("launch", draws.SQRT2_STEP, SKU) < cfg.launch_share
    launch_day = F.when(launched, F.floor(cfg.days * (0.1 + 0.75 * rng.uniform("launch_day", SKU)))).otherwise(
        -30 - F.floor(1500 * rng.uniform("launch_day", SKU))
    )
    products = spark.range(cfg.skus, numPartitions=max(1, math.ceil(cfg.skus / 1_000_000)))
    products = products.select(
        F.col("id").alias(SKU),
        rng.index("category", len(CATEGORIES), SKU).cast("int").alias("category_index"),
        rng.index("subcategory", len(CATEGORIES[0].subcategories), SKU).cast("int").alias("subcategory_index"),
        rng.index("brand", len(CATEGORIES[0].brands), SKU).cast("int").alias("brand_index"),
        (rng.share("intermittent", draws.GOLDEN_STEP, SKU) < cfg.intermittent_share).alias("is_intermittent"),
        launch_day.cast("int").alias("launch_day"),
    )
    category = F.col("category_index")
    intermittent = F.col("is_intermittent")
    list_price = _pick([c.price_level for c in CATEGORIES], category) * F.exp(0.7 * rng.normal("price", SKU))
    base_rate = F.when(intermittent, INTERMITTENT_BASE_RATE * F.exp(0.6 * rng.normal("base_rate", SKU))).otherwise(
        SMOOTH_BASE_RATE * F.exp(0.7 * rng.normal("base_rate", SKU))
    )
    season_amplitude = _pick([c.season_amplitude for c in CATEGORIES], category) * (
        0.5 + rng.uniform("season_amplitude", SKU)
    )
    season_peak_day = _pick([float(c.season_peak_day) for c in CATEGORIES], category) + 20.0 * rng.normal(
        "season_peak", SKU
    )
    products = products.select(
        "*",
        sku_code(i).alias("sku"),
        _pick([c.name for c in CATEGORIES], category).alias("category"),
        _pick_nested([c.subcategories for c in CATEGORIES], category, F.col("subcategory_index")).alias("subcategory"),
        _pick_nested([c.brands for c in CATEGORIES], category, F.col("brand_index")).alias("brand"),
        F.greatest(F.floor(list_price) + 0.99, F.lit(0.99)).alias("unit_price"),
        F.date_add(F.lit(cfg.start_date), F.col("launch_day")).alias("launch_date"),
        F.when(intermittent, "intermittent").otherwise("smooth").alias("demand_profile"),
        base_rate.alias("base_rate"),
        (-0.8 - 1.7 * rng.uniform("elasticity", SKU)).alias("elasticity"),
        (-0.2 + 0.5 * rng.uniform("growth", SKU)).alias("growth"),
        (0.05 + 0.3 * rng.uniform("weekly_amplitude", SKU)).alias("weekly_amplitude"),
        F.least(F.lit(0.9), season_amplitude).alias("season_amplitude"),
        season_peak_day.alias("season_peak_day"),
        F.when(intermittent, 2.5 * rng.uniform("lumpiness", SKU)).otherwise(0.0).alias("lumpiness"),
        (3.0 + 7.0 * rng.uniform("noise_shape", SKU)).alias("noise_shape"),
        F.floor(PRICE_BLOCK_WEEKS * rng.uniform("price_phase", SKU)).cast("int").alias("price_phase"),
        *[rng.normal(f"item_factor_{k}", SKU).alias(f"item_factor_{k}") for k in range(cfg.latent_factors)],
    )
    return products.select(
        "*",
        F.format_string("%s %s %d", F.col("brand"), F.col("subcategory"), i + 1).alias("name"),
        F.round(F.col("unit_price") * (0.45 + 0.25 * rng.uniform("margin", SKU)), 2).alias("unit_cost"),
        F.log(F.col("base_rate")).alias("popularity"),
    )


def _locations(spark: SparkSession, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """Locations with region, type and demand volume; the first is always a fulfillment center."""
    j = F.col(LOCATION)
    draw = rng.uniform("location_type", LOCATION)
    type_index = F.when(j == 0, F.lit(0))
    cumulative = 0.0
    for number, location_type in enumerate(LOCATION_TYPES):
        cumulative += location_type.share
        type_index = type_index.when(draw < cumulative, F.lit(number))
    type_index = type_index.otherwise(F.lit(len(LOCATION_TYPES) - 1))

    locations = spark.range(cfg.locations, numPartitions=1).select(F.col("id").alias(LOCATION))
    locations = locations.select(LOCATION, type_index.alias("location_type_index"))
    kind = F.col("location_type_index")
    volume = _pick([t.volume for t in LOCATION_TYPES], kind) * F.exp(0.3 * rng.normal("volume", LOCATION))
    locations = locations.select(
        "*",
        location_code(j).alias("location"),
        _pick(REGIONS, rng.index("region", len(REGIONS), LOCATION)).alias("region"),
        _pick([t.name for t in LOCATION_TYPES], kind).alias("location_type"),
        volume.alias("volume_factor"),
        _pick([t.weekly_peak_day for t in LOCATION_TYPES], kind).alias("weekly_peak_day"),
        (_pick([t.transit_days for t in LOCATION_TYPES], kind) + rng.uniform("transit", LOCATION)).alias(
            "transit_days"
        ),
    )
    label = _pick([t.label for t in LOCATION_TYPES], kind)
    return locations.select("*", F.format_string("%s %s %d", F.col("region"), label, j + 1).alias("name"))


def _assortment(products: DataFrame, locations: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """The SKU-locations carried: a home location per SKU plus others, `assortment_share` in all."""
    if cfg.locations == 1:
        other_share = 1.0
    else:
        other_share = min(1.0, max(0.0, (cfg.assortment_share * cfg.locations - 1.0) / (cfg.locations - 1.0)))
    home = rng.index("home_location", cfg.locations, SKU)
    carried = (F.col(LOCATION) == home) | (rng.uniform("assortment", SKU, LOCATION) < other_share)
    return products.crossJoin(F.broadcast(locations)).where(carried)


def holiday_dates(country: str, first: dt.date, last: dt.date) -> list[tuple[dt.date, str]]:
    """The public holidays of `country` from `first` to `last` (inclusive), from `holidays`.

    Raises:
        ConfigError: the `holidays` package has no calendar for `country`.
    """
    import holidays

    try:
        calendar = holidays.country_holidays(country, years=range(first.year, last.year + 1))
    except NotImplementedError:
        raise ConfigError(f"generate.country: the holidays package has no calendar for {country!r}") from None
    return sorted((day, name) for day, name in calendar.items() if first <= day <= last)


def _calendar(spark: SparkSession, cfg: GeneratorConfig) -> DataFrame:
    """One row per day: day index `t` (int), date, weekday (Monday 0), day of year, holiday flag.

    The holidays are a few dozen rows built on the driver and broadcast-joined.
    """
    holidays_frame = spark.createDataFrame(
        holiday_dates(cfg.country, cfg.start_date, cfg.end_date), "date date, holiday string"
    )
    days = spark.range(cfg.days, numPartitions=1).select(F.col("id").cast("int").alias(DAY))
    days = days.select(DAY, F.date_add(F.lit(cfg.start_date), F.col(DAY)).alias("date"))
    return days.join(F.broadcast(holidays_frame), "date", "left").select(
        DAY,
        "date",
        ((F.dayofweek("date") + 5) % 7).alias("day_of_week"),
        F.dayofyear("date").alias("day_of_year"),
        F.col("holiday").isNotNull().alias("is_holiday"),
    )


def _stockout_spell(cfg: GeneratorConfig, week: str, hashed: str, name: str) -> list[Column]:
    """`<name>_start` and `<name>_end` (day indices, end exclusive) of the stockout spell of `week`.

    A SKU-location-week holds a spell with the chance that one starts on any of its 7 days; it starts
    on a random day of the week and lasts at most a week, so the spells of the current and the
    previous week are all that can cover a day. Without a spell both are -1. The three draws come
    from the week's hash column `hashed`.
    """
    spell_chance = 1.0 - (1.0 - cfg.stockout_rate) ** 7
    has_spell = _Random.part(hashed, 0, 3) < spell_chance
    first = _week_start(cfg, F.col(week)) + F.floor(7 * _Random.part(hashed, 1, 3))
    extra_days = draws.geometric(F.lit(STOCKOUT_MEAN_EXTRA_DAYS), _Random.part(hashed, 2, 3))
    length = F.least(F.lit(7.0), 1.0 + extra_days)
    return [
        F.when(has_spell, first).otherwise(-1).cast("int").alias(f"{name}_start"),
        F.when(has_spell, first + length).otherwise(-1).cast("int").alias(f"{name}_end"),
    ]


def _week_start(cfg: GeneratorConfig, week: Column) -> Column:
    """Day index of the Monday of `week` (week 0 holds the first day; it may start before it)."""
    return week * 7 - cfg.start_date.weekday()


def _week_of(cfg: GeneratorConfig, day: Column) -> Column:
    """The week (Monday to Sunday) of a day index."""
    return F.floor((day + cfg.start_date.weekday()) / 7).cast("int")


SERIES_COLUMNS = (
    SKU,
    LOCATION,
    "sku",
    "location",
    "unit_price",
    "launch_day",
    "is_intermittent",
    "base_rate",
    "elasticity",
    "growth",
    "weekly_amplitude",
    "season_amplitude",
    "season_peak_day",
    "lumpiness",
    "noise_shape",
    "price_phase",
    "volume_factor",
    "weekly_peak_day",
)


def _weekly_state(weeks: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """Per SKU-location-week (column `week`): price, promotion, the demand factor they make, stockouts.

    Promotions run Monday to Sunday and regular prices change between quarters of 13 weeks, so both
    are decided once a week rather than every day; so are the stockout spells.
    """
    week = F.col("week")
    weeks = weeks.select(
        "*",
        F.floor((week + F.col("price_phase")) / PRICE_BLOCK_WEEKS).alias("price_quarter"),
        (week - 1).alias("previous_week"),
    )
    weeks = weeks.select(
        "*",
        rng.hash("price", SKU, "price_quarter").alias("price_hash"),
        rng.hash("promo", SKU, "week").alias("promo_hash"),
        rng.hash("stockout", SKU, LOCATION, "week").alias("spell_hash"),
        rng.hash("stockout", SKU, LOCATION, "previous_week").alias("previous_spell_hash"),
    )
    price_level = F.when(
        rng.part("price_hash", 0, 2) < PRICE_CHANGE_CHANCE,
        1.0 + PRICE_CHANGE_SIZE * (2.0 * rng.part("price_hash", 1, 2) - 1.0),
    ).otherwise(1.0)
    promo = rng.part("promo_hash", 0, 2) < cfg.promo_rate
    discount = F.when(promo, 0.1 + 0.3 * rng.part("promo_hash", 1, 2)).otherwise(0.0)
    weeks = weeks.select(
        "*",
        promo.alias("promo"),
        F.round(F.col("unit_price") * price_level * (1.0 - discount), 2).alias("price"),
        *_stockout_spell(cfg, "week", "spell_hash", "spell"),
        *_stockout_spell(cfg, "previous_week", "previous_spell_hash", "previous_spell"),
    )
    price_effect = F.pow(F.col("price") / F.col("unit_price"), F.col("elasticity"))
    promo_lift = F.when(F.col("promo"), 1.0 + PROMO_DISPLAY_LIFT).otherwise(1.0)
    interest = _interest(rng, "previous_week")  # last week's interest sells this week
    return weeks.select(
        "*", (F.col("base_rate") * F.col("volume_factor") * price_effect * promo_lift * interest).alias("week_rate")
    )


def _interest(rng: _Random, week: str) -> Column:
    """The interest shock of SKU and `week` (an int week column): lognormal with mean 1."""
    return F.exp(INTEREST_SIGMA * rng.normal("interest", SKU, week) - INTEREST_SIGMA**2 / 2.0)


def _view_weeks(products: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """Per SKU: `view_weeks` (its weeks from launch on) and `view_cdf`, their cumulative share of views.

    A week's share is its interest times the days of it inside the period (the first and last may
    be partial), so a view lands in a week in proportion to the interest of that week.
    """
    first_day = F.greatest(F.lit(0), F.col("launch_day"))
    weeks = products.select(
        SKU,
        "launch_day",
        F.explode(F.sequence(_week_of(cfg, first_day), _week_of(cfg, F.lit(cfg.days - 1)))).alias("week"),
    )
    start = F.greatest(_week_start(cfg, F.col("week")), F.greatest(F.lit(0), F.col("launch_day")))
    end = F.least(_week_start(cfg, F.col("week")) + 6, F.lit(cfg.days - 1))
    weeks = weeks.select(SKU, "week", (_interest(rng, "week") * (end - start + 1)).alias("mass"))
    ordered = weeks.groupBy(SKU).agg(F.array_sort(F.collect_list(F.struct("week", "mass"))).alias("weeks"))
    masses = F.transform("weeks", lambda w: w["mass"])
    cumulative = F.transform(
        masses, lambda _m, i: F.aggregate(F.slice(masses, 1, i + 1), F.lit(0.0), lambda acc, x: acc + x)
    )
    total = F.aggregate(masses, F.lit(0.0), lambda acc, x: acc + x)
    return ordered.select(
        SKU,
        F.transform("weeks", lambda w: w["week"]).alias("view_weeks"),
        F.transform(cumulative, lambda c: c / total).alias("view_cdf"),
    )


def _daily_state(days: DataFrame, calendar: DataFrame, cfg: GeneratorConfig) -> DataFrame:
    """Per SKU-location-day (column `t`, with its week's state): stock state and demand rate."""
    t = F.col(DAY)
    days = days.join(F.broadcast(calendar), DAY)
    weekly = 1.0 + F.col("weekly_amplitude") * F.cos(
        2.0 * math.pi * (F.col("day_of_week") - F.col("weekly_peak_day")) / 7.0
    )
    yearly = 1.0 + F.col("season_amplitude") * F.cos(
        2.0 * math.pi * (F.col("day_of_year") - F.col("season_peak_day")) / 365.25
    )
    trend = F.exp(F.col("growth") * t / 365.25)
    holiday_lift = F.when(F.col("is_holiday"), 1.0 + HOLIDAY_UPLIFT).otherwise(1.0)
    ramp = F.least(F.lit(1.0), (t - F.col("launch_day") + 1) / float(LAUNCH_RAMP_DAYS))
    out_of_stock = ((t >= F.col("spell_start")) & (t < F.col("spell_end"))) | (
        (t >= F.col("previous_spell_start")) & (t < F.col("previous_spell_end"))
    )
    return days.select(
        "*",
        (F.col("week_rate") * weekly * yearly * trend * holiday_lift * ramp).alias("expected_rate"),
        (~out_of_stock).alias("in_stock"),
        ((t == F.col("spell_start")) | (t == F.col("previous_spell_start"))).alias("stockout_starts"),
    )


def _series(assortment: DataFrame, partitions: int) -> DataFrame:
    """The SKU-locations with what their demand needs, spread evenly over `partitions`.

    The shuffle is tiny (one row per series) and also ends the code-generated stage of the product
    and location logic, so the daily logic compiles to methods small enough for the JIT. Sorting the
    series of a partition fixes the row order of the part files: a rerun writes the same files.
    """
    return assortment.select(*SERIES_COLUMNS).repartition(partitions, SKU, LOCATION).sortWithinPartitions(SKU, LOCATION)


def _daily_panel(series: DataFrame, calendar: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """Every carried SKU-location-day from launch on, with price, promotion, stock state and demand rate.

    Each series is exploded into its weeks (where prices, promotions and stockout spells are
    decided) and each week into its days, from the launch (or the first day) to the last: no rows
    before a launch, no SKU x location x day cross join, and the weekly and the daily logic compile
    to separate methods, each small enough for the JVM's JIT compiler (8 KB of bytecode).

    Returns the keys (`sku_index`, `location_index`, `t`), `sku`, `location`, `date`, `price`, `promo`,
    `in_stock`, `stockout_starts` (first day of a spell), `expected_rate` (the demand rate before
    noise, units/day), `rate` (with noise), `lumpiness` and four uniforms of the day.
    """
    first_day = F.greatest(F.lit(0), F.col("launch_day"))
    last_week = _week_of(cfg, F.lit(cfg.days - 1))
    weeks = series.select("*", F.explode(F.sequence(_week_of(cfg, first_day), last_week)).alias("week"))
    weeks = _weekly_state(weeks, cfg, rng)
    week_start = _week_start(cfg, F.col("week"))
    days_of_week = F.sequence(F.greatest(week_start, first_day), F.least(week_start + 6, F.lit(cfg.days - 1)))
    days = _daily_state(weeks.select("*", F.explode(days_of_week).alias(DAY)), calendar, cfg)

    days = days.select(
        "*",
        rng.hash("day", SKU, LOCATION, DAY).alias("day_hash"),
        rng.hash("demand", SKU, LOCATION, DAY).alias("demand_hash"),
    )
    # Smooth sellers get gamma noise with mean 1: their counts are over-dispersed, like real sales.
    noise = F.when(F.col("is_intermittent"), F.lit(1.0)).otherwise(
        draws.gamma(F.col("noise_shape"), rng.part("day_hash", 0, 4), rng.part("day_hash", 1, 4)) / F.col("noise_shape")
    )
    return days.select(
        *PANEL_KEYS,
        "stockout_starts",
        "lumpiness",
        "expected_rate",
        (F.col("expected_rate") * noise).alias("rate"),
        rng.part("demand_hash", 0, 2).alias("demand_uniform_a"),
        rng.part("demand_hash", 1, 2).alias("demand_uniform_b"),
        rng.part("day_hash", 2, 4).alias("lumps_uniform"),
        rng.part("day_hash", 3, 4).alias("partial_uniform"),
    )


def _with_quantity(panel: DataFrame) -> DataFrame:
    """Add `quantity`, the units sold (long), to every day of the panel.

    Demand is a Poisson number of purchase occasions, plus extra units per occasion for the lumpy
    slow movers. Out of stock, the spell's first day sells part of the demand, later days nothing.
    """
    occasions = draws.poisson(F.col("rate"), F.col("demand_uniform_a"), F.col("demand_uniform_b"))
    rows = panel.withColumn("occasions", occasions)
    lumps = draws.geometric(F.col("lumpiness") * F.col("occasions"), F.col("lumps_uniform"))
    demand = F.col("occasions") + F.when(F.col("occasions") > 0, lumps).otherwise(0.0)
    partial = F.floor(demand * F.col("partial_uniform"))
    quantity = F.when(F.col("in_stock"), demand).when(F.col("stockout_starts"), partial).otherwise(0.0)
    return rows.select(
        *PANEL_KEYS,
        quantity.cast("long").alias("quantity"),
    )


def bad_row_kinds(output_format: OutputFormat) -> tuple[str, ...]:
    """The kinds of bad sales rows a file format can hold: CSV all, Parquet the typed ones."""
    if output_format == "csv":
        return BAD_ROW_KINDS
    return tuple(kind for kind in BAD_ROW_KINDS if kind not in TEXT_ONLY_BAD_KINDS)


def _sales(panel: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """The sales extract: the days that sold or were out of stock, plus planted bad rows.

    A `bad_row_share` of rows, chosen by hash, become one kind of bad row each: a null SKU, a negative
    quantity without `is_return`, an exact duplicate, and in CSV also an unparseable date and a
    non-numeric quantity. In CSV every column is text; in Parquet the columns are typed.

    Each day of the panel becomes `copies` rows: 0 (in stock, nothing sold), 1, or 2 (a planted
    duplicate), by exploding an array of that many row structs. Days are dropped this way, not with
    a filter, on purpose: Spark pushes a filter down through the projections below it, inlining the
    whole demand model into the condition, where it is computed twice and its generated code
    outgrows the JVM's limits. Columns made by an explode are opaque to that rewrite, so neither this
    step nor a caller's filter on the returned frame (`quantity < 0`, `sku IS NULL`) can trigger it.
    """
    textual = cfg.format == "csv"
    kinds = bad_row_kinds(cfg.format)
    rows = panel.withColumn("bad_row_hash", rng.hash("bad_row", SKU, LOCATION, DAY))
    is_bad = rng.part("bad_row_hash", 0, 2) < cfg.bad_row_share
    bad_kind = F.floor(rng.part("bad_row_hash", 1, 2) * len(kinds))
    rows = rows.withColumn("bad_kind", F.when(is_bad, bad_kind).otherwise(-1))

    def is_kind(kind: str) -> Column:
        return F.col("bad_kind") == kinds.index(kind) if kind in kinds else F.lit(False)

    sku = F.when(is_kind("null_sku"), F.lit(None).cast("string")).otherwise(F.col("sku"))
    quantity = F.when(is_kind("negative_quantity"), -(F.col("quantity") + 1)).otherwise(F.col("quantity"))
    date: Column = F.col("date")
    if textual:
        quantity = F.when(is_kind("non_numeric_quantity"), F.lit(NON_NUMERIC_QUANTITY)).otherwise(
            quantity.cast("string")
        )
        date = F.when(is_kind("unparseable_date"), F.lit(BAD_DATE)).otherwise(F.col("date").cast("string"))
    columns = {
        "sku": sku,
        "location": F.col("location"),
        "date": date,
        "quantity": quantity,
        "price": F.col("price"),
        "promo": F.col("promo"),
        "in_stock": F.col("in_stock"),
        "is_return": F.lit(False),
    }
    copies = F.when((F.col("quantity") <= 0) & F.col("in_stock"), 0).when(is_kind("duplicate"), 2).otherwise(1)
    row = F.struct(*[(column.cast("string") if textual else column).alias(name) for name, column in columns.items()])
    # No array (rather than an empty one) for dropped days: their row struct is never built.
    return rows.select(F.inline(F.when(copies > 0, F.array_repeat(row, copies.cast("int")))))


def _pack_size(rng: _Random) -> Column:
    """Units per case of a SKU (the same from every supplier); needs the `sku_index` column."""
    sizes = (1, 1, 2, 4, 6, 12, 24)
    return _pick(sizes, rng.index("pack_size", len(sizes), SKU)).cast("long")


def _suppliers(assortment: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """One supplier per SKU-location: mostly the SKU's main supplier, for a fifth a second source."""
    supplier_count = max(3, math.ceil(cfg.skus / 40))
    supplier = F.when(
        rng.uniform("second_source", SKU, LOCATION) < 0.2, rng.index("second_supplier", supplier_count, SKU)
    ).otherwise(rng.index("main_supplier", supplier_count, SKU))
    with_supplier = assortment.select(
        SKU, LOCATION, "sku", "location", "unit_cost", "transit_days", supplier.alias("supplier_index")
    )
    lead_time_mean = 3.0 + 25.0 * rng.uniform("supplier_lead_time", "supplier_index") ** 2 + F.col("transit_days")
    lead_time_spread = 0.1 + 0.3 * rng.uniform("supplier_reliability", "supplier_index")
    supplier_price = 0.95 + 0.1 * rng.uniform("supplier_price", SKU, "supplier_index")
    return with_supplier.select(
        "sku",
        "location",
        F.format_string("SUP-%04d", F.col("supplier_index") + 1).alias("supplier_id"),
        F.round(lead_time_mean, 1).alias("lead_time_mean_days"),
        F.round(lead_time_mean * lead_time_spread, 2).alias("lead_time_std_days"),
        (_pack_size(rng) * (1 + rng.index("moq", 4, SKU, "supplier_index"))).alias("moq"),
        _pack_size(rng).alias("pack_size"),
        F.round(15.0 + 135.0 * rng.uniform("ordering_cost", "supplier_index"), 2).alias("ordering_cost"),
        F.round(F.col("unit_cost") * supplier_price, 2).alias("unit_cost"),
    )


def _inventory(series: DataFrame, calendar: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """On hand, on order and backorders per SKU-location at the end of the last day.

    Sized from the demand rate of that day: a few days to six weeks of cover when in stock, nothing
    on hand and some backorders when out of stock, and open orders (whole cases) for about half.
    The last day's state is computed for that day alone, with the same weekly and daily logic as
    the sales.
    """
    last_day = F.lit(cfg.days - 1)
    weeks = _weekly_state(series.select("*", _week_of(cfg, last_day).alias("week")), cfg, rng)
    last = _daily_state(weeks.select("*", last_day.alias(DAY)), calendar, cfg)
    rate = F.col("expected_rate")
    pack = _pack_size(rng)
    cover = rate * (4.0 + 40.0 * rng.uniform("cover", SKU, LOCATION))
    on_order = F.ceil(rate * (7.0 + 14.0 * rng.uniform("on_order_cover", SKU, LOCATION)) / pack) * pack
    backorders = F.round(rate * (1.0 + 3.0 * rng.uniform("backorders", SKU, LOCATION)))
    return last.select(
        "sku",
        "location",
        F.col("date").alias("snapshot_date"),
        F.when(F.col("in_stock"), F.greatest(F.lit(1.0), F.round(cover))).otherwise(0).cast("long").alias("on_hand"),
        F.when(rng.uniform("on_order", SKU, LOCATION) < 0.45, on_order).otherwise(0).cast("long").alias("on_order"),
        F.when(~F.col("in_stock"), backorders).otherwise(0).cast("long").alias("backorders"),
    )


def _interactions(spark: SparkSession, products: DataFrame, cfg: GeneratorConfig, rng: _Random) -> DataFrame:
    """User events (view, add_to_cart, purchase) from latent tastes; sized users x views per user.

    Each view scores `CANDIDATES_PER_VIEW` random products by popularity plus the alignment of the
    user's and the product's latent factors, and keeps the best after adding Gumbel noise: a sample
    from the softmax of the scores, without a users x products cross join. Views of well-aligned
    products turn into add-to-carts and purchases more often, so every event type carries the signal.
    """
    factors = range(cfg.latent_factors)
    activity = draws.gamma(2.0, rng.uniform("activity:a", USER), rng.uniform("activity:b", USER)) / 2.0
    view_count = F.least(
        F.lit(10 * cfg.interactions_per_user),
        F.greatest(F.lit(1), F.floor(cfg.interactions_per_user * activity + 0.5)),
    ).cast("int")
    users = spark.range(cfg.users, numPartitions=max(1, math.ceil(cfg.users / 100_000)))
    views = users.select(F.col("id").alias(USER)).select(
        USER,
        *[rng.normal(f"user_factor_{k}", USER).alias(f"user_factor_{k}") for k in factors],
        F.explode(F.sequence(F.lit(0), view_count - 1)).alias(VIEW),
    )
    candidates = views.select("*", F.explode(F.sequence(F.lit(0), F.lit(CANDIDATES_PER_VIEW - 1))).alias("candidate"))
    candidates = candidates.select("*", rng.index("candidate", cfg.skus, USER, VIEW, "candidate").alias(SKU))
    items = products.select(SKU, "popularity", "launch_day", *[f"item_factor_{k}" for k in factors])
    alignment = sum((F.col(f"user_factor_{k}") * F.col(f"item_factor_{k}") for k in factors), F.lit(0.0))
    affinity = alignment / math.sqrt(cfg.latent_factors)
    score = (
        POPULARITY_WEIGHT * F.col("popularity")
        + AFFINITY_WEIGHT * affinity
        + draws.gumbel(rng.uniform("choice", USER, VIEW, "candidate"))
    )
    scored = candidates.join(items, SKU).select(
        USER, VIEW, SKU, "launch_day", score.alias("score"), affinity.alias("affinity")
    )
    # max_by keeps the aggregation buffer fixed-width (a hash aggregate, no sort). Scores carry 52-bit
    # Gumbel noise, so a tie, where max_by could pick either candidate, does not occur in practice.
    chosen = scored.groupBy(USER, VIEW).agg(
        *[F.max_by(column, "score").alias(column) for column in (SKU, "launch_day", "affinity")]
    )

    start_second = int(dt.datetime.combine(cfg.start_date, dt.time(), dt.UTC).timestamp())
    # The week of a view follows the SKU's interest (inverse CDF over its weeks), the moment within
    # the week's days in the period is uniform.
    view_weeks = _view_weeks(products, cfg, rng)
    view_weeks = F.broadcast(view_weeks) if cfg.skus <= 100_000 else view_weeks
    chosen = chosen.join(view_weeks, SKU).sortWithinPartitions(USER, VIEW)  # the same files on every run
    u = rng.uniform("view_week", USER, VIEW)
    position = F.least(F.size(F.filter("view_cdf", lambda c: c < u)), F.size("view_cdf") - 1)
    week = F.element_at("view_weeks", position + 1)
    first_day = F.greatest(_week_start(cfg, week), F.greatest(F.lit(0), F.col("launch_day"))).cast("long")
    last_day = F.least(_week_start(cfg, week) + 6, F.lit(cfg.days - 1)).cast("long")
    span_seconds = (last_day - first_day + 1) * 86_400 - 7_200  # leaves room for the cart and the purchase
    view_second = start_second + first_day * 86_400 + F.floor(rng.uniform("view_time", USER, VIEW) * span_seconds)
    cart_second = view_second + 20 + F.floor(rng.uniform("cart_delay", USER, VIEW) * 900)
    purchase_second = cart_second + 30 + F.floor(rng.uniform("purchase_delay", USER, VIEW) * 3600)
    cart_chance = F.lit(1.0) / (1.0 + F.exp(-CART_LOGIT[0] - CART_LOGIT[1] * F.col("affinity")))
    purchase_chance = F.lit(1.0) / (1.0 + F.exp(-PURCHASE_LOGIT[0] - PURCHASE_LOGIT[1] * F.col("affinity")))
    carted = rng.uniform("cart", USER, VIEW) < cart_chance
    purchased = carted & (rng.uniform("purchase", USER, VIEW) < purchase_chance)

    def event(name: str, second: Column) -> Column:
        return F.struct(F.lit(name).alias("event"), F.timestamp_seconds(second).alias("timestamp"))

    events = chosen.select(
        F.format_string("U%07d", F.col(USER) + 1).alias("user_id"),
        sku_code(F.col(SKU)).alias("sku"),
        location_code(rng.index("user_home", cfg.locations, USER)).alias("location"),
        F.explode(
            F.array(
                event("view", view_second),
                F.when(carted, event("add_to_cart", cart_second)),
                F.when(purchased, event("purchase", purchase_second)),
            )
        ).alias("event"),
    ).where(F.col("event").isNotNull())
    return events.select("user_id", "sku", "event.event", "event.timestamp", "location")


def generate_dataset(
    spark: SparkSession, cfg: GeneratorConfig, *, partitions: int | None = None
) -> dict[str, DataFrame]:
    """Build the synthetic raw input files as DataFrames, one per entity; nothing is written.

    Args:
        spark: the session to build on.
        cfg: scale, shares, seed and output format (the format decides which bad rows are planted,
            and whether the `sales` columns are text (CSV) or typed (Parquet)).
        partitions: Spark partitions of the SKU-location-day panel; None sizes them from the scale.
            The data do not depend on it.

    Returns:
        `{entity: DataFrame}` for `sales`, `products`, `locations`, `interactions`, `suppliers` and
        `inventory`, with the columns of docs/tables.md "Raw input files" (see `OUTPUT_COLUMNS`).
        `products.demand_profile` (smooth or intermittent) is the generating truth, kept for tests
        and benchmarks.

    Example:
        ```python
        frames = generate_dataset(spark, GeneratorConfig(skus=20, locations=3, days=120))
        frames["sales"].show()
        ```
    """
    if partitions is not None and partitions < 1:
        raise ConfigError(f"partitions must be >= 1, got {partitions}")
    rng = _Random(cfg.seed)
    products = _products(spark, cfg, rng)
    locations = _locations(spark, cfg, rng)
    assortment = _assortment(products, locations, cfg, rng)
    calendar = _calendar(spark, cfg)
    series = _series(assortment, partitions or _panel_partitions(spark, cfg))
    panel = _daily_panel(series, calendar, cfg, rng)

    series_files = max(1, math.ceil(cfg.skus * cfg.locations * cfg.assortment_share / 1_000_000))
    frames = {
        "sales": _sales(_with_quantity(panel), cfg, rng),
        "products": products.select(*OUTPUT_COLUMNS["products"]),
        "locations": locations.select(*OUTPUT_COLUMNS["locations"]),
        "interactions": _interactions(spark, products, cfg, rng),
        "suppliers": _suppliers(assortment, cfg, rng).coalesce(series_files),
        "inventory": _inventory(series, calendar, cfg, rng).coalesce(series_files),
    }
    return {entity: frames[entity] for entity in ENTITIES}
