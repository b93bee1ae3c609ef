"""The noise-model base class and its registry.

A noise model maps a clean weight tensor to n noisy instances of it, in one vectorized call. The
same call serves training (one instance per forward, see `hardware.apply.noisy_weights`) and
Monte Carlo evaluation (one instance per draw, see `hardware.engine`). Models that are an elementwise
function of one z ~ N(0, 1) per weight also give their `standard_form`: the evaluation then draws z
once per draw for all layers and reuses it at every scale, and pairs z with -z (antithetic draws).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pydantic import Field, ValidationError
from torch import Tensor

from hardware.registry import Plugin, PluginRegistry

Sampler = Callable[[Tensor, "torch.Generator | None"], None]
"""``draw(out, generator)``: write one noisy instance of a fixed clean weight into `out`."""


@dataclass
class StandardForm:
    r"""A draw as an elementwise function of z ~ N(0, 1), location-scale in z:

    w~ = loc + scale * sigma * z,  or with `exp`:  w~ = scale * exp(sigma * z)  (loc unused).

    `loc` and `scale` depend on the clean weight only (not on sigma) and broadcast to it.
    """

    loc: Tensor | None
    scale: Tensor
    exp: bool = False

    def apply(self, z: Tensor, sigma: float, out: Tensor | None = None) -> Tensor:
        """w~ for the normal numbers `z` (one fused op, three with `exp`)."""
        if self.exp:
            return torch.mul(z, sigma, out=out).exp_().mul_(self.scale)
        return torch.addcmul(self.loc, z, self.scale, value=sigma, out=out)


class NoiseModel(Plugin):
    """Base class: subclasses declare ``name: Literal["their-name"] = "their-name"`` and `sample`."""

    sigma: float = Field(0.0, ge=0)
    """Noise scale, the sweep axis; 0 turns the model's stochastic noise off."""
    digital_first: bool = False
    """Keep the first conv/linear layer digital (noise-free)."""
    digital_last: bool = False
    """Keep the last conv/linear layer digital (noise-free)."""

    @abstractmethod
    def sample(self, weight: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        """n noisy instances of `weight`, shape (n, *weight.shape), same dtype and device, no grad."""

    def sampler(self, weight: Tensor) -> Sampler:
        """The evaluation fast path: ``draw(out, generator)`` writes one noisy instance of `weight` into
        `out`, the same numbers as ``sample(weight, 1, generator)[0]``. Work that depends only on the
        clean weight happens once, here; subclasses override it to save operations per draw."""
        w = weight.detach()

        def draw(out: Tensor, generator: torch.Generator | None) -> None:
            out.copy_(self.sample(w, 1, generator)[0])

        return draw

    def standard_form(self, weight: Tensor) -> StandardForm | None:
        """The model as a function of one z ~ N(0, 1) per weight (see `StandardForm`), or None when it
        is not one (it then draws through `sampler`). `sample` draws the same law."""
        return None

    @property
    def is_identity(self) -> bool:
        """True when `sample` returns the clean weights (training then skips the noise entirely)."""
        return self.sigma == 0

    @property
    def is_deterministic(self) -> bool:
        """True when every draw gives the same weights (an evaluation then needs a single draw)."""
        return self.is_identity

    def with_sigma(self, sigma: float) -> NoiseModel:
        """A validated copy with noise scale `sigma`."""
        return type(self).model_validate({**self.model_dump(), "sigma": sigma})


NOISE_MODELS: PluginRegistry[NoiseModel] = PluginRegistry("noise model")


def one_line(err: ValidationError, kind: str) -> ValueError:
    """A pydantic error as one line naming the first bad field."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or kind
    msg = first["msg"].removeprefix("Value error, ")
    more = len(err.errors()) - 1
    return ValueError(f"{kind}: {field}: {msg}" + (f" (and {more} more)" if more else ""))


def noise_model(name: str, **params: object) -> NoiseModel:
    """Build a registered noise model by name; bad fields raise a one-line ValueError."""
    cls = NOISE_MODELS.get(name)
    try:
        return cls(name=name, **params)
    except ValidationError as err:
        raise one_line(err, f"noise model {name!r}") from None


def noise_names() -> list[str]:
    return NOISE_MODELS.names()


def standard_normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """z ~ N(0, 1) of `shape` on the device and dtype of `like`."""
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
