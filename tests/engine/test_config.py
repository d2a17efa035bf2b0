"""lensfind.engine.config: scan settings from flags over the environment."""

import re
from pathlib import Path

import pytest

from lensfind.engine.config import ScanConfig, build_config
from lensfind.errors import ConfigError


def test_defaults():
    config = build_config(ScanConfig, {}, environ={})
    assert config == ScanConfig()
    assert config.batch_size == 256


def test_env_override(monkeypatch):
    monkeypatch.setenv("LENSFIND_SCAN__BATCH_SIZE", "512")
    monkeypatch.setenv("LENSFIND_SCAN__OUT", "/tmp/somewhere")
    monkeypatch.setenv("LENSFIND_SCAN__THRESHOLD", "0.25")
    monkeypatch.setenv("LENSFIND_SCAN__QUIET", "yes")
    config = build_config(ScanConfig, {"batch_size": None})  # None: flag not given
    assert config.batch_size == 512
    assert config.out == Path("/tmp/somewhere")
    assert config.threshold == 0.25
    assert config.quiet is True


def test_explicit_flags_beat_the_environment():
    env = {"LENSFIND_SCAN__BATCH_SIZE": "512", "LENSFIND_SCAN__WORKERS": "4"}
    config = build_config(ScanConfig, {"batch_size": 64, "workers": None}, environ=env)
    assert config.batch_size == 64
    assert config.workers == 4


def test_unrelated_environment_is_ignored():
    config = build_config(ScanConfig, {}, environ={"LENSFIND_CACHE": "/x", "LENSFIND_SCANX": "1"})
    assert config == ScanConfig()


def test_unknown_env_key_is_named():
    with pytest.raises(ConfigError, match="LENSFIND_SCAN__BATCHSIZE: unknown setting"):
        build_config(ScanConfig, {}, environ={"LENSFIND_SCAN__BATCHSIZE": "4"})


def test_unknown_flag_is_named():
    with pytest.raises(ConfigError, match="'nope'"):
        build_config(ScanConfig, {"nope": 1}, environ={})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BATCH_SIZE", "lots"),
        ("BATCH_SIZE", "2.5"),
        ("WORKERS", ""),
        ("THRESHOLD", "high"),
    ],
)
def test_unparsable_env_value_is_named(key, value):
    with pytest.raises(ConfigError, match=re.escape(f"LENSFIND_SCAN__{key}={value!r}")):
        build_config(ScanConfig, {}, environ={f"LENSFIND_SCAN__{key}": value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("BATCH_SIZE", "0"),
        ("SHARD_SIZE", "-3"),
        ("WORKERS", "-1"),
        ("THRESHOLD", "1.5"),
    ],
)
def test_out_of_range_env_value(key, value):
    with pytest.raises(ConfigError):
        build_config(ScanConfig, {}, environ={f"LENSFIND_SCAN__{key}": value})


@pytest.mark.parametrize(
    "settings",
    [
        {"workers": -1},
        {"shard_size": 0},
        {"batch_size": 0},
        {"threshold": -0.1},
        {"threshold": 1.01},
    ],
)
def test_bad_values(settings):
    with pytest.raises(ConfigError):
        ScanConfig(**settings)
    with pytest.raises(ConfigError):
        build_config(ScanConfig, settings, environ={})


def test_bad_boolean_env_value():
    with pytest.raises(ConfigError, match="LENSFIND_SCAN__RESUME"):
        build_config(ScanConfig, {}, environ={"LENSFIND_SCAN__RESUME": "ture"})
