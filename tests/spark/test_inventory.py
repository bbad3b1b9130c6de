"""The inventory job's library on tiny hand-made inputs whose every number can be worked out by hand.

Series (location L1; backtests: 3 folds of 28 daily steps; forecasts: 28 steps):

* A, class AX: two candidates, both forecasting 10 a day. In the backtest `good` misses the actuals
  by +1, -1, +1, ... (RMSE 1), `bad` by -2, +2, ... (RMSE 2, opposite sign). Lead time 4 ± 1 days,
  MOQ 10, packs of 12, ordering cost 20, unit cost 5; latest snapshot: 50 on hand, 20 on order, 5
  backordered.
* B, class BY: one model, 5 a day, misses ±1; no supplier row and no inventory snapshot (defaults).
* C, class CX: no demand at all; 3 units backordered.
* D, class CZ, intermittent: forecast 0.5 a day; the backtest misses by 10 on step 5 of each fold, by
  0 elsewhere, so lead-time error windows have a known distribution.
* E, class AY: no backtest rows; the forecast's 80 % interval implies σ = 3; the supplier row has an
  invalid lead time (-3) and pack size (0).
* F: not in the series profile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from replenish.errors import ValidationError
from replenish.inventory import formulas
from replenish.inventory.accuracy import forecast_accuracy
from replenish.inventory.distributions import (
    cycle_service_factor,
    inverse_normal_loss,
    normal_loss,
    rounding_allowance,
    smoothed_empirical_quantile,
)
from replenish.inventory.ops import NUMPY, SPARK, col
from replenish.inventory.policy import plan_inventory, series_terms
from replenish.inventory.policy_sql import (
    empirical_quantile,
    error_windows,
    independent_windows,
    smoothed_quantile,
    windowed_demand_rate,
)
from replenish.inventory.schemas import (
    MODEL_SELECTION_SCHEMA,
    REPLENISHMENT_PLAN_SCHEMA,
    SAFETY_STOCK_SCHEMA,
)
from replenish.inventory.settings import InventoryConfig, SelectionConfig
from replenish.io.catalog import BRONZE_COLUMNS
from replenish.shared import RunStamp

pytestmark = pytest.mark.spark

FORECAST_START = dt.date(2024, 3, 1)
FOLDS = 3
HORIZON = 28
Z80 = 1.2815515655446004
STAMP = RunStamp("inventory-run", dt.date(2024, 2, 29), "cfg", "forecast-run")

FORECAST_SCHEMA = (
    "run_id string, run_date date, freq string, sku string, location string, model string, date date, step int, "
    "yhat double, yhat_lo_80 double, yhat_hi_80 double, yhat_lo_95 double, yhat_hi_95 double"
)
BACKTEST_SCHEMA = (
    "run_id string, run_date date, freq string, sku string, location string, model string, fold int, "
    "cutoff date, date date, step int, y double, yhat double"
)
PROFILE_SCHEMA = "freq string, sku string, location string, category string, demand_class string, abc_xyz string"
SUPPLIER_SCHEMA = BRONZE_COLUMNS["suppliers"]
INVENTORY_SCHEMA = BRONZE_COLUMNS["inventory"]
PRODUCT_SCHEMA = "sku string, category string, unit_cost double"

FORECASTS = {"A": {"good": 10.0, "bad": 10.0}, "B": {"good": 5.0}, "C": {"good": 0.0}, "D": {"good": 0.5}}
FORECASTS |= {"E": {"good": 4.0}, "F": {"good": 2.0}}


def backtest_error(sku: str, model: str, step: int) -> float:
    sign = 1.0 if step % 2 else -1.0
    if sku == "A":
        return sign if model == "good" else -2.0 * sign
    if sku in ("B", "F"):
        return sign
    if sku == "D":
        return 10.0 if step == 5 else 0.0
    return 0.0


def forecast_rows() -> list[tuple]:
    rows = []
    for sku, models in FORECASTS.items():
        for model, level in models.items():
            sigma = 3.0 if sku == "E" else 1.0
            for step in range(1, HORIZON + 1):
                half = Z80 * sigma
                rows.append(
                    (
                        "forecast-run",
                        dt.date(2024, 2, 29),
                        "D",
                        sku,
                        "L1",
                        model,
                        FORECAST_START + dt.timedelta(days=step - 1),
                        step,
                        level,
                        level - half,
                        level + half,
                        level - 2 * half,
                        level + 2 * half,
                    )
                )
    return rows


def backtest_rows() -> list[tuple]:
    rows = []
    for sku, models in FORECASTS.items():
        if sku == "E":
            continue
        for model, level in models.items():
            for fold in range(1, FOLDS + 1):
                cutoff = FORECAST_START - dt.timedelta(days=HORIZON * (FOLDS - fold + 1))
                for step in range(1, HORIZON + 1):
                    # The actual is the same for every model; each model's prediction misses it by its error.
                    y = level + (10.0 if sku == "D" and step == 5 else 0.0)
                    yhat = y - backtest_error(sku, model, step)
                    rows.append(
                        (
                            "forecast-run",
                            dt.date(2024, 2, 29),
                            "D",
                            sku,
                            "L1",
                            model,
                            fold,
                            cutoff,
                            cutoff + dt.timedelta(days=step - 1),
                            step,
                            y,
                            yhat,
                        )
                    )
    return rows


def inputs(spark) -> dict:
    return {
        "forecast": spark.createDataFrame(forecast_rows(), FORECAST_SCHEMA),
        "backtest": spark.createDataFrame(backtest_rows(), BACKTEST_SCHEMA),
        "profile": spark.createDataFrame(
            [
                ("D", "A", "L1", "toys", "smooth", "AX"),
                ("D", "B", "L1", "toys", "smooth", "BY"),
                ("D", "C", "L1", "books", "no_demand", "CX"),
                ("D", "D", "L1", "books", "intermittent", "CZ"),
                ("D", "E", "L1", "books", "smooth", "AY"),
                ("W", "F", "L1", "books", "smooth", "AX"),  # another frequency: F has no daily profile
            ],
            PROFILE_SCHEMA,
        ),
        "suppliers": spark.createDataFrame(
            [
                ("A", "L1", "s1", 4.0, 1.0, 10.0, 12.0, 20.0, 5.0),
                ("C", "L1", "s1", 4.0, 1.0, 0.0, 1.0, 20.0, 2.0),
                ("D", "L1", "s1", 4.0, 1.0, 0.0, 1.0, 20.0, 2.0),
                ("E", "L1", "s2", -3.0, 1.0, 0.0, 0.0, 20.0, None),
                ("F", "L1", "s2", 7.0, 0.0, 0.0, 1.0, 20.0, 1.0),
            ],
            SUPPLIER_SCHEMA,
        ),
        "inventory": spark.createDataFrame(
            [
                ("A", "L1", dt.date(2024, 2, 20), 999.0, 0.0, 0.0),  # older snapshot: ignored
                ("A", "L1", dt.date(2024, 2, 28), 50.0, 20.0, 5.0),
                ("C", "L1", dt.date(2024, 2, 28), 0.0, 0.0, 3.0),
                ("D", "L1", dt.date(2024, 2, 28), 0.0, None, None),
                ("E", "L1", dt.date(2024, 2, 28), 100.0, 0.0, 0.0),
                ("F", "L1", dt.date(2024, 2, 28), 0.0, 0.0, 0.0),
            ],
            INVENTORY_SCHEMA,
        ),
        "products": spark.createDataFrame(
            [("A", "toys", 5.0), ("B", "toys", 3.0), ("E", "books", 8.0), ("F", "books", 1.0)], PRODUCT_SCHEMA
        ),
    }


def run_plan(spark, settings: InventoryConfig) -> dict[str, pd.DataFrame]:
    plan = plan_inventory(**inputs(spark), settings=settings, stamp=STAMP)
    series = plan.series.cache()
    try:
        frames = {
            "selection": plan.project(series).model_selection.toPandas(),
            "safety": plan.project(series).safety_stock.toPandas(),
            "plan": plan.project(series).replenishment_plan.toPandas(),
        }
    finally:
        series.unpersist()
    return {name: frame.set_index("sku", drop=False) for name, frame in frames.items()}


@pytest.fixture(scope="module")
def cycle_plan(spark) -> dict[str, pd.DataFrame]:
    return run_plan(spark, InventoryConfig())


@pytest.fixture(scope="module")
def fill_rate_blend_plan(spark) -> dict[str, pd.DataFrame]:
    settings = InventoryConfig(service_measure="fill_rate", selection=SelectionConfig(method="blend"))
    return run_plan(spark, settings)


def test_sql_formulas_agree_with_numpy(spark) -> None:
    cases = pd.DataFrame(
        {
            "periods": [4.0, 11.0, 0.5, 7.0],
            "sigma": [1.0, 2.5, 0.0, 3.0],
            "rate": [10.0, 0.0, 3.0, 5.0],
            "lead_std": [1.0, 2.0, 0.0, 0.5],
            "loss": [0.05, 1e-9, 0.5, 0.2],
            "quantity": [66.64, 0.0, 23.0, 10.000000001],
            "moq": [10.0, 5.0, 30.0, 0.0],
            "pack": [12.0, 1.0, 12.0, 5.0],
            "position": [-20.0, 5.0, 100.0, 12.0],
        }
    )
    expressions = {
        "std": lambda o, c: formulas.demand_std(c("periods"), c("sigma"), c("rate"), c("lead_std"), o),
        "k": lambda o, c: inverse_normal_loss(c("loss"), o),
        "eoq": lambda o, c: formulas.economic_order_quantity(c("rate") * 365.25, 50.0, c("pack"), o),
        "rounded": lambda o, c: formulas.round_order(c("quantity"), c("moq"), c("pack"), o),
        "continuous": lambda o, c: formulas.continuous_order(c("periods") * 10.0, c("pack"), c("position"), o),
        "periodic": lambda o, c: formulas.periodic_order(c("periods") * 10.0, c("position"), o),
        "width": lambda o, c: formulas.rounding_excess_width(c("moq"), c("pack"), c("rate") * 7.0, o),
        "allowance": lambda o, c: rounding_allowance(c("pack"), c("sigma"), 0.93, o),
        "gamma": lambda o, c: formulas.gamma_safety_stock(c("rate") * c("periods"), c("sigma"), 1.5, o),
    }
    frame = spark.createDataFrame(cases)
    got = frame.selectExpr(*[build(SPARK, col).alias(name) for name, build in expressions.items()]).toPandas()
    for name, build in expressions.items():
        expected = build(NUMPY, lambda c: cases[c].to_numpy())
        assert got[name].to_numpy() == pytest.approx(np.asarray(expected, dtype=float), abs=1e-9), name


def test_outputs_follow_the_documented_schemas(cycle_plan) -> None:
    assert list(cycle_plan["selection"].columns) == MODEL_SELECTION_SCHEMA.fieldNames()
    assert list(cycle_plan["safety"].columns) == SAFETY_STOCK_SCHEMA.fieldNames()
    assert list(cycle_plan["plan"].columns) == REPLENISHMENT_PLAN_SCHEMA.fieldNames()
    assert sorted(cycle_plan["plan"]["sku"]) == ["A", "B", "C", "D", "E", "F"]
    assert set(cycle_plan["plan"]["run_id"]) == {"inventory-run"}
    assert set(cycle_plan["plan"]["forecast_run_id"]) == {"forecast-run"}


def test_the_lowest_backtest_error_wins_and_the_reason_says_so(cycle_plan) -> None:
    a = cycle_plan["selection"].loc["A"]
    assert a["selected_model"] == "good"
    assert a["selection_method"] == "best"
    assert a["selection_metric"] == "lead_time_rmse"
    # The error summed over R + L = 11 days: √(11·σ_u²), σ_u² = 84/81 (good) or 4·84/81 (bad).
    good, bad = math.sqrt(11 * 84 / 81), math.sqrt(11 * 4 * 84 / 81)
    assert a["metric_value"] == pytest.approx(good)
    assert a["backtest_periods"] == FOLDS * HORIZON
    assert json.loads(a["candidate_scores"]) == pytest.approx({"good": good, "bad": bad})
    assert a["reason"].startswith(
        f"lowest backtest lead_time_rmse of 2 scored candidate(s): good {good:.3f}, bad {bad:.3f}"
    )


def test_safety_stock_and_levels_for_a_smooth_series(cycle_plan) -> None:
    z = cycle_service_factor(0.98)
    safety, plan = cycle_plan["safety"].loc["A"], cycle_plan["plan"].loc["A"]
    # Errors ±1 around a fold mean of 0: within-fold variance 84 / 81 (3 folds, n - 1 each), no level error.
    assert safety["forecast_error_std"] == pytest.approx(math.sqrt(84 / 81))
    assert safety["level_error_std"] == 0.0
    assert safety["error_std_source"] == "backtest"
    assert safety["distribution"] == "normal"
    assert safety["safety_factor"] == pytest.approx(z)
    # σ over R + L = 7 + 4 days: √(11·σ_d² + 10²·1²); over L: √(4·σ_d² + 100).
    variance = 84 / 81
    assert safety["safety_stock_periodic"] == pytest.approx(z * math.sqrt(11 * variance + 100))
    assert safety["safety_stock_continuous"] == pytest.approx(z * math.sqrt(4 * variance + 100))
    assert plan["reorder_point"] == pytest.approx(40.0 + z * math.sqrt(4 * variance + 100))
    # MOQ 10 in packs of 12 against 70 units of review demand: the rounding spreads the position over
    # one pack above S, netted out of S for the 98% target.
    allowance = rounding_allowance(np.array(12.0), np.array(math.sqrt(11 * variance + 100)), 0.98, NUMPY)
    assert 0.0 < plan["rounding_allowance"] < 6.0
    assert plan["rounding_allowance"] == pytest.approx(float(allowance))
    assert plan["order_up_to_level"] == pytest.approx(110.0 + z * math.sqrt(11 * variance + 100) - allowance)
    # EOQ = √(2 · 3652.5 · 20 / 1.25) = 341.9, rounded up to packs of 12.
    assert plan["economic_order_quantity"] == pytest.approx(math.sqrt(2 * 3652.5 * 20 / 1.25))
    assert plan["lot_size"] == 348.0
    # Position 50 + 20 - 5 = 65 (the latest snapshot); S - 65 = 66.7 → 6 packs of 12.
    assert plan["inventory_position"] == 65.0
    assert plan["order_quantity"] == 72.0
    assert plan["order_value"] == 360.0
    assert plan["order_reason"] == "position below order-up-to level"
    assert plan["notes"] is None


def test_a_skewed_class_takes_the_gamma_quantile(spark) -> None:
    # Series A as if its demand were skewed: the same μ and σ over R + L, the gamma's 98 % quantile.
    safety = run_plan(spark, InventoryConfig(skewed_classes=("smooth",)))["safety"].loc["A"]
    z, sigma = cycle_service_factor(0.98), math.sqrt(11 * 84 / 81 + 100)
    assert safety["distribution"] == "gamma"
    assert safety["safety_factor"] == pytest.approx(z)
    expected = formulas.gamma_safety_stock(np.array(110.0), np.array(sigma), z, NUMPY)
    assert safety["safety_stock_periodic"] == pytest.approx(float(expected))
    assert safety["safety_stock_periodic"] > z * sigma  # the longer upper tail


def test_defaults_when_supplier_and_snapshot_are_missing(cycle_plan) -> None:
    safety, plan = cycle_plan["safety"].loc["B"], cycle_plan["plan"].loc["B"]
    assert safety["lead_time_days"] == 7.0 and safety["lead_time_std_days"] == 2.0
    assert safety["safety_stock_periodic"] == pytest.approx(
        cycle_service_factor(0.95) * math.sqrt(14 * 84 / 81 + 25 * 4)
    )
    assert "no supplier row" in plan["notes"]
    assert plan["unit_cost"] == 3.0  # from bronze.products
    assert math.isnan(plan["order_quantity"])
    assert plan["order_reason"] == "no inventory snapshot: no order computed"


def test_zero_demand_orders_only_the_backorders(cycle_plan) -> None:
    safety, plan = cycle_plan["safety"].loc["C"], cycle_plan["plan"].loc["C"]
    assert safety["safety_stock"] == 0.0
    assert plan["order_up_to_level"] == 0.0
    assert plan["inventory_position"] == -3.0
    assert plan["order_quantity"] == 3.0


def test_intermittent_series_use_the_empirical_lead_time_errors(cycle_plan) -> None:
    safety = cycle_plan["safety"].loc["D"]
    assert safety["distribution"] == "empirical"
    assert safety["level_error_std"] == pytest.approx(0.0, abs=1e-6)  # one miss a fold is noise, not level
    # 11-day windows: 18 per fold, 5 of them hold the miss of 10; the ⌈0.9 · 55⌉ = 50th of the 54 is 10.
    assert safety["empirical_samples"] == 54
    lead_time_term = cycle_service_factor(0.90) * 0.5 * 1.0
    assert safety["safety_stock_periodic"] == pytest.approx(math.hypot(10.0, lead_time_term))
    assert safety["safety_stock_continuous"] == pytest.approx(math.hypot(10.0, lead_time_term))
    assert math.isnan(safety["safety_factor"])


@pytest.fixture(scope="module")
def normal_plan(spark) -> dict[str, pd.DataFrame]:
    return run_plan(spark, InventoryConfig(intermittent_method="normal"))


@pytest.mark.parametrize("min_samples", [60, 200])
def test_an_intermittent_series_without_enough_error_windows_says_which_distribution(
    spark, normal_plan, min_samples
) -> None:
    # D has 54 lead-time error windows. 60 of them: too few for D alone; 200: more errors than the run's
    # whole grid holds (3 folds x 28 steps), so no series is cut into windows. The note is the same.
    settings = InventoryConfig(min_empirical_samples=min_samples)
    sized, normal = run_plan(spark, settings)["safety"].loc["D"], normal_plan["safety"].loc["D"]
    assert sized["distribution"] == "gamma"  # intermittent is a skewed class
    assert f"intermittent, fewer than {min_samples} lead-time error windows: gamma distribution used" in sized["notes"]
    assert "lead-time error windows" not in (normal["notes"] or "")  # the normal method was asked for
    assert sized["safety_stock"] == pytest.approx(normal["safety_stock"])


def test_the_empirical_quantile_takes_the_conformal_rank(spark) -> None:
    # Of 30 sorted windows a next one falls below the k-th with probability k / 31: a 93 % target
    # needs the 29th (the plain ⌈30 · 0.93⌉ = 28th covers 90.3 %); a rank past 30 takes the largest.
    samples = spark.createDataFrame([([float(v) for v in range(1, 31)],)], "samples array<double>")
    picked = samples.selectExpr(
        *[f"{empirical_quantile('samples', str(level))} AS q{i}" for i, level in enumerate((0.93, 0.5, 0.99))]
    ).collect()[0]
    assert (picked["q0"], picked["q1"], picked["q2"]) == (29.0, 16.0, 30.0)


def test_overlapping_error_windows_count_as_fewer_independent_draws(spark) -> None:
    # Two folds of 10 periods hold 7 windows of 4 each but 10 / 4 = 2.5 disjoint ones, which the
    # overlapping ones count 1.5 times: 3.75 draws each. A fold of 4 periods holds one window (1.5
    # capped at 1); a fold of 3 holds no window of 4 and counts for nothing.
    folds = ((1, 10), (2, 10), (3, 3), (4, 4))
    path = [(fold, step, 1.0) for fold, steps in folds for step in range(1, steps + 1)]
    frame = spark.createDataFrame([(path,)], "path array<struct<fold: int, step: int, error: double>>")
    row = frame.selectExpr(
        f"size({error_windows('path', '4')}) AS windows", f"{independent_windows('path', '4')} AS independent"
    ).collect()[0]
    assert (row["windows"], row["independent"]) == (15, 8.5)


def test_series_terms_combine_the_per_series_inputs(spark) -> None:
    # Every series of any input gets a row; the profile of another frequency is not read; of two
    # supplier rows one is kept whole (never fields of both); the latest snapshot wins.
    profile = spark.createDataFrame(
        [("D", "A", "L1", "toys", "smooth", "AX"), ("W", "A", "L1", "other", "lumpy", "CZ")], PROFILE_SCHEMA
    )
    suppliers = spark.createDataFrame(
        [
            ("A", "L1", "S1", 7.0, 1.0, 10.0, 12.0, 20.0, 5.0),
            ("A", "L1", "S2", 14.0, 2.0, 0.0, 1.0, 30.0, 6.0),
            ("B", "L1", "S1", 3.0, 0.0, 0.0, 1.0, 10.0, 2.0),
        ],
        SUPPLIER_SCHEMA,
    )
    inventory = spark.createDataFrame(
        [
            ("A", "L1", dt.date(2024, 2, 20), 999.0, 0.0, 0.0),
            ("A", "L1", dt.date(2024, 2, 28), 50.0, 20.0, 5.0),
            ("C", "L2", dt.date(2024, 2, 28), 3.0, 0.0, 0.0),
        ],
        INVENTORY_SCHEMA,
    )
    products = spark.createDataFrame([("A", "toys", 5.0)], PRODUCT_SCHEMA)
    rows = {(r["sku"], r["location"]): r for r in series_terms(profile, suppliers, inventory, products, "D").collect()}
    assert set(rows) == {("A", "L1"), ("B", "L1"), ("C", "L2")}
    a, b, c = rows[("A", "L1")], rows[("B", "L1")], rows[("C", "L2")]
    assert (a["demand_class"], a["abc_xyz"], a["profile_category"], a["has_profile"]) == ("smooth", "AX", "toys", True)
    assert (a["supplier_lead_time_mean_days"], a["supplier_moq"], a["supplier_unit_cost"]) in {
        (7.0, 10.0, 5.0),
        (14.0, 0.0, 6.0),
    }
    assert (a["on_hand"], a["on_order"], a["backorders"]) == (50.0, 20.0, 5.0)
    assert a["snapshot_date"] == dt.date(2024, 2, 28) and a["product_unit_cost"] == 5.0
    assert b["has_profile"] is None and b["has_supplier"] and b["on_hand"] is None and b["product_unit_cost"] is None
    assert c["has_profile"] is None and c["has_supplier"] is None and c["on_hand"] == 3.0


def test_the_smoothed_empirical_quantile_in_sql_matches_numpy(spark) -> None:
    # Rounding spreads the position over [S, S + w): the SQL stages must give the numpy reference's x.
    rng = np.random.default_rng(11)
    rows = []
    for width, coverage in [(0.0, 0.9), (2.0, 0.9), (0.3, 0.95), (50.0, 29 / 30), (5.0, 1.0)]:
        samples = sorted(float(v) for v in rng.gamma(0.4, 5.0, 30) - 2.0)
        rows.append((samples, width, coverage))
    frame = spark.createDataFrame(rows, "samples array<double>, width double, coverage double")
    got = frame.selectExpr(smoothed_quantile("samples", "width", "`coverage`").alias("x")).collect()
    for (samples, width, coverage), row in zip(rows, got, strict=True):
        if width == 0.0:
            assert row["x"] is None  # the plain quantile applies
        else:
            expected = smoothed_empirical_quantile(np.array(samples), width, coverage)
            assert row["x"] == pytest.approx(expected, abs=1e-4)


def test_forecast_intervals_size_the_stock_without_backtests(cycle_plan) -> None:
    selection, safety, plan = (cycle_plan[k].loc["E"] for k in ("selection", "safety", "plan"))
    assert selection["selection_method"] == "fallback"
    assert selection["candidate_scores"] is None
    assert safety["error_std_source"] == "forecast_interval"
    assert safety["forecast_error_std"] == pytest.approx(3.0)
    assert safety["lead_time_days"] == 7.0  # -3 is not a lead time
    assert "lead time missing or invalid" in plan["notes"]
    assert "pack size missing or invalid" in plan["notes"]
    assert plan["pack_size"] == 1.0
    assert plan["unit_cost"] == 8.0


def test_a_series_without_profile_gets_the_default_target(cycle_plan) -> None:
    safety, plan = cycle_plan["safety"].loc["F"], cycle_plan["plan"].loc["F"]
    assert safety["service_target"] == 0.95
    assert "no series profile" in safety["notes"]
    # Its supplier row, snapshot and product still reach it (the per-series inputs are joined fully
    # to each other before they meet the candidates).
    assert plan["lead_time_days"] == 7.0 and plan["unit_cost"] == 1.0
    assert plan["inventory_position"] == 0.0
    assert "no supplier row" not in plan["notes"]


def test_fill_rate_factor_solves_the_loss_equation(fill_rate_blend_plan) -> None:
    safety = fill_rate_blend_plan["safety"].loc["B"]
    sigma = math.sqrt(14 * 84 / 81 + 25 * 4)
    loss = (1 - 0.95) * 5.0 * 7.0 / sigma
    k = brentq(lambda x: float(normal_loss(x)) - loss, 0.0, 8.0)
    assert safety["service_measure"] == "fill_rate"
    assert safety["safety_factor"] == pytest.approx(k, abs=1e-4)
    assert safety["safety_stock_periodic"] == pytest.approx(k * sigma, abs=1e-3)


def test_fill_rate_met_by_the_lot_size_alone_needs_no_safety_stock(fill_rate_blend_plan) -> None:
    # (s, Q): G(k) = 0.02 · 348 / 10.2 is above G(0), so k = 0.
    assert fill_rate_blend_plan["safety"].loc["A"]["safety_stock_continuous"] == 0.0


def test_fill_rate_for_intermittent_series_uses_the_empirical_shortfall(fill_rate_blend_plan) -> None:
    # Allowed shortfall 0.1 · 0.5 · 7 = 0.35 a cycle: only a buffer of 10 gets the mean shortfall below it.
    safety = fill_rate_blend_plan["safety"].loc["D"]
    assert safety["distribution"] == "empirical"
    assert safety["safety_stock_periodic"] == pytest.approx(math.hypot(10.0, cycle_service_factor(0.90) * 0.5))


def test_blend_wins_when_errors_cancel(fill_rate_blend_plan) -> None:
    selection = fill_rate_blend_plan["selection"].loc["A"]
    # Inverse-MSE weights 0.8 / 0.2 turn errors +1 and -2 into 0.8 - 0.4 = 0.4.
    assert selection["selected_model"] == "blend"
    assert selection["selection_method"] == "blend"
    assert json.loads(selection["blend_weights"]) == pytest.approx({"bad": 0.2, "good": 0.8})
    assert selection["metric_value"] == pytest.approx(0.4 * math.sqrt(11 * 84 / 81))
    assert fill_rate_blend_plan["safety"].loc["A"]["forecast_error_std"] == pytest.approx(0.4 * math.sqrt(84 / 81))
    assert fill_rate_blend_plan["selection"].loc["B"]["selected_model"] == "good"  # one model: no blend


def test_missing_columns_are_named(spark) -> None:
    data = inputs(spark)
    data["forecast"] = data["forecast"].drop("yhat")
    with pytest.raises(ValidationError, match=r"forecast lacks column.*yhat"):
        plan_inventory(**data, settings=InventoryConfig(), stamp=STAMP)


def test_forecast_accuracy_rolls_up_by_dimension(spark, cycle_plan) -> None:
    metrics = spark.createDataFrame(
        [
            ("D", "A", "L1", "good", 1, 0.5, 0.1, 0.0, 1.0, 0.8, 0.9),
            ("D", "A", "L1", "good", 2, 0.7, 0.1, 0.0, 1.0, 0.8, 0.9),
            ("D", "A", "L1", "bad", 1, 1.0, 0.2, 0.0, 2.0, 0.5, 0.7),
            ("D", "B", "L1", "good", 1, float("nan"), 0.3, 0.1, 1.0, 0.8, 1.0),
        ],
        "freq string, sku string, location string, model string, fold int, mase double, wape double, "
        "bias double, rmse double, coverage_80 double, coverage_95 double",
    )
    columns = ["sku", "location", "model", "category", "abc_xyz", "demand_class"]
    series = spark.createDataFrame(cycle_plan["safety"][columns].reset_index(drop=True))
    rows = forecast_accuracy(metrics, series, dataclasses.replace(InventoryConfig()), STAMP).toPandas()
    total = rows[(rows["dimension"] == "total") & (rows["model"] == "good")].iloc[0]
    assert total["series"] == 2 and total["folds"] == 3
    assert total["mase"] == pytest.approx(0.6)  # A's mean 0.6; B's NaN is left out
    selected = rows[(rows["dimension"] == "abc_xyz") & (rows["model"] == "selected")].set_index("dimension_value")
    assert selected.loc["AX", "mase"] == pytest.approx(0.6)
    assert math.isnan(selected.loc["BY", "mase"])  # B's only MASE is undefined


def test_the_pool_mean_error_corrects_the_demand_rate(spark) -> None:
    # 30 smooth series of one model under-forecast by 1 unit a day (ŷ = 10, y = 11 ± 0.5): the pool's
    # bias share is 1 / 10 and the plan's demand rate the forecast × 1.1. A pool of one series (C, the
    # only erratic one) is not corrected: its mean error is its own.
    from replenish.inventory.selection import BIAS_POOL_MIN_SERIES, BacktestGrid, backtest_errors

    skus = [f"S{i:02d}" for i in range(BIAS_POOL_MIN_SERIES)]
    backtest, forecast, profile = [], [], []
    for sku in [*skus, "C"]:
        bias = 1.0 if sku != "C" else 5.0
        profile.append(("D", sku, "L1", "toys", "smooth" if sku != "C" else "erratic", "BY"))
        for fold in range(1, FOLDS + 1):
            cutoff = FORECAST_START - dt.timedelta(days=HORIZON * (FOLDS - fold + 1))
            for step in range(1, HORIZON + 1):
                y = 10.0 + bias + (0.5 if step % 2 else -0.5)
                day = cutoff + dt.timedelta(days=step - 1)
                backtest.append(("f", dt.date(2024, 2, 29), "D", sku, "L1", "m", fold, cutoff, day, step, y, 10.0))
        for step in range(1, HORIZON + 1):
            date = FORECAST_START + dt.timedelta(days=step - 1)
            forecast.append(("f", dt.date(2024, 2, 29), "D", sku, "L1", "m", date, step, 10.0, 9.0, 11.0, 8.0, 12.0))
    backtest_df = spark.createDataFrame(backtest, BACKTEST_SCHEMA)
    profile_df = spark.createDataFrame(profile, PROFILE_SCHEMA)
    grid = BacktestGrid(forecast_steps=HORIZON, folds=tuple(range(1, FOLDS + 1)), backtest_steps=HORIZON)
    errors = backtest_errors(
        backtest_df, "D", grid, keep_path=False, demand_classes=profile_df.select("sku", "location", "demand_class")
    ).toPandas()
    shares = errors.set_index("sku")["bias_share"]
    assert shares[skus].to_numpy() == pytest.approx(0.1)
    assert shares["C"] == 0.0

    empty = spark.createDataFrame([], SUPPLIER_SCHEMA)
    plans = {}
    for correct in (True, False):
        plan = plan_inventory(
            forecast=spark.createDataFrame(forecast, FORECAST_SCHEMA),
            backtest=backtest_df,
            profile=profile_df,
            suppliers=empty,
            inventory=spark.createDataFrame([], INVENTORY_SCHEMA),
            products=spark.createDataFrame([], PRODUCT_SCHEMA),
            settings=InventoryConfig(bias_correction=correct),
            stamp=STAMP,
        )
        plans[correct] = plan.safety_stock.toPandas().set_index("sku")
    assert plans[True].loc[skus[0], "demand_per_period"] == pytest.approx(11.0)
    assert plans[False].loc[skus[0], "demand_per_period"] == pytest.approx(10.0)
    assert plans[True].loc["C", "demand_per_period"] == pytest.approx(10.0)


# Tests that read Spark's plans or generated code go through private APIs (`DataFrame._jdf`) whose text
# format is Spark 3.5's. Each guards a speed-up measured in docs/benchmarks.md.
SPARK_UPGRADE = (
    "This check reads Spark internals (checked on Spark 3.5). After a Spark upgrade: if only the text "
    "format changed, adapt the parsing; if the plan changed, rerun benchmarks/inventory_bench.py and keep "
    "the check only while the speed-up it guards (docs/benchmarks.md) still holds."
)


def _shuffle_keys(df) -> list[tuple[str, ...]]:
    """The keys of every hash-partitioning exchange in `df`'s physical plan, without expression ids."""
    import re

    text = df._jdf.queryExecution().executedPlan().toString()
    keys = []
    for match in re.finditer(r"Exchange hashpartitioning\(([^)]*)\)", text):
        names = [re.sub(r"#\d+L?$", "", part.strip()) for part in match.group(1).split(",")]
        keys.append(tuple(name for name in names if not name.isdigit()))
    return keys


