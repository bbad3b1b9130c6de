"""Standard normal safety factors: z for a cycle service level, k for a fill rate.

* z = Φ⁻¹(α) depends only on the configured targets, a handful of numbers, so it is computed on the
  driver with scipy (`cycle_service_factor`) and inlined into the query as literals.
* k solves G(k) = t, where G(k) = φ(k) − k·(1 − Φ(k)) is the standard normal loss function and
  t = (1 − β)·Q / σ differs per row. Spark SQL has no erf, and Newton iterations or lookup tables
  spelled out in SQL make expressions that the SQL parser takes seconds on. So G⁻¹ is fitted once,
  on the driver, from scipy's G: in u = √(−2·ln t), where k(u) is nearly linear, a degree-12
  Chebyshev fit over t ∈ [1e-12, G(0)] is exact to 1e-5 and evaluates as a short polynomial, identically
  on numpy arrays and as a Spark SQL expression (see `ops`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev
from scipy.stats import norm

from replenish.inventory.ops import Ops

LOSS_AT_ZERO = 1.0 / math.sqrt(2.0 * math.pi)  # G(0) = φ(0) ≈ 0.3989
SMALLEST_LOSS = 1e-12  # G(6.8): smaller targets are treated as this one
FIT_DEGREE = 12
# The fit's variable u = √(−2·ln t) spans [U_LOW, U_HIGH] and is mapped onto [-1, 1].
U_LOW = math.sqrt(-2.0 * math.log(LOSS_AT_ZERO))
U_HIGH = math.sqrt(-2.0 * math.log(SMALLEST_LOSS))


def normal_loss(k: Any) -> Any:
    """G(k) = E[(X − k)⁺] for a standard normal X: expected units short per unit of σ (numpy / scipy).

    With a safety factor k, a cycle whose demand has standard deviation σ runs short by σ·G(k)
    units on average, so the fill rate is 1 − σ·G(k) / (units ordered per cycle).
    """
    k = np.asarray(k, dtype=float)
    return norm.pdf(k) - k * norm.sf(k)


@functools.lru_cache(maxsize=1)
def inverse_loss_coefficients() -> tuple[float, ...]:
    """Power-series coefficients c₀ … c₁₂ of k(s) = Σ cᵢ·sⁱ, s the fit variable scaled to [-1, 1].

    G is evaluated with scipy on a dense grid of k; the Chebyshev least-squares fit of k against s is
    converted to a power series (well conditioned on [-1, 1] at this degree).
    """
    k = np.linspace(0.0, 7.0, 200_001)
    loss = normal_loss(k)
    inside = loss >= SMALLEST_LOSS
    scaled = _scaled(np.sqrt(-2.0 * np.log(loss[inside])))
    fit = chebyshev.chebfit(scaled, k[inside], FIT_DEGREE)
    return tuple(float(c) for c in chebyshev.cheb2poly(fit))


def _scaled(u: Any) -> Any:
    return (2.0 * u - (U_LOW + U_HIGH)) / (U_HIGH - U_LOW)


def inverse_normal_loss(target: Any, ops: Ops) -> Any:
    """The safety factor k ≥ 0 with G(k) = target (numpy arrays or Spark SQL, via `ops`).

    A target at or above G(0) ≈ 0.3989 gives k = 0: the cycle quantity alone meets the fill rate, and a
    negative safety stock is never planned. Targets below 1e-12 are treated as 1e-12 (k ≈ 6.8). A
    target of 0 or less (a 100 % fill rate) has no finite answer and is missing (NaN / NULL).

    Args:
        target: (1 − β)·Q / σ for a fill rate β, cycle quantity Q and cycle demand σ.
        ops: `NUMPY` or `SPARK`.
    """
    coefficients = inverse_loss_coefficients()
    scaled = _scaled(ops.sqrt(-2.0 * ops.log(ops.clip(target, SMALLEST_LOSS, LOSS_AT_ZERO))))
    k: Any = coefficients[0]
    for power, coefficient in enumerate(coefficients[1:], start=1):
        k = k + coefficient * scaled**power
    # The fit may stray a few 1e-6 below 0 at t = G(0).
    solved = ops.where(target >= LOSS_AT_ZERO, 0.0, ops.clip(k, 0.0, 10.0))
    return ops.where(target > 0, solved, ops.missing())


@functools.lru_cache(maxsize=64)
def rounding_allowance_coefficients(level: float) -> tuple[float, ...]:
    """Power-series coefficients of r(s), the rounding allowance per unit of excess width, for α = `level`.

    After a review the position sits spread evenly over [S, S + w) (`formulas.rounding_excess_width`), so
    the cycle service achieved is the average of F over that range. With normal protection demand
    (mean μ, spread σ), S = μ + a·σ meets α on average when G(a) − G(a + ω) = (1 − α)·ω, ω = w/σ
    (G the standard normal loss). Lowering S from μ + z·σ to there is an allowance A = w·r with
    r = (z − a)/ω, which runs from 1/2 (ω → 0: the mean excess) down to 1 − α (ω → ∞): less than the
    mean excess, because F flattens above S. r is solved by bisection on a grid of ω and fitted, like
    G⁻¹, as a degree-12 Chebyshev series in s = 2·ω/(1 + ω) − 1 ∈ [-1, 1), to about 1e-3 of r.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"a service level must be in (0, 1), got {level}")
    z = float(norm.ppf(level))
    u = np.linspace(1e-6, 0.999, 2000)
    omega = u / (1.0 - u)
    shortfall = (1.0 - level) * omega
    # G(a) − G(a + ω) falls as a rises: bisect every ω at once between a bracket's ends.
    low, high = -omega - 40.0, np.full_like(omega, z + 1.0)
    for _ in range(80):
        middle = (low + high) / 2.0
        above = normal_loss(middle) - normal_loss(middle + omega) > shortfall
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    a = (low + high) / 2.0
    fit = chebyshev.chebfit(2.0 * u - 1.0, (z - a) / omega, FIT_DEGREE)
    return tuple(float(c) for c in chebyshev.cheb2poly(fit))


