"""Blocked top-k cosine neighbours (numpy), the kernel of gold.similar_items."""

from __future__ import annotations

import numpy as np
import pytest

from replenish.recommend import similar
from replenish.recommend.similar import lsh_bits, top_k_cosine


def test_blocked_top_k_equals_brute_force_across_blocks(monkeypatch) -> None:
    monkeypatch.setattr(similar, "BLOCK_ROWS", 7)  # several blocks, the last one partial
    rng = np.random.default_rng(1)
    factors = rng.standard_normal((40, 5)).astype(np.float32)
    skus = np.array([f"S{i}" for i in range(40)], dtype=object)
    result = top_k_cosine(skus, factors, k=4)
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    for i, sku in enumerate(skus):
        expected = [skus[j] for j in np.argsort(-scores[i])[:4]]
        rows = result[result["sku"] == sku]
        assert list(rows["similar_sku"]) == expected
        assert rows["similarity"].is_monotonic_decreasing
        assert sku not in set(rows["similar_sku"])


def test_fewer_items_than_k_and_zero_vectors() -> None:
    skus = np.array(["a", "b", "c"], dtype=object)
    result = top_k_cosine(skus, np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), k=10)
    assert len(result) == 6  # each of 3 gets the other 2
    assert np.isfinite(result["similarity"]).all()
    assert top_k_cosine(np.array(["a"], dtype=object), np.ones((1, 2)), k=3).empty


@pytest.mark.parametrize(("n", "bucket", "bits"), [(1000, 2000, 0), (100_000, 2000, 6), (1_000_000, 2000, 9)])
def test_lsh_bits_size_buckets_to_the_target(n: int, bucket: int, bits: int) -> None:
    assert lsh_bits(n, bucket_size=bucket) == bits