def test_the_plan_shuffles_each_input_once_by_sku(spark) -> None:
    # Under PLANNING_CONF every exchange of the plan is an input's own partitioning by SKU, the partial
    # aggregates of the forecast and backtest rows per series × model (then partitioned by SKU), or the
    # tiny aggregate of the pooled shares per model and class. With the Spark default the joins shuffle again.
    from replenish.inventory.policy import PLANNING_CONF
    from replenish.shared import session_conf

    no_broadcast = {"spark.sql.autoBroadcastJoinThreshold": "-1"}
    with session_conf(spark, {**PLANNING_CONF, **no_broadcast}):
        planned = _shuffle_keys(plan_inventory(**inputs(spark), settings=InventoryConfig(), stamp=STAMP).series)
    with session_conf(spark, no_broadcast):
        default = _shuffle_keys(plan_inventory(**inputs(spark), settings=InventoryConfig(), stamp=STAMP).series)
    expected = {("sku",), ("sku", "location", "model"), ("model", "pool")}
    assert planned and set(planned) <= expected, f"unexpected shuffles {planned}. {SPARK_UPGRADE}"
    # The forecast once, the backtest twice: for the series' errors and, narrower, for the pooled shares.
    assert planned.count(("sku", "location", "model")) <= 3
    assert len(default) > len(planned)
    assert any(keys not in expected for keys in default)


