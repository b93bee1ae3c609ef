"""Reading a config file and applying `--set KEY.PATH=VALUE` overrides to its raw mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sweep.config.errors import ConfigError


def parse_overrides(pairs: list[str]) -> list[tuple[list[str], Any]]:
    """`a.b=value` -> (["a", "b"], value); values are YAML (numbers, booleans, lists, null)."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {pair!r}: expected KEY.PATH=VALUE, e.g. --set train.epochs=5")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML ({err.problem})") from None
        parsed.append((key.split("."), value))
    return parsed


def set_key(raw: dict[str, Any], path: list[str], value: Any, where: str = "--set") -> None:
    """raw[path[0]][path[1]]... = value, creating mappings on the way."""
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where} {'.'.join(path)}: {part!r} is not a mapping")
        node = child
    node[path[-1]] = value


def apply_overrides(raw: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    for path, value in parse_overrides(pairs):
        set_key(raw, path, value)
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return raw
