"""Turn a job's settings, arguments and result dict into MLflow params and metrics (no MLflow here).

MLflow keys allow letters, digits, `_ - . / :` and spaces; anything else becomes `_`. Nested dicts
become `/`-separated metric keys; a list of numbers becomes one metric with a step per element (an
LSTM's loss per epoch); a list of records is keyed by each record's first text value (simulate's
`classes`: `classes/AX/achieved`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_PARAM_VALUE = 6000
"""MLflow's limit on a param value's length; longer values are cut with a marker."""

NOT_METRICS = frozenset({"input_versions", "versions", "seconds", "run_id", "job"})
"""Result keys whose numbers are not measurements (Delta versions are logged as tags instead)."""

_INVALID = re.compile(r"[^\w.\-/: ]")


def clean_key(key: str) -> str:
    """`key` with the characters MLflow refuses replaced by `_` (and no leading slash)."""
    return _INVALID.sub("_", key).lstrip("/") or "_"


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 12] + "…(truncated)"


def flatten_params(values: Mapping[str, Any], *, prefix: str = "") -> dict[str, str]:
    """Nested settings as `a.b.c -> text`; lists and None as JSON, mappings recursed into."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[clean_key(name)] = _param_value(value)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _label(record: Mapping[str, Any], index: int) -> str:
    return next((value for value in record.values() if isinstance(value, str)), str(index))


def flatten_metrics(
    result: Mapping[str, Any], *, prefix: str = "", skip: Iterable[str] = NOT_METRICS
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The numbers of a job's result dict: (scalar metrics, stepped metrics).

    Booleans, text, None and NaN are not metrics; keys in `skip` are ignored at the top level.

    Example:
        ```python
        flatten_metrics({"rows": 3, "loss": [0.9, 0.5], "mase": {"arima": 0.8}})
        # ({"rows": 3.0, "mase/arima": 0.8}, {"loss": [0.9, 0.5]})
        ```
    """
    skipped = set(skip)
    scalars: dict[str, float] = {}
    stepped: dict[str, list[float]] = {}
    for key, value in result.items():
        if not prefix and key in skipped:
            continue
        name = clean_key(f"{prefix}{key}")
        if isinstance(value, Mapping):
            inner_scalars, inner_stepped = flatten_metrics(value, prefix=f"{name}/", skip=())
            scalars.update(inner_scalars)
            stepped.update(inner_stepped)
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(item, Mapping) for item in value):
                for index, record in enumerate(value):
                    label = clean_key(_label(record, index))
                    inner_scalars, inner_stepped = flatten_metrics(record, prefix=f"{name}/{label}/", skip=())
                    scalars.update(inner_scalars)
                    stepped.update(inner_stepped)
            else:
                numbers = [_number(item) for item in value]
                if numbers and all(number is not None for number in numbers):
                    stepped[name] = [float(number) for number in numbers if number is not None]
        elif (number := _number(value)) is not None:
            scalars[name] = number
    return scalars, stepped