def test_planning_aggregates_without_the_two_level_hash_map(spark) -> None:
    # Spark accepts any key silently: check that the setting reaches the generated aggregation code
    # (of the whole physical plan, which adaptive execution would only plan stage by stage).
    from replenish.inventory.policy import PLANNING_CONF
    from replenish.shared import session_conf

    def generated_code(conf: dict[str, str]) -> str:
        with session_conf(spark, {**conf, "spark.sql.adaptive.enabled": "false"}):
            series = plan_inventory(**inputs(spark), settings=InventoryConfig(), stamp=STAMP).series
            stages = series._jdf.queryExecution().debug().codegenToSeq()
        return "\n".join(str(stages.apply(i)._2()) for i in range(stages.size()))

    planned, default = generated_code(PLANNING_CONF), generated_code({})
    assert "hashAgg_doAggregateWithKeys" in planned, SPARK_UPGRADE
    assert "FastHashMap" in default, SPARK_UPGRADE
    assert "FastHashMap" not in planned, f"the two-level hash map is back in the plan's aggregations. {SPARK_UPGRADE}"


def test_the_policy_above_the_model_choice_is_code_generated_whole(spark) -> None:
    # An expression without generated code (a lambda of transform/aggregate/array_sort, to_json) takes
    # its operator out of whole-stage code generation, and every such operator copies the wide
    # per-series row once more. Without empirical sizing nothing above the window needs one.
    settings = InventoryConfig(intermittent_method="normal")
    series = plan_inventory(**inputs(spark), settings=settings, stamp=STAMP).series
    lines = series._jdf.queryExecution().optimizedPlan().toString().splitlines()
    above_window = lines[: next(i for i, line in enumerate(lines) if "Window [" in line)]
    assert above_window, SPARK_UPGRADE
    uncompiled = [line[:120] for line in above_window if "lambdafunction" in line or "to_json" in line]
    assert not uncompiled, f"expressions without generated code above the model choice: {uncompiled}. {SPARK_UPGRADE}"


