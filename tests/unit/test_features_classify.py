"""Syntetos-Boylan demand classes, ABC and XYZ on tiny hand-computed arrays (no Spark)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replenish.features.classify import (
    abc_classes,
    average_demand_interval,
    classify_demand,
    coefficient_of_variation,
    squared_cv,
    syntetos_boylan_class,
    xyz_class,
)


def test_adi_is_periods_per_nonzero_period() -> None:
    assert average_demand_interval([0, 0, 3, 0, 0, 5]) == 3.0
    assert average_demand_interval([1, 2, 3]) == 1.0
    assert math.isnan(average_demand_interval([0, 0, 0]))


def test_cv2_uses_nonzero_sizes_and_population_variance() -> None:
    # sizes 3 and 5: mean 4, population variance 1
    assert squared_cv([0, 0, 3, 0, 0, 5]) == pytest.approx(1 / 16)
    assert squared_cv([0, 7, 0, 0]) == 0.0
    assert math.isnan(squared_cv([0, 0]))


@pytest.mark.parametrize(
    ("demand", "expected"),
    [
        ([5, 6, 5, 6, 5, 6], "smooth"),  # ADI 1, CV² 0.008
        ([1, 9, 1, 9, 1, 9], "erratic"),  # ADI 1, CV² 16/25 = 0.64
        ([0, 0, 0, 4, 0, 0, 0, 4], "intermittent"),  # ADI 4, CV² 0
        ([0, 0, 0, 1, 0, 0, 0, 7], "lumpy"),  # ADI 4, CV² 9/16
        ([0, 0, 0, 0], "no_demand"),
        ([], "no_demand"),
    ],
)
def test_classify_demand_quadrants(demand: list[float], expected: str) -> None:
    assert classify_demand(np.array(demand, dtype=float)) == expected


def test_cutoffs_belong_to_the_upper_class() -> None:
    assert syntetos_boylan_class(1.32, 0.1) == "intermittent"
    assert syntetos_boylan_class(1.31, 0.49) == "erratic"
    assert syntetos_boylan_class(1.32, 0.49) == "lumpy"
    assert syntetos_boylan_class(float("nan"), float("nan")) == "no_demand"


def test_censored_periods_are_left_out() -> None:
    demand = [0, 0, 5, 5]
    assert classify_demand(demand) == "intermittent"  # ADI 2
    assert classify_demand(demand, censored=[True, True, False, False]) == "smooth"  # ADI 1
    assert average_demand_interval(demand, [True, False, False, False]) == 1.5
    with pytest.raises(ValueError, match="shape"):
        classify_demand(demand, censored=[True])


def test_abc_by_revenue_share_before_each_series() -> None:
    # sorted 50, 30, 15, 5 of 100: shares before 0, .5, .8, .95
    assert abc_classes([50, 30, 15, 5], (0.8, 0.95)).tolist() == ["A", "A", "B", "C"]
    # input order is kept
    assert abc_classes([5, 50, 15, 30], (0.8, 0.95)).tolist() == ["C", "A", "B", "A"]
    # a series that crosses a threshold stays in the higher class; no revenue is always C
    assert abc_classes([100, 0], (0.8, 0.95)).tolist() == ["A", "C"]
    assert abc_classes([0, 0], (0.8, 0.95)).tolist() == ["C", "C"]
    # other thresholds: before-shares 0, .5, .8, .95 against (0.5, 0.9)
    assert abc_classes([50, 30, 15, 5], (0.5, 0.9)).tolist() == ["A", "B", "B", "C"]


def test_xyz_thresholds() -> None:
    assert coefficient_of_variation([2, 2, 2]) == 0.0
    assert coefficient_of_variation([1, 9, 1, 9]) == pytest.approx(0.8)
    assert math.isnan(coefficient_of_variation([0, 0]))
    assert [xyz_class(cv, (0.5, 1.0)) for cv in (0.0, 0.5, 0.51, 1.0, 1.5, float("nan"))] == [
        "X",
        "X",
        "Y",
        "Y",
        "Z",
        "Z",
    ]
