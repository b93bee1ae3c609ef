"""Reading a config file and applying `--set KEY.PATH=VALUE` overrides to its raw mapping."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from sweep.config.errors import ConfigError

DOTTED_ROOTS = (("sweep", "grid"),)
"""Mappings whose keys are dotted experiment keys and whose values are never mappings: in
`sweep.grid.method.name=[a, b]` everything after `sweep.grid.` is one key."""


def split_key(key: str) -> list[str]:
    """`a.b["c.d"].e` -> ["a", "b", "c.d", "e"]: dots separate keys; a key that holds dots is written
    in brackets, quoted or not (`sweep.space[noise.sigma]`); below `sweep.grid` the rest is one key."""
    parts: list[str] = []
    for match in re.finditer(r"\[(?:\"([^\"]+)\"|'([^']+)'|([^\]]+))\]|([^.\[\]]+)|(\.)", key):
        bracket = next((g for g in match.groups()[:3] if g), None)
        if bracket is not None:
            parts.append(bracket.strip())
        elif match.group(4) is not None:
            parts.append(match.group(4))
    rebuilt = "".join(m.group(0) for m in re.finditer(r"\[[^\]]*\]|[^.\[\]]+|\.", key))
    if rebuilt != key or not parts or ".." in key or key.startswith(".") or key.endswith("."):
        return []
    for root in DOTTED_ROOTS:
        n = len(root)
        if tuple(parts[:n]) == root and len(parts) > n + 1:
            parts = [*parts[:n], ".".join(parts[n:])]
    return parts


def parse_overrides(pairs: list[str]) -> list[tuple[list[str], Any]]:
    """`a.b=value` -> (["a", "b"], value); values are YAML (numbers, booleans, lists, null); keys as in
    `split_key`."""
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        path = split_key(key) if sep else []
        if not path:
            raise ConfigError(
                f"--set {pair!r}: expected KEY.PATH=VALUE, e.g. --set train.epochs=5 or "
                f"--set 'sweep.space[noise.sigma]={{uniform: [0.1, 0.3]}}'"
            )
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML ({err.problem})") from None
        parsed.append((path, value))
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
