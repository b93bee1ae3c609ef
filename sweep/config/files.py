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
        if any(earlier == path for earlier, _ in parsed):  # as a key given twice in a YAML file
            raise ConfigError(f"--set {key.strip()}: the key is given twice; give it once")
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


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"line {mark.line + 1}, column {mark.column + 1}: key {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a config file; every problem with the file is one ConfigError line."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config {str(path)!r} is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {err.start}); a config is YAML text") from None
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML: {where}{problem}") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; a config needs at least `method:` or `sweep:` (see configs/)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return raw
