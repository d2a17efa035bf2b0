"""Populations as data: the dict a model card or a run records, and YAML files users write.

A population is a :class:`~lensfind.simulation.population.PopulationConfig`.
Its dict form (JSON-ready: tuples as lists) is what a simulated set's attrs and
a model card's ``training.train_set.population`` hold, and what a scan records
as the population its selection function is conditional on. A YAML file holds
any subset of the fields; the rest come from a base population (for a scan:
the one the model was trained on).
"""

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lensfind.errors import ConfigError
from lensfind.settings_file import read_yaml
from lensfind.simulation.compound import CompoundConfig
from lensfind.simulation.population import PopulationConfig

_FIELDS = {f.name: f for f in dataclasses.fields(PopulationConfig)}


def population_to_dict(config: PopulationConfig) -> dict[str, Any]:
    """The JSON-ready dict of ``config`` (tuples as lists, mappings as dicts)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=dict))


def population_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a population's dict form that differ from the defaults'."""
    default = population_to_dict(PopulationConfig())
    return {k: v for k, v in data.items() if default.get(k, object()) != v}


def _value(name: str, value: Any) -> Any:
    default = _FIELDS[name].default
    if name == "compound":
        if not isinstance(value, Mapping):
            raise ConfigError(f"population: compound must be a mapping, got {value!r}")
        known = {f.name for f in dataclasses.fields(CompoundConfig)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"population.compound: unknown keys {unknown} (known: {sorted(known)})"
            )
        return CompoundConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        )
    if isinstance(default, tuple):  # every (low, high) range
        if not (isinstance(value, list | tuple) and len(value) == 2):
            raise ConfigError(f"population: {name} must be [low, high], got {value!r}")
        lo, hi = (float(v) for v in value)
        if not lo <= hi:
            raise ConfigError(f"population: {name} low {lo} > high {hi}")
        return (lo, hi)
    if name in ("nonlens_mix", "lens_mix"):
        return {str(k): float(v) for k, v in dict(value).items()}
    if name == "psf":
        return str(value)
    return float(value)


def population_from_dict(
    data: Mapping[str, Any], base: PopulationConfig | None = None
) -> PopulationConfig:
    """A population from (part of) its dict form, the rest from ``base`` (default: defaults).

    Raises
    ------
    ConfigError
        An unknown key, or a value of the wrong shape (naming the key).
    """
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"population: unknown keys {unknown} (known: {sorted(_FIELDS)})")
    try:
        values = {k: _value(k, v) for k, v in data.items()}
        return dataclasses.replace(base or PopulationConfig(), **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"population: {exc}") from None


def load_population(path: Path, base: PopulationConfig | None = None) -> PopulationConfig:
    """A population from a YAML file of :class:`PopulationConfig` fields over ``base``."""
    try:
        return population_from_dict(read_yaml(path), base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