def test_the_windowed_demand_rate_counts_the_last_step_in_part(spark) -> None:
    # Steps 1, 2 and 4 (3 missing) of a 4-step path: over 2.5 periods steps 1 and 2 count whole; over
    # 3.5 step 4 counts for half (it starts after 3 periods); no path, or no steps in range: 0.
    rows = [
        ([(1, 10.0), (2, 20.0), (4, 40.0)], 2.5),
        ([(1, 10.0), (2, 20.0), (4, 40.0)], 3.5),
        ([(1, -4.0)], 1.0),
        ([], 2.0),
        (None, 2.0),
    ]
    df = spark.createDataFrame(rows, "path array<struct<step: int, yhat: double>>, periods double")
    rate = windowed_demand_rate("path", "`periods`", 4)
    assert [r[0] for r in df.selectExpr(str(rate)).collect()] == pytest.approx([15.0, 20.0, 0.0, 0.0, 0.0])


def test_candidate_scores_are_the_json_that_to_json_writes(spark) -> None:
    from pyspark.sql import functions as F

    from replenish.inventory.selection import _json_member

    values = [("arima", 0.123456789), ("ets", 1e-5), ('a"b\\c', 12345678.9), ("x", float("nan"))]
    values += [("y", float("inf")), ("z", -float("inf")), ("w", 0.0), ("v", -1.5e300), ("u", None)]
    df = spark.createDataFrame(values, "model string, score double")
    rows = df.select(
        F.to_json(F.create_map("model", "score")).alias("expected"),
        F.concat(F.lit("{"), _json_member(F.col("model"), F.col("score")), F.lit("}")).alias("written"),
    ).collect()
    assert [r["written"] for r in rows] == [r["expected"] for r in rows]


