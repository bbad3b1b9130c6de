"""The random draws of the generator, on numpy: uniforms from hashes and the distributions built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from replenish.data import draws
from replenish.data.draws import NUMPY

SAMPLES = 400_000


@pytest.fixture()
def uniforms() -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniform samples in (0, 1), made by the hash-to-uniform map from random int64s."""
    generator = np.random.default_rng(7)
    hashes = generator.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=(2, SAMPLES), dtype=np.int64)
    return draws.hash_to_uniform(hashes[0], NUMPY), draws.hash_to_uniform(hashes[1], NUMPY)


def test_hash_to_uniform_maps_the_whole_int64_range_inside_the_open_unit_interval() -> None:
    extremes = np.array([np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], dtype=np.int64)
    u = draws.hash_to_uniform(extremes, NUMPY)
    assert np.all((u > 0.0) & (u < 1.0))
    assert u[2] == 0.5 * 2.0**-52  # 0 is the smallest value
    assert u[1] == 1.0 - 0.5 * 2.0**-52  # -1 is all ones: the largest
    assert u[0] == pytest.approx(0.5)  # the sign bit alone is the middle


def test_hash_to_uniform_is_uniform(uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    u, _ = uniforms
    assert u.mean() == pytest.approx(0.5, abs=0.003)
    assert u.var() == pytest.approx(1 / 12, rel=0.01)
    assert stats.kstest(u, "uniform").pvalue > 0.001


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_one_hash_gives_several_independent_uniforms(parts: int) -> None:
    hashes = np.random.default_rng(3).integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, SAMPLES, np.int64)
    pieces = np.array([draws.hash_to_uniform(hashes, NUMPY, part=part, parts=parts) for part in range(parts)])
    assert np.all((pieces > 0.0) & (pieces < 1.0))
    assert pieces.mean(axis=1) == pytest.approx(np.full(parts, 0.5), abs=0.003)
    assert pieces.var(axis=1) == pytest.approx(np.full(parts, 1 / 12), rel=0.02)
    correlations = np.corrcoef(pieces)[np.triu_indices(parts, k=1)]
    assert np.all(np.abs(correlations) < 0.01)


def test_hash_parts_come_from_disjoint_bits() -> None:
    only_top_half = np.array([np.int64(-(2**32))], dtype=np.int64)  # bits 32..63 set, 0..31 clear
    top, bottom = (draws.hash_to_uniform(only_top_half, NUMPY, part=part, parts=2)[0] for part in (0, 1))
    assert top == pytest.approx(1.0, abs=1e-9)
    assert bottom == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="part"):
        draws.hash_to_uniform(only_top_half, NUMPY, part=2, parts=2)


def test_standard_normal_has_mean_zero_and_variance_one(uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    z = draws.standard_normal(*uniforms, NUMPY)
    assert z.mean() == pytest.approx(0.0, abs=0.01)
    assert z.var() == pytest.approx(1.0, rel=0.01)
    assert stats.kstest(z, "norm").pvalue > 0.001


@pytest.mark.parametrize("shape", [1.0, 2.0, 5.0, 10.0])
def test_gamma_mean_and_variance_equal_the_shape(shape: float, uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    x = draws.gamma(shape, *uniforms, NUMPY)
    assert np.all(x >= 0)
    assert x.mean() == pytest.approx(shape, rel=0.01)
    assert x.var() == pytest.approx(shape, rel=0.03)


def test_gamma_refuses_shapes_where_the_approximation_is_poor() -> None:
    with pytest.raises(ValueError, match="shape >= 1"):
        draws.gamma(0.5, np.array([0.5]), np.array([0.5]), NUMPY)


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.3, 1.0, 1.9, 2.0, 5.0, 40.0])
def test_poisson_mean_and_variance_equal_the_rate(rate: float, uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    x = draws.poisson(np.full(SAMPLES, rate), *uniforms, NUMPY)
    assert np.all(x == np.floor(x)) and np.all(x >= 0)
    assert x.mean() == pytest.approx(rate, rel=0.01, abs=0.002)
    assert x.var() == pytest.approx(rate, rel=0.03, abs=0.002)


@pytest.mark.parametrize("rate", [0.05, 0.5, 1.5])
def test_poisson_below_the_threshold_is_the_exact_inverse_cdf(rate: float) -> None:
    u = np.linspace(0.0005, 0.9995, 2000)
    expected = stats.poisson.ppf(u, rate)
    assert np.array_equal(draws.poisson(np.full_like(u, rate), u, np.full_like(u, 0.3), NUMPY), expected)


def test_poisson_above_the_threshold_is_close_to_the_poisson(uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    rate = 6.0
    x = draws.poisson(np.full(SAMPLES, rate), *uniforms, NUMPY)
    values, counts = np.unique(x, return_counts=True)
    total_variation = 0.5 * (
        np.abs(counts / SAMPLES - stats.poisson.pmf(values, rate)).sum() + stats.poisson.sf(values.max(), rate)
    )
    assert total_variation < 0.01


def test_geometric_has_the_given_mean(uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    u, _ = uniforms
    for mean in (0.5, 2.0, 6.0):
        x = draws.geometric(mean, u, NUMPY)
        assert x.mean() == pytest.approx(mean, rel=0.02)
        assert x.var() == pytest.approx(mean * (1 + mean), rel=0.04)
    assert np.all(draws.geometric(np.zeros(3), np.array([0.1, 0.5, 0.9]), NUMPY) == 0)


def test_gumbel_has_the_euler_mascheroni_mean(uniforms: tuple[np.ndarray, np.ndarray]) -> None:
    g = draws.gumbel(uniforms[0], NUMPY)
    assert g.mean() == pytest.approx(np.euler_gamma, abs=0.01)
    assert g.var() == pytest.approx(math.pi**2 / 6, rel=0.02)


@pytest.mark.parametrize("count", [7, 20, 133, 1000])
@pytest.mark.parametrize("share", [0.08, 0.35, 0.5])
def test_stratified_selects_an_exact_share(count: int, share: float) -> None:
    positions = draws.stratified(np.arange(count), draws.GOLDEN_STEP, draws.seed_offset(42, "intermittent"), NUMPY)
    assert np.all((positions >= 0) & (positions < 1))
    assert abs((positions < share).sum() - share * count) <= 2


def test_seed_offset_depends_on_seed_and_stream_only() -> None:
    assert draws.seed_offset(42, "launch") == draws.seed_offset(42, "launch")
    assert draws.seed_offset(42, "launch") != draws.seed_offset(43, "launch")
    assert draws.seed_offset(42, "launch") != draws.seed_offset(42, "intermittent")
    assert 0.0 <= draws.seed_offset(1, "x") < 1.0


def test_uniform_rejects_stream_names_that_would_break_the_expression() -> None:
    with pytest.raises(ValueError, match="stream names"):
        draws.uniform(42, "it's", "sku_index")
    with pytest.raises(ValueError, match="at least one key column"):
        draws.uniform(42, "promo")
