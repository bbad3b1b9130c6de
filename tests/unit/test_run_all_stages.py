"""`run-all --stages`: some stages of the pipeline, by name, in pipeline order."""

from __future__ import annotations

import argparse

import pytest

from replenish_jobs.run_all import STAGES, _stage_list


def test_stages_are_chosen_by_name_and_an_unknown_one_is_named() -> None:
    assert _stage_list("ingest, features,forecast") == ("ingest", "features", "forecast")
    assert set(_stage_list(",".join(STAGES))) == set(STAGES)
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown stage\(s\) \['ingst'\]: choose from generate"):
        _stage_list("ingest,ingst")
    with pytest.raises(argparse.ArgumentTypeError):
        _stage_list(" , ")