def test_session_conf_restores_what_was_set(spark) -> None:
    from replenish.shared import session_conf

    key, unset = "spark.sql.shuffle.partitions", "spark.sql.requireAllClusterKeysForCoPartition"
    before = spark.conf.get(key)
    with session_conf(spark, {key: "3", unset: "false"}):
        assert spark.conf.get(key) == "3" and spark.conf.get(unset) == "false"
    assert spark.conf.get(key) == before
    assert spark.conf.get(unset) == "true"  # the Spark default again


def test_backtest_grid_and_rows_outside_it(spark) -> None:
    # The grid comes from the run's rows; a row of a fold or step outside it is not scored.
    from replenish.inventory.selection import backtest_errors, backtest_grid

    data = inputs(spark)
    grid = backtest_grid(data["forecast"], data["backtest"], "D")
    assert (grid.forecast_steps, grid.folds, grid.backtest_steps) == (HORIZON, (1, 2, 3), HORIZON)
    smaller = dataclasses.replace(grid, folds=(1, 2))
    full = backtest_errors(data["backtest"], "D", grid, keep_path=True).toPandas().set_index(["sku", "model"])
    part = backtest_errors(data["backtest"], "D", smaller, keep_path=True).toPandas().set_index(["sku", "model"])
    assert (full["folds"] == 3).all() and (part["folds"] == 2).all()
    assert (part["backtest_periods"] * 3 == full["backtest_periods"] * 2).all()
    path = full.loc[("D", "good")]["error_path"]
    assert [(cell["fold"], cell["step"]) for cell in path] == [(f, s) for f in (1, 2, 3) for s in range(1, 29)]


