"""Synthetic `silver.demand`-shaped panels with known structure, for tests, benchmarks and notebooks.

Smooth series are a level times a seasonal profile (weekly for days, yearly for weeks and months)
with a slow trend, AR(1) noise, a promotion lift and a price elasticity; intermittent series are
Bernoulli occurrences times Poisson sizes; a share of series never sells; stockout spells censor
some periods (their observed demand is a fraction of the true demand). Everything derives from
`seed`, so a panel is reproducible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_SEASON = {"D": 7, "W": 52, "M": 12, "Q": 4}
_STEP = {"D": "D", "W": "W-MON", "M": "MS", "Q": "QS-JAN"}


def synthetic_demand(
    n_series: int,
    periods: int,
    *,
    freq: str = "D",
    start: str = "2023-01-02",
    seed: int = 0,
    intermittent_share: float = 0.3,
    zero_share: float = 0.02,
    stockout_rate: float = 0.01,
    promo_rate: float = 0.05,
) -> pd.DataFrame:
    """A panel of `n_series` series of `periods` periods, with the columns of `silver.demand` that
    forecasting reads: freq, sku, location, date, demand, censored, price_ratio, promo, is_holiday,
    plus `true_demand` (uncensored) and `kind` (smooth, intermittent, zero) for checks.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=periods, freq=_STEP[freq])
    season = _SEASON[freq]
    t = np.arange(periods)
    holiday = (rng.random(periods) < (0.03 if freq == "D" else 0.15)).astype(int)
    shares = np.clip([1 - intermittent_share - zero_share, intermittent_share, zero_share], 0, None)
    kinds = rng.choice(["smooth", "intermittent", "zero"], size=n_series, p=shares / shares.sum())
    frames = []
    for i, kind in enumerate(kinds):
        promo = (rng.random(periods) < promo_rate).astype(float)
        price_ratio = np.where(promo > 0, rng.uniform(0.7, 0.9), 1.0) * rng.normal(1.0, 0.01, periods)
        if kind == "smooth":
            level = float(np.exp(rng.normal(2.5, 0.8)))
            profile = 1 + rng.uniform(0.1, 0.4) * np.sin(2 * np.pi * (t % season) / season + rng.uniform(0, 6))
            trend = 1 + rng.uniform(-0.3, 0.5) * t / periods
            noise = np.zeros(periods)
            phi = rng.uniform(0.0, 0.7)
            shocks = rng.normal(0, 0.15, periods)
            for k in range(1, periods):
                noise[k] = phi * noise[k - 1] + shocks[k]
            rate = level * profile * trend * np.exp(noise) * (1 + 0.8 * promo) * price_ratio**-1.5
            rate *= 1 + 0.3 * holiday
            true_demand = rng.poisson(np.maximum(rate, 0)).astype(float)
        elif kind == "intermittent":
            occurs = rng.random(periods) < rng.uniform(0.05, 0.4)
            true_demand = np.where(occurs, 1 + rng.poisson(rng.uniform(0.5, 4), periods), 0).astype(float)
        else:
            true_demand = np.zeros(periods)
        censored = np.zeros(periods, dtype=bool)
        for begin in np.flatnonzero(rng.random(periods) < stockout_rate):
            censored[begin : begin + int(rng.integers(1, 5))] = True
        demand = np.where(censored, np.floor(true_demand * 0.3), true_demand)
        frames.append(
            pd.DataFrame(
                {
                    "freq": freq,
                    "sku": f"SKU{i // 4:05d}",
                    "location": f"L{i % 4:02d}",
                    "date": dates.date,
                    "demand": demand,
                    "censored": censored,
                    "price_ratio": price_ratio,
                    "promo": promo,
                    "is_holiday": holiday,
                    "true_demand": true_demand,
                    "kind": kind,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
