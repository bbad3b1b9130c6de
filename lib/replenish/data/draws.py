"""Reproducible random draws for Spark: every number is a hash of (seed, stream, keys).

Spark's `rand()` depends on how rows fall into partitions, so a generator built on it gives other
data when the cluster, the shuffle partitions or the input splits change. Here each draw is instead
`xxhash64(seed, stream, *keys)` mapped to a uniform in (0, 1) and turned into the wanted distribution
by a closed formula (Box-Muller, inverse CDF, Wilson-Hilferty). A row's numbers then depend only on
its keys: the same seed gives the same data on a laptop and on a thousand-core cluster.

The formulas are written once against a tiny math namespace (`SPARK` for Spark columns, `NUMPY` for
numpy arrays), so the unit tests check means and variances on numpy and the Spark tests check that
the column expressions give the very same numbers.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Protocol, TypeAlias

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

Values: TypeAlias = Any
"""A Spark column, a numpy array or a number: what the formulas below compute on (one kind per call)."""
ColumnOrName: TypeAlias = "Column | str"

_STREAM_NAME = re.compile(r"[A-Za-z0-9_:]+")
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A uniform takes the top 52 bits of the hash: with the half-step offset, (2**52 - 0.5) / 2**52 is
# still a double below 1 (with 53 bits it would round up to exactly 1).
_UNIFORM_BITS = 52

# Poisson draws below this rate use the exact inverse CDF; from it up a Cornish-Fisher corrected
# normal approximation (within 1% of the Poisson in total variation from a rate of 2 up).
POISSON_EXACT_BELOW = 2.0
# Terms of the inverse CDF: counts 0 .. 12; P(N > 12) is below 1e-6 for every rate under 2.
POISSON_TERMS = 13

# Irrational steps of the Weyl sequences used for exact shares (`stratified`).
GOLDEN_STEP = (math.sqrt(5.0) - 1.0) / 2.0
SQRT2_STEP = math.sqrt(2.0) - 1.0


def _as_column(value: Any) -> Column:
    return value if isinstance(value, Column) else F.lit(value)


class _SparkMath:
    """Elementwise maths on Spark columns (Python numbers are taken as literals)."""

    @staticmethod
    def sqrt(x: Values) -> Column:
        return F.sqrt(_as_column(x))

    @staticmethod
    def log(x: Values) -> Column:
        return F.log(_as_column(x))

    @staticmethod
    def exp(x: Values) -> Column:
        return F.exp(_as_column(x))

    @staticmethod
    def cos(x: Values) -> Column:
        return F.cos(_as_column(x))

    @staticmethod
    def floor(x: Values) -> Column:
        return F.floor(_as_column(x)).cast("double")

    @staticmethod
    def maximum(x: Values, y: Values) -> Column:
        return F.greatest(_as_column(x), _as_column(y))

    @staticmethod
    def minimum(x: Values, y: Values) -> Column:
        return F.least(_as_column(x), _as_column(y))

    @staticmethod
    def where(condition: Column, if_true: Values, if_false: Values) -> Column:
        return F.when(condition, _as_column(if_true)).otherwise(_as_column(if_false))

    @staticmethod
    def indicator(condition: Column) -> Column:
        """1.0 where `condition` holds, else 0.0."""
        return condition.cast("double")

    @staticmethod
    def bits(hashed: Values, shift: int, count: int) -> Column:
        """`count` bits of a 64-bit hash from bit `shift` up, as a non-negative double."""
        shifted = F.shiftrightunsigned(_as_column(hashed), shift)
        return (shifted if shift + count == 64 else shifted.bitwiseAND(F.lit((1 << count) - 1))).cast("double")


class _NumpyMath:
    """The same operations on numpy arrays: the reference the unit tests run."""

    @staticmethod
    def sqrt(x: Values) -> np.ndarray:
        return np.sqrt(x)

    @staticmethod
    def log(x: Values) -> np.ndarray:
        return np.log(x)

    @staticmethod
    def exp(x: Values) -> np.ndarray:
        return np.exp(x)

    @staticmethod
    def cos(x: Values) -> np.ndarray:
        return np.cos(x)

    @staticmethod
    def floor(x: Values) -> np.ndarray:
        return np.floor(x)

    @staticmethod
    def maximum(x: Values, y: Values) -> np.ndarray:
        return np.maximum(x, y)

    @staticmethod
    def minimum(x: Values, y: Values) -> np.ndarray:
        return np.minimum(x, y)

    @staticmethod
    def where(condition: Values, if_true: Values, if_false: Values) -> np.ndarray:
        return np.where(condition, if_true, if_false)

    @staticmethod
    def indicator(condition: Values) -> np.ndarray:
        """1.0 where `condition` holds, else 0.0."""
        return np.asarray(condition, dtype=np.float64)

    @staticmethod
    def bits(hashed: Values, shift: int, count: int) -> np.ndarray:
        """`count` bits of 64-bit hashes from bit `shift` up, as non-negative doubles."""
        unsigned = np.asarray(hashed, dtype=np.int64).view(np.uint64)
        return ((unsigned >> np.uint64(shift)) & np.uint64((1 << count) - 1)).astype(np.float64)


class Math(Protocol):
    """The elementwise operations the formulas use; `SPARK` and `NUMPY` implement them."""

    def sqrt(self, x: Values) -> Values: ...
    def log(self, x: Values) -> Values: ...
    def exp(self, x: Values) -> Values: ...
    def cos(self, x: Values) -> Values: ...
    def floor(self, x: Values) -> Values: ...
    def maximum(self, x: Values, y: Values) -> Values: ...
    def minimum(self, x: Values, y: Values) -> Values: ...
    def where(self, condition: Values, if_true: Values, if_false: Values) -> Values: ...
    def indicator(self, condition: Values) -> Values: ...
    def bits(self, hashed: Values, shift: int, count: int) -> Values: ...


SPARK: Math = _SparkMath()
NUMPY: Math = _NumpyMath()


def hash_to_uniform(hashed: Values, xp: Math = SPARK, *, part: int = 0, parts: int = 1) -> Values:
    """Map a signed 64-bit hash to a uniform number in the open interval (0, 1).

    One hash can feed several independent uniforms: `parts` of them are cut from disjoint bit ranges
    (`min(52, 64 // parts)` bits each, the highest first), which saves hashing in the hot loop. The
    half-step offset keeps 0 and 1 out, so `log(u)` and `log(1 - u)` are always finite.

    Args:
        hashed: a 64-bit integer column (Spark `xxhash64`) or an int64 array.
        xp: `SPARK` or `NUMPY`.
        part: which of the uniforms, `0 .. parts - 1`.
        parts: how many uniforms the hash is cut into (1 to 4).
    """
    if not 1 <= parts <= 4 or not 0 <= part < parts:
        raise ValueError(f"part must be in 0 .. parts - 1 and parts in 1 .. 4, got part {part} of {parts}")
    bits = min(_UNIFORM_BITS, 64 // parts)
    return (xp.bits(hashed, 64 - bits * (part + 1), bits) + 0.5) * 2.0**-bits


def key_hash(seed: int, stream: str, *keys: ColumnOrName) -> Column:
    """`xxhash64(seed, stream, *keys)`: the 64 random bits behind one or more uniforms of a row.

    Args:
        seed: the generator seed.
        stream: names what the number is for (`"promo"`, `"stockout"`), so two uses of the same keys
            draw independent numbers; letters, digits, `_` and `:` only.
        keys: the columns identifying the thing drawn for (SKU index, day index...), as columns or
            column names. Give them the same types everywhere: an int and a long of equal value hash
            differently.
    """
    if not keys:
        raise ValueError("a random draw needs at least one key column")
    if not _STREAM_NAME.fullmatch(stream):
        raise ValueError(f"stream names may hold letters, digits, '_' and ':' only, got {stream!r}")
    if all(isinstance(key, str) and _COLUMN_NAME.fullmatch(key) for key in keys):
        # One SQL expression is one call into the JVM; the generator builds hundreds of these.
        return F.expr(f"xxhash64({int(seed)}, '{stream}', {', '.join(f'`{key}`' for key in keys)})")
    return F.xxhash64(F.lit(seed), F.lit(stream), *keys)


def uniform(seed: int, stream: str, *keys: ColumnOrName) -> Column:
    """A uniform draw in (0, 1) that depends only on `seed`, `stream` and the row's `keys`.

    See `key_hash` for the arguments.

    Example:
        ```python
        days.withColumn("u", uniform(42, "promo", "sku_index", "week"))
        ```
    """
    return hash_to_uniform(key_hash(seed, stream, *keys), SPARK)


def seed_offset(seed: int, stream: str) -> float:
    """A uniform in [0, 1) computed on the driver from `seed` and `stream` (for constants, not rows)."""
    digest = hashlib.blake2b(f"{seed}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def stratified(index: Values, step: float, offset: float, xp: Math = SPARK) -> Values:
    """A Weyl sequence `frac(index * step + offset)`: evenly spread in [0, 1), unlike hashes.

    `stratified(i, ...) < share` selects a share of the indices that is exact to within a couple of
    items for any count, where independent uniforms would be off by a binomial error (a 35% share of
    20 SKUs could come out as 20%). Different `step`s (irrationals) give unrelated selections.
    """
    position = index * step + offset
    return position - xp.floor(position)


def standard_normal(u1: Values, u2: Values, xp: Math = SPARK) -> Values:
    """A standard normal draw from two independent uniforms (Box-Muller)."""
    return xp.sqrt(-2.0 * xp.log(u1)) * xp.cos(2.0 * math.pi * u2)


def gumbel(u: Values, xp: Math = SPARK) -> Values:
    """A standard Gumbel draw; `argmax(score + gumbel)` samples from `softmax(score)`."""
    return -xp.log(-xp.log(u))


def gamma(shape: Values, u1: Values, u2: Values, xp: Math = SPARK) -> Values:
    """A Gamma(shape, scale 1) draw by the Wilson-Hilferty cube-of-normal transform.

    Exact inverse CDFs of the gamma have no closed form; the cube transform keeps mean and variance
    within about 1% for shape >= 1, which is what it is used for (demand noise with mean 1).

    Args:
        shape: the shape, >= 1 (a number or a column).
        u1, u2: independent uniforms.
    """
    if isinstance(shape, (int, float)) and shape < 1:
        raise ValueError(f"gamma() is accurate for shape >= 1 only, got {shape}")
    spread = xp.sqrt(1.0 / (9.0 * shape))
    cube_root = 1.0 - 1.0 / (9.0 * shape) + standard_normal(u1, u2, xp) * spread
    return shape * xp.maximum(cube_root, 0.0) ** 3


def geometric(mean: Values, u: Values, xp: Math = SPARK) -> Values:
    """A geometric count (failures before a success, 0, 1, 2, ...) with the given mean.

    Inverse CDF: `floor(log(u) / log(q))` with `q = mean / (1 + mean)`. A mean of 0 gives 0.
    """
    keep_going = xp.maximum(mean, 1e-12) / (1.0 + xp.maximum(mean, 1e-12))
    return xp.where(mean > 0, xp.floor(xp.log(u) / xp.log(keep_going)), 0.0)


def _poisson_normal_approximation(rate: Values, u1: Values, u2: Values, xp: Math) -> Values:
    """Cornish-Fisher expansion (to third order) of the Poisson quantile, rounded to a count.

    `rate + sqrt(rate) z + (z^2 - 1) / 6 + (z - z^3) / (72 sqrt(rate))`: the normal quantile corrected
    for the Poisson's skewness and kurtosis. For rates from 2 up, the mean is within 0.5%, the
    variance within 2.5% and the distribution within 1% (total variation) of the exact Poisson.
    """
    z = standard_normal(u1, u2, xp)
    root = xp.sqrt(rate)
    quantile = rate + root * z + (z * z - 1.0) / 6.0 + (z - z * z * z) / (72.0 * xp.maximum(root, 1e-12))
    return xp.maximum(xp.floor(quantile + 0.5), 0.0)


def poisson(rate: Values, u1: Values, u2: Values, xp: Math = SPARK) -> Values:
    """A Poisson(`rate`) count (as a double) from two independent uniforms.

    Below `POISSON_EXACT_BELOW` the exact inverse CDF: the count is the number of cumulative
    probabilities `F(k)` that `u1` exceeds. Each term `exp(k log(rate) - rate - log(k!))` is computed on
    its own rather than from the previous one, so the expression grows with the square of the number
    of terms, not the cube. From `POISSON_EXACT_BELOW` up, a Cornish-Fisher corrected normal
    approximation (`u1`, `u2`).

    Both branches are computed and blended arithmetically instead of with `when`: Spark does not
    share common subexpressions inside conditional branches, so the inverse CDF in a branch would
    generate hundreds of kilobytes of code.

    Args:
        rate: the Poisson mean, >= 0 (a column or an array).
        u1, u2: independent uniforms in (0, 1).
        xp: `SPARK` or `NUMPY`.
    """
    log_rate = xp.log(xp.maximum(rate, 1e-300))
    cumulative = xp.exp(-rate)
    count = xp.indicator(u1 > cumulative)
    for k in range(1, POISSON_TERMS):
        cumulative = cumulative + xp.exp(k * log_rate - rate - math.lgamma(k + 1))
        count = count + xp.indicator(u1 > cumulative)
    exact = xp.indicator(rate < POISSON_EXACT_BELOW)
    return exact * count + (1.0 - exact) * _poisson_normal_approximation(rate, u1, u2, xp)
