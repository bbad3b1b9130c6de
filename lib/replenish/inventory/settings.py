"""Typed settings of the inventory stage (the `inventory:` section of conf/base.yaml).

Everything the inventory, simulate and report jobs need is resolved here once, at the edge, into
frozen dataclasses; the library functions receive these and never read YAML.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from replenish.errors import ConfigError

Policy = Literal["periodic", "continuous"]
ServiceMeasure = Literal["cycle", "fill_rate"]
SelectionMetric = Literal["lead_time_rmse", "rmse", "mae", "wape"]
SelectionMethod = Literal["best", "blend"]

# Length of one period of each frequency, in days (a month is a twelfth of a Julian year).
PERIOD_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0, "Q": 365.25 / 4.0}
DAYS_PER_YEAR = 365.25


def _default_service_targets() -> dict[str, float]:
    return {
        "AX": 0.98,
        "AY": 0.97,
        "AZ": 0.95,
        "BX": 0.96,
        "BY": 0.95,
        "BZ": 0.93,
        "CX": 0.93,
        "CY": 0.92,
        "CZ": 0.90,
    }


@dataclass(frozen=True)
class SelectionConfig:
    """How the forecast that drives a series' policy is chosen from the candidates in `gold.forecast`.

    Attributes:
        metric: backtest error that ranks the candidates per series: `lead_time_rmse` (the default: the
            standard deviation of the forecast error summed over the series' protection interval, which
            the safety stock is proportional to, so the winner is the model that needs the least
            stock), or the per-period `rmse`, `mae` or `wape`.
        method: `best` keeps the lowest-error model; `blend` also scores an inverse-MSE weighted blend of
            the `blend_top` best models on the same backtest periods and keeps the blend when it wins.
        blend_top: how many of the best models a blend combines (2 or more).
        min_backtest_periods: a model with fewer scored backtest periods for a series does not compete
            (its error estimate is too thin); when no model has enough, the first model in
            `fallback_models` (else the alphabetically first) is used and the reason says so.
        fallback_models: preference order among models without backtests, e.g. `[seasonal_naive, naive]`.
        horizon_preferred_model: the model a series' whole-horizon forecast (`horizon_model`) is,
            whenever the series has it; the others only compete when it does not. The default,
            `combination` (forecast.combination), forecasts real monthly panels better than the
            per-series lowest backtest error does (docs/forecasting.md). Null: lowest backtest MAE.
    """

    metric: SelectionMetric = "lead_time_rmse"
    method: SelectionMethod = "best"
    blend_top: int = 2
    min_backtest_periods: int = 7
    fallback_models: tuple[str, ...] = ("arima", "ets", "croston_sba", "tsb", "seasonal_naive", "recent_mean", "zero")
    horizon_preferred_model: str | None = "combination"

    def __post_init__(self) -> None:
        if self.metric not in ("lead_time_rmse", "rmse", "mae", "wape"):
            raise ConfigError(
                f"inventory.selection.metric must be lead_time_rmse, rmse, mae or wape, got {self.metric!r}"
            )
        if self.method not in ("best", "blend"):
            raise ConfigError(f"inventory.selection.method must be best or blend, got {self.method!r}")
        if self.blend_top < 2:
            raise ConfigError(f"inventory.selection.blend_top must be >= 2, got {self.blend_top}")
        if self.min_backtest_periods < 1:
            raise ConfigError(f"inventory.selection.min_backtest_periods must be >= 1, got {self.min_backtest_periods}")


@dataclass(frozen=True)
class SimulationConfig:
    """The replay of the held-out period (`replenish simulate`).

    Attributes:
        holdout_folds: the hold-out is the forecast windows of the last this-many backtest folds; the
            policy is recomputed at each of their cutoffs from what was known then.
        naive_cover_weeks: the grid of "weeks of cover on average demand" that the naive planner policy
            is replayed with; the report interpolates the cover that reaches the optimized service level.
        naive_history_days: the days before the hold-out whose mean demand the naive policy covers.
        seed: seeds the sampled lead times (per series, so results do not depend on partitioning).
        min_class_series: classes with fewer series are reported but not held to the ±2 pp target.
        tolerance: the allowed gap between achieved and target service level, as a share (0.02 = 2 pp).
    """

    holdout_folds: int = 2
    naive_cover_weeks: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0)
    naive_history_days: int = 91
    seed: int = 20240611
    min_class_series: int = 200
    tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.holdout_folds < 1:
            raise ConfigError(f"inventory.simulation.holdout_folds must be >= 1, got {self.holdout_folds}")
        if not self.naive_cover_weeks or any(w <= 0 for w in self.naive_cover_weeks):
            raise ConfigError("inventory.simulation.naive_cover_weeks must be a non-empty list of positive weeks")
        if list(self.naive_cover_weeks) != sorted(set(self.naive_cover_weeks)):
            raise ConfigError("inventory.simulation.naive_cover_weeks must be increasing without repeats")
        if self.naive_history_days < 1:
            raise ConfigError(f"inventory.simulation.naive_history_days must be >= 1, got {self.naive_history_days}")
        if not 0.0 < self.tolerance < 1.0:
            raise ConfigError(f"inventory.simulation.tolerance must be in (0, 1), got {self.tolerance}")


@dataclass(frozen=True)
class InventoryConfig:
    """Settings of `replenish inventory` (and the policy that `replenish simulate` replays).

    Attributes:
        freq: the series frequency to plan on (D, W, M or Q); periods of this length are the unit of
            demand rates and forecast errors. The jobs set it from `--freq` (else `features.freq`).
        policy: which policy's order the plan recommends: `periodic` (R, S) or `continuous` (s, Q).
            Both policies' levels are always computed.
        review_period_days: R, days between reviews of the periodic policy.
        default_lead_time_days: lead time mean for a series without one in `bronze.suppliers`.
        default_lead_time_std_days: lead time standard deviation when `bronze.suppliers` has none.
        default_moq: minimum order quantity when none is given (0: no minimum).
        default_pack_size: pack size when none is given (1: any whole unit).
        ordering_cost: cost per order placed, when `bronze.suppliers` has none.
        holding_cost_rate: yearly holding cost as a share of unit cost (EOQ's h = rate × unit cost).
        service_measure: `cycle` (α, the probability of no stockout in a replenishment cycle) or
            `fill_rate` (β, the share of demand met from stock).
        service_level: the target of a class missing from `service_targets`.
        service_targets: target per ABC-XYZ class (`AX` … `CZ`), a share in (0, 1).
        intermittent_classes: demand classes sized with the empirical lead-time error distribution
            instead of the normal one.
        intermittent_method: `empirical` or `normal` (size every series with the normal distribution).
        skewed_classes: demand classes whose series, when not sized empirically, take the quantile of
            a gamma lead-time demand (same mean and σ) for a cycle target instead of the normal one.
        min_empirical_samples: fewer lead-time error windows than this and the series is sized with the
            gamma (`skewed_classes`) or the normal instead; its `notes` say so.
        bias_correction: scale each backtest-sized series' demand rate by 1 + the mean error share of
            its model and demand class in the backtests (`selection.backtest_errors`): a systematic
            under- or over-forecast is corrected, not buffered.
        rounding_allowance: with a cycle service target, lower the order-up-to level S of series
            sized with the normal distribution so that the service averaged over the positions MOQ
            and pack rounding leave above S after a review is the target rather than more
            (`distributions.rounding_allowance`).
        selection: how the driving forecast is chosen.
        simulation: how `replenish simulate` replays the hold-out.
    """

    freq: str = "D"
    policy: Policy = "periodic"
    review_period_days: float = 7.0
    default_lead_time_days: float = 7.0
    default_lead_time_std_days: float = 2.0
    default_moq: float = 0.0
    default_pack_size: float = 1.0
    ordering_cost: float = 50.0
    holding_cost_rate: float = 0.25
    service_measure: ServiceMeasure = "cycle"
    service_level: float = 0.95
    service_targets: dict[str, float] = field(default_factory=_default_service_targets)
    intermittent_classes: tuple[str, ...] = ("intermittent", "lumpy")
    intermittent_method: Literal["empirical", "normal"] = "empirical"
    min_empirical_samples: int = 20
    skewed_classes: tuple[str, ...] = ("erratic", "intermittent", "lumpy")
    bias_correction: bool = True
    rounding_allowance: bool = True
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        if self.freq not in PERIOD_DAYS:
            raise ConfigError(f"inventory.freq must be one of D, W, M, Q, got {self.freq!r}")
        if self.policy not in ("periodic", "continuous"):
            raise ConfigError(f"inventory.policy must be periodic or continuous, got {self.policy!r}")
        if self.service_measure not in ("cycle", "fill_rate"):
            raise ConfigError(f"inventory.service_measure must be cycle or fill_rate, got {self.service_measure!r}")
        positive = {
            "review_period_days": self.review_period_days,
            "default_pack_size": self.default_pack_size,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"inventory.{name} must be > 0, got {value}")
        non_negative = {
            "default_lead_time_days": self.default_lead_time_days,
            "default_lead_time_std_days": self.default_lead_time_std_days,
            "default_moq": self.default_moq,
            "ordering_cost": self.ordering_cost,
            "holding_cost_rate": self.holding_cost_rate,
        }
        for name, value in non_negative.items():
            if not value >= 0 or math.isinf(value):
                raise ConfigError(f"inventory.{name} must be a finite number >= 0, got {value}")
        _check_level("inventory.service_level", self.service_level)
        for name, value in self.service_targets.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"inventory.service_targets.{name}: expected a share in (0, 1), got {value!r}")
            _check_level(f"inventory.service_targets.{name}", float(value))
        if self.intermittent_method not in ("empirical", "normal"):
            raise ConfigError(
                f"inventory.intermittent_method must be empirical or normal, got {self.intermittent_method!r}"
            )
        if self.min_empirical_samples < 2:
            raise ConfigError(f"inventory.min_empirical_samples must be >= 2, got {self.min_empirical_samples}")

    @property
    def period_days(self) -> float:
        """Days in one period of `freq`."""
        return PERIOD_DAYS[self.freq]

    def target_for(self, service_class: str | None) -> float:
        """The service target of an ABC-XYZ class (the default for an unknown or missing class)."""
        if service_class is None:
            return self.service_level
        return float(self.service_targets.get(service_class, self.service_level))


def _check_level(name: str, value: float) -> None:
    # 1.0 would ask for an infinite safety stock; 0.5 is the lowest target a safety stock can serve.
    if not 0.5 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0.5, 1), got {value}")


def inventory_settings(settings: Mapping[str, Any], freq: str | None) -> InventoryConfig:
    """The `inventory:` settings of a profile for a run at `freq` (default: the profile's features.freq).

    Args:
        settings: the resolved profile (`replenish.config`), a mapping of sections.
        freq: the run's frequency (--freq), or None.
    """
    from replenish import config
    from replenish.features.settings import FeaturesConfig

    inventory = config.section(settings, "inventory", InventoryConfig)
    features = config.section(settings, "features", FeaturesConfig)
    return dataclasses.replace(inventory, freq=freq or features.freq)