PLANS = Path(__file__).resolve().parent / "plans"
UPDATE_PLANS = "REPLENISH_UPDATE_PLANS"


def normalized_optimized_plan(df) -> str:
    """`df`'s optimized logical plan without expression ids, every field printed."""
    import re

    text = df._jdf.queryExecution().optimizedPlan().toString()
    return re.sub(r"#\d+L?", "", text).rstrip() + "\n"


@pytest.mark.parametrize(("case", "settings"), [("cycle_empirical", InventoryConfig())])
def test_the_optimized_plan_did_not_change(spark, case: str, settings: InventoryConfig) -> None:
    # A refactoring of the plan (stages, SQL builders) must leave what Spark runs alone: the inventory
    # benchmark's figures and the gold tables depend on it. The stored plans are of this file's inputs.
    from replenish.inventory.policy import PLANNING_CONF
    from replenish.shared import session_conf

    with session_conf(spark, {**PLANNING_CONF, "spark.sql.debug.maxToStringFields": "100000"}):
        plan = plan_inventory(**inputs(spark), settings=settings, stamp=STAMP)
        actual = normalized_optimized_plan(plan.series)
    stored = PLANS / f"inventory_{case}.plan"
    if os.environ.get(UPDATE_PLANS) == "1":
        stored.write_text(actual)
    expected = stored.read_text()
    assert actual == expected, (
        f"The optimized plan of plan_inventory ({case}) differs from {stored.relative_to(PLANS.parents[1])}. "
        "If the change is deliberate (a change of the policy's maths or columns, or a Spark upgrade), "
        f"rerun this test with {UPDATE_PLANS}=1 to store the new plan, check that the gold tables of a demo "
        "run are what you expect, rerun benchmarks/inventory_bench.py, and commit the new plan file with "
        "the reason. Otherwise the refactoring changed what Spark runs: undo it."
    )
