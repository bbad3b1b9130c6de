"""Profiles: `conf/base.yaml`, then `conf/<profile>.yaml`, then `--set key=value` overrides.

The merged mapping is resolved once, at the edge (jobs, notebooks), into frozen dataclasses
(`section`), so library code receives typed, validated settings and never reads YAML itself.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib.resources
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from replenish.errors import ConfigError

PROFILES = ("local", "cluster", "databricks")
T = TypeVar("T")


def _conf_text(name: str, conf_dir: str | Path | None) -> str:
    if conf_dir is not None:
        path = Path(conf_dir) / name
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        return path.read_text()
    return importlib.resources.files("replenish.conf").joinpath(name).read_text()


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base`; mappings merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML so `3`, `true`, `[1, 2]` keep their types.

    Spark settings contain dots themselves, so everything after `spark.conf.` is one key.
    """
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set has an empty key: {text!r}")
    path = ["spark", "conf", key[len("spark.conf.") :]] if key.startswith("spark.conf.") else key.split(".")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from exc
    return path, value


def load(
    profile: str = "local",
    overrides: Iterable[str] = (),
    *,
    conf_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Return the merged settings of `profile` with `overrides` applied.

    Args:
        profile: one of `local`, `cluster`, `databricks`.
        overrides: `key=value` strings, dotted keys into the YAML tree.
        conf_dir: a folder with `base.yaml` and `<profile>.yaml`; the packaged copy by default.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    settings = merge(
        _lake_as_section(yaml.safe_load(_conf_text("base.yaml", conf_dir)) or {}),
        _lake_as_section(yaml.safe_load(_conf_text(f"{profile}.yaml", conf_dir)) or {}),
    )
    settings["profile"] = profile
    for text in overrides:
        path, value = parse_override(text)
        if path == ["lake"] and not isinstance(value, Mapping):
            path = ["lake", "root"]  # `--set lake=DIR` keeps meaning the root folder
        node = settings
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return settings


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return section({where: value}, where, hint)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        if hint is str and isinstance(value, (int, float, dt.date)) and not isinstance(value, bool):
            return value.isoformat() if isinstance(value, dt.date) else str(value)  # YAML reads 2024-01-01 as a date
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    if typing.get_origin(hint) is typing.Literal and value not in args:
        raise ConfigError(f"{where}: expected one of {args}, got {value!r}")
    return value


def section(settings: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Build the frozen dataclass `cls` from `settings[name]`, rejecting unknown keys.

    Unknown keys are errors rather than ignored, so a mistyped `--set` fails loudly.
    """
    raw = settings.get(name, {}) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name}: expected a section, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {key: _coerce(value, hints[key], f"{name}.{key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from exc


def config_hash(settings: Mapping[str, Any]) -> str:
    """A short stable hash of the settings, stamped on output rows for lineage."""
    import hashlib

    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _lake_as_section(layer: dict[str, Any]) -> dict[str, Any]:
    """`lake: DIR` (a profile's shorthand) is `lake: {root: DIR}`, so layers merge key by key."""
    if "lake" in layer and not isinstance(layer["lake"], Mapping):
        layer = {**layer, "lake": {"root": layer["lake"]}}
    return layer


def lake_root(settings: Mapping[str, Any]) -> str:
    """The lake root folder or URI of merged settings (`lake.root`)."""
    lake = settings.get("lake")
    return str(lake.get("root", "./lakehouse") if isinstance(lake, Mapping) else lake or "./lakehouse")


def lake_engine(settings: Mapping[str, Any]) -> str:
    """The lake engine of merged settings (`lake.engine`): auto, delta-spark or embedded."""
    lake = settings.get("lake")
    engine = str(lake.get("engine", "auto")) if isinstance(lake, Mapping) else "auto"
    if engine not in ("auto", "delta-spark", "embedded"):
        raise ConfigError(f"lake.engine: expected auto, delta-spark or embedded, got {engine!r}")
    return engine
