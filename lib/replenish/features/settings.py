"""Typed settings of the features stage (the `features:` section of conf/base.yaml).

Lags, rolling windows and the other period counts are given per frequency, because a lag of 7 means
a week of days but seven weeks or seven months of the coarser series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from replenish.errors import ConfigError
from replenish.shared import FREQUENCIES, Frequency, check_freq

# FREQUENCIES and check_freq are `replenish.shared`'s, importable from here as well.
__all__ = ["FREQUENCIES", "FeaturePeriods", "FeaturesConfig", "Frequency", "ReturnsPolicy", "check_freq"]

ReturnsPolicy = Literal["exclude", "net"]


@dataclass(frozen=True)
class FeaturePeriods:
    """Period counts for one frequency; every number is in periods of that frequency.

    Attributes:
        lags: demand lags, one `lag_<k>` column each.
        rolling_windows: trailing windows, one `rolling_mean_<w>` and `rolling_std_<w>` column each;
            at least 2 periods, since a standard deviation needs two values.
        regular_price_window: trailing periods (the current one included) whose median price is the
            series' regular price, the denominator of `price_ratio`.
        new_series_periods: a series with at most this many periods of history is `is_new`
            (a cold-start series that forecasting treats apart).
    """

    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    regular_price_window: int
    new_series_periods: int

    def __post_init__(self) -> None:
        if not self.lags or any(lag < 1 for lag in self.lags):
            raise ConfigError(f"lags must be a non-empty list of integers >= 1, got {list(self.lags)}")
        if len(set(self.lags)) != len(self.lags):
            raise ConfigError(f"lags repeat a value: {list(self.lags)}")
        if not self.rolling_windows or any(window < 2 for window in self.rolling_windows):
            raise ConfigError(
                f"rolling_windows must be a non-empty list of integers >= 2, got {list(self.rolling_windows)}"
            )
        if len(set(self.rolling_windows)) != len(self.rolling_windows):
            raise ConfigError(f"rolling_windows repeat a value: {list(self.rolling_windows)}")
        if self.regular_price_window < 1:
            raise ConfigError(f"regular_price_window must be >= 1, got {self.regular_price_window}")
        if self.new_series_periods < 0:
            raise ConfigError(f"new_series_periods must be >= 0, got {self.new_series_periods}")


def _daily() -> FeaturePeriods:
    return FeaturePeriods(lags=(1, 7, 14, 28), rolling_windows=(7, 28), regular_price_window=28, new_series_periods=56)


def _weekly() -> FeaturePeriods:
    return FeaturePeriods(lags=(1, 2, 4, 52), rolling_windows=(4, 13), regular_price_window=8, new_series_periods=8)


def _monthly() -> FeaturePeriods:
    return FeaturePeriods(lags=(1, 2, 3, 12), rolling_windows=(3, 6), regular_price_window=3, new_series_periods=2)


def _quarterly() -> FeaturePeriods:
    return FeaturePeriods(lags=(1, 2, 4), rolling_windows=(4,), regular_price_window=2, new_series_periods=2)


@dataclass(frozen=True)
class FeaturesConfig:
    """Settings of `replenish features`.

    Attributes:
        freq: the frequency built when `--freq` is not given: D (days), W (weeks starting Monday),
            M (calendar months), Q (calendar quarters).
        censored_below: a period whose in-stock share is below this is `censored`: it was mostly out
            of stock, so its sales understate demand.
        returns: `exclude` (demand is gross sales; return rows add nothing) or `net` (returns are
            subtracted on the day they come back, floored at zero per day).
        country: ISO 3166 code of the holiday calendar (the `holidays` package).
        grain: the period one sales row stands for: `auto` (detected: Q when every date is the 1st
            of January, April, July or October, M when every date is the 1st of a month, W when
            every date is a Monday, else D; logged), or D, W, M, Q as declared. A
            row of a coarser grain covers its whole period, so the last month of a monthly extract
            dated on the 1st is kept, and a stockout flag holds for the whole period.
        abc_thresholds: cumulative revenue shares closing classes A and B, e.g. (0.8, 0.95).
        xyz_thresholds: coefficients of variation of period demand closing classes X and Y.
        daily, weekly, monthly, quarterly: period counts per frequency.
    """

    freq: Frequency = "D"
    censored_below: float = 0.5
    returns: ReturnsPolicy = "exclude"
    country: str = "US"
    abc_thresholds: tuple[float, float] = (0.8, 0.95)
    xyz_thresholds: tuple[float, float] = (0.5, 1.0)
    grain: Literal["auto", "D", "W", "M", "Q"] = "auto"
    daily: FeaturePeriods = field(default_factory=_daily)
    weekly: FeaturePeriods = field(default_factory=_weekly)
    monthly: FeaturePeriods = field(default_factory=_monthly)
    quarterly: FeaturePeriods = field(default_factory=_quarterly)

    def __post_init__(self) -> None:
        if self.freq not in FREQUENCIES:
            raise ConfigError(f"features.freq must be one of {', '.join(FREQUENCIES)}, got {self.freq!r}")
        if self.grain not in ("auto", *FREQUENCIES):
            raise ConfigError(f"features.grain must be auto, D, W, M or Q, got {self.grain!r}")
        if self.returns not in ("exclude", "net"):
            raise ConfigError(f"features.returns must be exclude or net, got {self.returns!r}")
        if not 0.0 < self.censored_below <= 1.0:
            raise ConfigError(f"features.censored_below must be in (0, 1], got {self.censored_below}")
        a_share, b_share = self.abc_thresholds
        if not 0.0 < a_share < b_share <= 1.0:
            raise ConfigError(f"features.abc_thresholds must satisfy 0 < A < B <= 1, got {list(self.abc_thresholds)}")
        x_cv, y_cv = self.xyz_thresholds
        if not 0.0 < x_cv < y_cv:
            raise ConfigError(f"features.xyz_thresholds must satisfy 0 < X < Y, got {list(self.xyz_thresholds)}")
        if not self.country:
            raise ConfigError("features.country must name a country, e.g. US")

    def for_freq(self, freq: str) -> FeaturePeriods:
        """The period counts of `freq` (D, W or M)."""
        check_freq(freq)
        return {"D": self.daily, "W": self.weekly, "M": self.monthly, "Q": self.quarterly}[freq]