def rounding_allowance_variable(width: Any, std: Any, ops: Ops) -> Any:
    """s = 2·ω/(1 + ω) − 1 with ω = w/σ, the variable of `rounding_allowance_share` (1 when σ = 0)."""
    omega = width / ops.where(std > 0, std, 1.0)
    return ops.where(std > 0, 2.0 * omega / (1.0 + omega) - 1.0, 1.0)


def rounding_allowance_share(variable: Any, level: float, ops: Ops) -> Any:
    """r(s): the allowance per unit of excess width for α = `level`, between 1 − α and 1/2 (Horner's rule)."""
    coefficients = rounding_allowance_coefficients(float(level))
    share: Any = coefficients[-1]
    for coefficient in reversed(coefficients[:-1]):
        share = share * variable + coefficient
    return ops.where(variable >= 1.0, 1.0 - level, ops.clip(share, 1.0 - level, 0.5))


def rounding_allowance(width: Any, std: Any, level: float, ops: Ops) -> Any:
    """A = w·r(ω): how far below μ + z·σ the order-up-to level goes when rounding spreads it over w.

    Args:
        width: w, the width of the excess the rounding leaves (0: no allowance).
        std: σ, the protection demand's standard deviation (0: r = 1 − α, a step distribution).
        level: α, the cycle service level the safety stock was sized for.
        ops: `NUMPY` or `SPARK`.
    """
    share = rounding_allowance_share(rounding_allowance_variable(width, std, ops), level, ops)
    return ops.maximum(width, 0.0) * share


def cycle_service_factor(level: float) -> float:
    """z = Φ⁻¹(α): the safety factor of a cycle service level α (exact, scipy)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"a service level must be in (0, 1), got {level}")
    return float(norm.ppf(level))


def smoothed_empirical_quantile(samples: np.ndarray, width: float, coverage: float) -> float:
    """Smallest x whose empirical distribution, averaged over [x, x + w), reaches `coverage`.

    The empirical counterpart of `rounding_allowance`: with the position after a review spread evenly
    over [S, S + w), a cycle's service is the mean of F over that range, so the safety stock is the x
    that solves H(x) = (1/w)·∫ₓ^{x+w} Fₙ(t) dt = coverage with Fₙ the samples' step function. H is
    piecewise linear with breaks at eᵢ − w and eᵢ, so x is interpolated between the last break below
    the coverage and the first at or above it. With w = 0 it is the plain quantile, the smallest
    sample with Fₙ ≥ coverage; `policy` evaluates the same in Spark SQL.

    Args:
        samples: the sorted error windows e₁ ≤ … ≤ eₙ (n ≥ 1).
        width: w ≥ 0, the width of the excess the rounding leaves.
        coverage: the share of samples to cover, in (0, 1] (k/n for the conformal rank k).
    """
    e = np.sort(np.asarray(samples, dtype=float))
    if width <= 0.0:
        return float(e[min(max(math.ceil(coverage * e.size - 1e-9), 1), e.size) - 1])

    def smoothed(x: np.ndarray) -> np.ndarray:
        return np.clip(x[:, None] + width - e[None, :], 0.0, width).sum(axis=1) / (e.size * width)

    breaks = np.sort(np.concatenate([e - width, e]))
    values = smoothed(breaks)
    high = int(np.argmax(values >= coverage - 1e-12))
    if high == 0:
        return float(breaks[0])
    low = high - 1
    share = (coverage - values[low]) / (values[high] - values[low])
    return float(breaks[low] + share * (breaks[high] - breaks[low]))
