"""`LstmSettings`: validation and the per-frequency defaults (no TensorFlow)."""

from __future__ import annotations

import pytest

from replenish.errors import ConfigError
from replenish.neural.settings import LstmSettings


@pytest.mark.parametrize(("freq", "stride"), [("D", 61), ("W", 9), ("M", 2), ("Q", 1)])
def test_default_stride_spreads_the_origins_over_a_year(freq: str, stride: int) -> None:
    settings = LstmSettings(max_origins=6)
    assert settings.stride_for(freq) == stride
    assert settings.stride_for(freq) * settings.max_origins >= {"D": 365, "W": 52, "M": 12, "Q": 4}[freq]


def test_an_explicit_stride_is_kept_and_checked() -> None:
    assert LstmSettings(stride=7).stride_for("D") == 7
    with pytest.raises(ConfigError, match=r"forecast\.lstm\.stride must be >= 1 or null"):
        LstmSettings(stride=0)
    with pytest.raises(ConfigError, match=r"forecast\.lstm\.memory_cache_bytes must be >= 0"):
        LstmSettings(memory_cache_bytes=-1)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_the_short_history_share_is_a_share(share: float) -> None:
    assert LstmSettings(short_history_share=0).short_history_share == 0
    with pytest.raises(ConfigError, match=r"forecast\.lstm\.short_history_share must be in \[0, 1\]"):
        LstmSettings(short_history_share=share)
