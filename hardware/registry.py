"""A tiny registry shared by every plug-in family (noise models, presets, methods, models, data sets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to members of one plug-in family; errors name the allowed values."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._members: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(member: T) -> T:
            if name in self._members:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._members[name] = member
            return member

        return add

    def get(self, name: str) -> T:
        try:
            return self._members[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> T:
        return self.get(name)


class Plugin(BaseModel):
    """A configurable plug-in: its pydantic fields are its hyperparameters, `name` is its tag.

    Subclasses declare ``name: Literal["their-name"] = "their-name"`` so a config can pick a
    member by name and pydantic validates the member's own fields (unknown keys are errors).
    """

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, validate_assignment=True, allow_inf_nan=False
    )  # no option of a noise model, method or model may be inf or nan (noise.sigma=.inf would train)

    name: str


P = TypeVar("P", bound=Plugin)


class PluginRegistry(Registry[type[P]]):
    """A registry of `Plugin` classes, keyed by their `name` default."""

    def add(self, cls: type[P]) -> type[P]:
        """Class decorator: register `cls` under the default of its `name` field."""
        return self.register(cls.model_fields["name"].default)(cls)

    def build(self, name: str, **params: Any) -> P:
        return self.get(name)(name=name, **params)

    def union(self) -> Any:
        """A pydantic type accepting any member, chosen by its `name` (a discriminated union)."""
        members = tuple(self.get(n) for n in self.names())
        if len(members) == 1:
            return members[0]
        return Annotated[Union[members], Field(discriminator="name")]  # noqa: UP007
