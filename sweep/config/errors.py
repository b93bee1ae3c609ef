"""Config errors as one line naming the field and the allowed values, and the strict base model."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from hardware import NOISE_MODELS
from methods import METHODS


class ConfigError(ValueError):
    """A config problem, as one line naming the field and the allowed values."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


def validate(cls: type[BaseModel], raw: dict[str, Any]) -> Any:
    """`cls.model_validate(raw)`, with the first error turned into a one-line ConfigError."""
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(cls, err)) from None


_PLUGIN_FIELDS = {"method": METHODS, "noise": NOISE_MODELS}


def _member(annotation: Any, tag: Any) -> type[BaseModel] | None:
    """The BaseModel class inside `annotation` (a model, optional, or tagged union) matching `tag`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _member(typing.get_args(annotation)[0], tag)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                name_field = arg.model_fields.get("name")
                if tag is None or (name_field is not None and name_field.default == tag):
                    return arg
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _display_path(cls: type[BaseModel], loc: tuple) -> tuple[str, type[BaseModel] | None]:
    """Dotted user-facing path of `loc` (discriminator tags dropped) and the model class it ends in."""
    parts: list[str] = []
    current: type[BaseModel] | None = cls
    items = list(loc)
    i = 0
    while i < len(items):
        part = items[i]
        parts.append(str(part))
        i += 1
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            current = None
            continue
        annotation = current.model_fields[part].annotation
        tag = None
        if part in _PLUGIN_FIELDS and i < len(items) and items[i] in _PLUGIN_FIELDS[part]:
            tag = items[i]
            i += 1  # pydantic puts the union member's tag in the location; users never wrote it
        current = _member(annotation, tag)
    return ".".join(parts), current


def format_error(cls: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    path, _ = _display_path(cls, loc)
    if first["type"] == "extra_forbidden":
        _, parent = _display_path(cls, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        message = f"{path}: unknown key; allowed: {', '.join(allowed)}"
    else:
        msg = first["msg"].removeprefix("Value error, ")
        message = f"{path}: {msg}" if path else msg
        if first["type"] not in ("missing", "union_tag_invalid", "value_error") and "input" in first:
            message += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    return message + (f" (and {more} more error{'s' * (more > 1)})" if more else "")
