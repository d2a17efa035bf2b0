"""Settings files: the mapping in a YAML file (training configs, populations, host cuts)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lensfind.errors import ConfigError


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file (empty file: ``{}``); a one-line error naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return dict(data)
