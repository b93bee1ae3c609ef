"""The analog weights of a deployed model in one flat buffer: one call writes a draw into every layer.

A draw of a noise model with a standard form (`NoiseModel.standard_form`) is one vector
z ~ N(0, 1) over the noisy layers' weights in module order, each layer in its standard (contiguous)
order: ``torch.randn(n_noisy_weights, generator=draw_generator(seed, k))``. The same z serves
every scale and every model with the same layer shapes (common random numbers), and its negation
is the antithetic draw. Other models draw layer by layer through their `sampler`, in module order,
from the same generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from hardware.apply import analog_layers
from hardware.noise.base import NoiseModel, Sampler, StandardForm


def _dense(t: Tensor) -> bool:
    """True when the tensor's elements fill exactly `numel` consecutive slots (any dim order)."""
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape, strict=True) if n > 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


class Deployed:
    """The model's analog weights re-pointed into one flat buffer while the context is open.

    Inside ``with deployed:`` each analog layer's weight is a view into `buffer` with the weight's own
    strides (so a channels_last model stays channels_last); `buffer` starts with the clean values and
    the model's own tensors are never written: they are put back on exit. `standard=True` gives every
    view the contiguous layout (the buffer is then in standard order).
    """

    def __init__(self, model: nn.Module, standard: bool = False) -> None:
        self.layers = analog_layers(model)
        params = [m._parameters["weight"] for _, m in self.layers]
        self.names = [(f"{n}." if n else "") + "weight" for n, _ in self.layers]
        self.shapes = [p.shape for p in params]
        sizes = [p.numel() for p in params]
        self.offsets = [0, *torch.tensor(sizes).cumsum(0).tolist()]
        like = params[0].detach() if params else torch.empty(0)
        self.clean_std = torch.cat([p.detach().reshape(-1) for p in params]) if params else like.new_empty(0)
        self.buffer = torch.empty_like(self.clean_std)
        self._strides = [p.stride() if (not standard and _dense(p)) else _contiguous_strides(p.shape) for p in params]
        self.views = [
            torch.as_strided(self.buffer, shape, stride, off)
            for shape, stride, off in zip(self.shapes, self._strides, self.offsets, strict=False)
        ]
        self.perm = self._permutation(like.device)  # buffer position -> standard position; None: identity
        self.clean = self.clean_std if self.perm is None else self.clean_std[self.perm]
        self._params, self._saved = params, []

    def _permutation(self, device: torch.device) -> Tensor | None:
        if all(v.is_contiguous() for v in self.views):
            return None
        perm = torch.empty(len(self.buffer), dtype=torch.long, device=device)
        for shape, stride, off, end in zip(self.shapes, self._strides, self.offsets, self.offsets[1:], strict=False):
            positions = torch.arange(off, end, device=device).view(shape)
            torch.as_strided(perm, shape, stride, off).copy_(positions)
        return perm

    def __enter__(self) -> Deployed:
        self.reset()
        self._saved = [(p, p.data) for p in self._params]
        for p, view in zip(self._params, self.views, strict=True):
            p.data = view
        return self

    def __exit__(self, *exc: object) -> None:
        for p, data in self._saved:
            p.data = data
        self._saved = []

    @torch.no_grad()
    def reset(self) -> None:
        """The clean weights back into the buffer."""
        self.buffer.copy_(self.clean)

    def segment(self, noise: NoiseModel) -> slice:
        """The layers `noise` perturbs (it may keep the first / last one digital), as layer indices."""
        return slice(1 if noise.digital_first else 0, len(self.layers) - (1 if noise.digital_last else 0))

    def span(self, noise: NoiseModel) -> slice:
        """The buffer positions of the layers `noise` perturbs (one contiguous stretch)."""
        layers = self.segment(noise)
        start, stop = self.offsets[layers.start], self.offsets[max(layers.start, layers.stop)]
        return slice(start, stop)

    def flat_form(self, noise: NoiseModel) -> StandardForm | None:
        """`noise`'s standard form over its span, in buffer order (None when it has none)."""
        layers = self.segment(noise)
        forms = []
        for i in range(layers.start, layers.stop):
            w = self.clean_standard(i)
            form = noise.standard_form(w)
            if form is None:
                return None
            forms.append(form)
        exp = bool(forms) and forms[0].exp

        def flat(parts: list[Tensor]) -> Tensor:
            shapes = self.shapes[layers]
            values = torch.cat([p.expand(shape).reshape(-1) for p, shape in zip(parts, shapes, strict=True)])
            return self.to_buffer_order(values, noise)

        loc = None if exp else flat([f.loc for f in forms]) if forms else self.buffer[:0]
        return StandardForm(loc=loc, scale=flat([f.scale for f in forms]) if forms else self.buffer[:0], exp=exp)

    def to_buffer_order(self, values: Tensor, noise: NoiseModel) -> Tensor:
        """Values over `noise`'s span in standard order -> in buffer order."""
        span = self.span(noise)
        return values if self.perm is None else values[self.perm[span] - span.start]

    def clean_standard(self, i: int) -> Tensor:
        """The clean weight of layer i in the standard layout."""
        return self.clean_std[self.offsets[i] : self.offsets[i + 1]].view(self.shapes[i])

    def normal(self, noise: NoiseModel, generator: torch.Generator | None) -> Tensor:
        """One draw's z over `noise`'s span, in buffer order."""
        span = self.span(noise)
        z = torch.randn(span.stop - span.start, generator=generator, device=self.buffer.device, dtype=self.buffer.dtype)
        return self.to_buffer_order(z, noise)

    @torch.no_grad()
    def write_form(self, form: StandardForm, span: slice, z: Tensor, sigma: float) -> None:
        """One draw of a standard-form model written into every noisy layer in one call."""
        form.apply(z, sigma, out=self.buffer[span])

    def samplers(self, noise: NoiseModel) -> list[tuple[int, Sampler]]:
        """(layer index, sampler) of every noisy layer, in module order."""
        layers = self.segment(noise)
        return [(i, noise.sampler(self.clean_standard(i))) for i in range(layers.start, layers.stop)]

    @torch.no_grad()
    def write_sampled(self, samplers: list[tuple[int, Sampler]], generator: torch.Generator | None) -> None:
        """One draw of a model without a standard form, layer by layer (standard layout, then copied)."""
        for i, draw in samplers:
            view = self.views[i]
            if view.is_contiguous():
                draw(view, generator)
            else:
                out = torch.empty(self.shapes[i], dtype=view.dtype, device=view.device)
                draw(out, generator)
                view.copy_(out)

    @torch.no_grad()
    def write(self, noise: NoiseModel, generator: torch.Generator | None) -> None:
        """One draw of `noise` (the draw an evaluation makes with this generator)."""
        form = self.flat_form(noise)
        if form is None:
            self.write_sampled(self.samplers(noise), generator)
        else:
            self.write_form(form, self.span(noise), self.normal(noise, generator), noise.sigma)


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    return tuple(math.prod(shape[i + 1 :]) for i in range(len(shape)))


@contextmanager
def perturbed(model: nn.Module, noise: NoiseModel, generator: torch.Generator | None = None) -> Iterator[None]:
    """EVALUATION: one noisy draw in the weights (no grad inside); the model's own weight tensors are
    back on exit, also when the body raises."""
    with torch.no_grad(), Deployed(model) as deployed:
        deployed.write(noise, generator)
        yield
