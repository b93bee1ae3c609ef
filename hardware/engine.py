"""The Monte Carlo engine: accuracy of one prepared model + data under noise, over draws and scales.

`prepare(model, loader)` does the set-up once (data on the device, the fast memory layout, the
weights in one flat buffer); `Prepared.curve(noise, scales, ...)` then costs only its draws, so a
caller evaluating k noise models or settings on one model pays the set-up once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from hardware.chunks import Batches, rechunk
from hardware.conditional import OutputLayer
from hardware.control import CONTROL_MIN_DRAWS, DrawControls, margin_control
from hardware.curve import CurvePoint, RobustnessCurve
from hardware.deployed import Deployed
from hardware.layout import fast_memory_format, images_to, memory_format
from hardware.noise.base import NoiseModel, StandardForm
from hardware.seeds import draw_generator

EvalPath = Literal["auto", "loop", "batched"]

DEFAULT_PATH: dict[str, Literal["loop", "batched"]] = {"cpu": "loop", "cuda": "batched"}
"""Per device type: `loop` writes draw k into the weights in place and runs the normal forward;
`batched` runs `draw_batch` draws in one torch.func.vmap forward over stacked weights (the same draws).
CPU: bench/mc_eval.py measured the loop (in channels_last, hardware.layout) about 3x faster on LeNet and
ResNet-20. CUDA: unmeasured (no GPU so far); batched is the default because small models there are
bound by kernel launches, which batching amortizes. Run bench/mc_eval.py --device cuda and change
this where it says otherwise."""


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Prepared:
    """One model on fixed data, ready for any number of Monte Carlo evaluations (see `prepare`)."""

    def __init__(
        self,
        model: nn.Module,
        batches: Batches,
        deployed: Deployed,
        path: str,
        draw_batch: int,
        head: OutputLayer | None = None,
    ) -> None:
        self.model, self.deployed, self.path, self.draw_batch, self.head = model, deployed, path, draw_batch, head
        self.xs, self.y = [x for x, _ in batches], torch.cat([y for _, y in batches])  # (N,)
        self.total = len(self.y)
        if self.total == 0:
            raise ValueError("the loader yielded no examples")

    def _logits(self) -> Tensor:
        return torch.cat([self.model(x) for x in self.xs]) if len(self.xs) > 1 else self.model(self.xs[0])

    def _accuracy(self) -> float:
        """Accuracy of the weights in the buffer, with one sync (few small ops: they count on tiny models)."""
        if self.head is not None:
            self.head.inputs.clear()
        return int((self._logits().argmax(-1) == self.y).sum()) / self.total

    def _expected_accuracy(self, head_scale: Tensor, sigma: float) -> float:
        """The accuracy averaged analytically over the output layer's noise (`hardware.conditional`)."""
        self.head.inputs.clear()
        return float(self.head.expected_correct(self._logits(), self.y, head_scale, sigma)) / self.total

    @torch.no_grad()
    def clean_accuracy(self) -> float:
        self.deployed.reset()
        return self._accuracy()

    @torch.no_grad()
    def curve(
        self,
        noise: NoiseModel,
        scales: Sequence[float],
        samples: int,
        seed: int,
        target_ci: float | None = None,
        max_samples: int | None = None,
        antithetic: bool = False,
        conditional: bool = True,
        control: bool | None = None,
    ) -> RobustnessCurve:
        """Accuracy at each noise scale (`noise.with_sigma(scale)`) over Monte Carlo draws: the
        `RobustnessCurve` of this model under one noise model along its scale axis.

        Common random numbers: draw k uses `draw_generator(seed, k)` at every scale (a standard form:
        one z per draw for all scales). `antithetic` with an even `samples`: draws 2j, 2j+1 are z, -z
        from `draw_generator(seed, j)`, the CI over the pair means (unbiased; off by default, no
        consistent gain in bench/variance.py). A deterministic scale (e.g. 0) gets one draw. With
        `target_ci`, draws continue (in pairs with `antithetic`) until the 95% CI half-width is at most
        `target_ci` or `max_samples` (default 100 * samples; pairs: rounded down to even). Unbiased
        defaults: `conditional`, a Linear output layer's additive or multiplicative noise is averaged
        analytically per draw (`hardware.conditional`, loop path); `control` (None: where it pays for
        its set-up, >= 4 draws or pairs per scale and CONTROL_MIN_DRAWS over the random scales), a
        standard form's points take mean and CI from the draws adjusted by a control variate with a
        known mean (`hardware.control`, `CurvePoint.adjusted`; `accuracies` stay the draws' own).
        """
        _check(scales, samples, target_ci)
        models = [noise.with_sigma(s) for s in scales]
        form = self.deployed.flat_form(noise)
        pairs = antithetic and form is not None and samples % 2 == 0
        cond = conditional and form is not None and not form.exp and self.head is not None
        cond = cond and self.path == "loop" and not noise.digital_last and len(self.deployed.layers) > 0
        even = (lambda n: n - n % 2) if pairs else (lambda n: n)
        limit = even(max(samples, max_samples if max_samples is not None else 100 * samples))
        block = (2 if pairs else 1) if self.path == "loop" else max(even(self.draw_batch), 2 if pairs else 1)

        accs: dict[int, list[float]] = {}
        random = [i for i, m in enumerate(models) if not m.is_deterministic]
        if control is None:
            control = samples // (2 if pairs else 1) >= 4 and samples * len(random) >= CONTROL_MIN_DRAWS
        ctl = margin_control(self, noise, form, cond) if control and form is not None and random else None
        draws = DrawControls(ctl, pairs) if ctl is not None else None

        def ctls(i: int) -> list[float] | None:
            return None if draws is None or models[i].is_deterministic else draws.get(i, scales[i], len(accs[i]))

        try:
            for i, m in enumerate(models):
                if m.is_identity:
                    accs[i] = [self.clean_accuracy()]
                elif m.is_deterministic:
                    accs[i] = self._sampled(m, range(1), seed)
            n = 0
            while True:
                active = [i for i in random if n < samples or self._wide(accs[i], ctls(i), n, limit, pairs, target_ci)]
                if not active:
                    break
                ks = range(n, min(n + block, samples if n < samples else limit))
                if form is None:
                    for i in active:
                        accs.setdefault(i, []).extend(self._sampled(models[i], ks, seed))
                else:
                    z = self._normals(noise, ks, pairs, seed)
                    if draws is not None:
                        draws.add(z)
                    for i in active:
                        accs.setdefault(i, []).extend(self._formed(form, noise, z, scales[i], pairs, cond))
                n = ks.stop
        finally:
            self.deployed.reset()
        points = [
            CurvePoint.from_accuracies(s, accs[i], m.is_deterministic, pairs and not m.is_deterministic, ctls(i))
            for i, (s, m) in enumerate(zip(scales, models, strict=True))
        ]
        for p, m in zip(points, models, strict=True):
            p.conditional = cond and not m.is_deterministic
        return RobustnessCurve(noise.model_dump(mode="json", exclude={"sigma"}), seed, points)

    @staticmethod
    def _wide(accs: list[float], ctls: list[float] | None, n: int, limit: int, pairs: bool, ci: float | None) -> bool:
        """True while the adaptive mode wants more draws at a scale that has `accs` (and controls `ctls`)."""
        return ci is not None and n < limit and not CurvePoint.from_accuracies(0.0, accs, False, pairs, ctls).ci95 <= ci

    # ---------------------------------------------------------------- draws of standard-form models

    def _normals(self, noise: NoiseModel, ks: range, pairs: bool, seed: int) -> Tensor:
        """z of draws `ks`, one row per generator: (len(ks) / 2 if pairs else len(ks), n) in buffer order
        (for the batched path the buffer is in standard order)."""
        indices = range(ks.start // 2, ks.stop // 2) if pairs else ks
        device = self.deployed.buffer.device
        return torch.stack([self.deployed.normal(noise, draw_generator(seed, j, device)) for j in indices])

    def _formed(
        self, form: StandardForm, noise: NoiseModel, z: Tensor, scale: float, pairs: bool, cond: bool
    ) -> list[float]:
        signs = (scale, -scale) if pairs else (scale,)
        span = self.deployed.span(noise)
        if self.path == "loop":
            if cond:  # the output layer stays clean in the buffer; its noise is integrated analytically
                k = self.deployed.offsets[-2] - span.start
                head_scale = form.scale[k:].view(self.deployed.shapes[-1])
                form, span = StandardForm(form.loc[:k], form.scale[:k]), slice(span.start, span.start + k)
            accs = []
            for row in z:
                for s in signs:
                    self.deployed.write_form(form, span, row[: span.stop - span.start], s)
                    accs.append(self._expected_accuracy(head_scale, s) if cond else self._accuracy())
            return accs
        stacked = torch.stack([form.apply(z, s) for s in signs], 1).flatten(0, 1)  # (draws, n): z, -z, z, ...
        return self._vmapped(stacked, self.deployed.segment(noise))

    # ---------------------------------------------------------------------- draws of other models

    def _sampled(self, noise: NoiseModel, ks: range, seed: int) -> list[float]:
        samplers = self.deployed.samplers(noise)
        device = self.deployed.buffer.device
        if self.path == "loop":
            accs = []
            for k in ks:
                self.deployed.write_sampled(samplers, draw_generator(seed, k, device))
                accs.append(self._accuracy())
            return accs
        span = self.deployed.span(noise)
        stacked = self.deployed.buffer.new_empty((len(ks), span.stop - span.start))
        for row, k in zip(stacked, ks, strict=True):
            generator = draw_generator(seed, k, device)
            for i, draw in samplers:
                a, b = self.deployed.offsets[i] - span.start, self.deployed.offsets[i + 1] - span.start
                draw(row[a:b].view(self.deployed.shapes[i]), generator)
        return self._vmapped(stacked, self.deployed.segment(noise))

    def _vmapped(self, stacked: Tensor, layers: slice) -> list[float]:
        """Accuracies of K draws (K, n) of the layers `layers` in one vmapped forward per data batch."""
        from torch.func import functional_call, vmap

        d, base = self.deployed, self.deployed.offsets[layers.start]
        params = {
            d.names[i]: stacked[:, d.offsets[i] - base : d.offsets[i + 1] - base].view(len(stacked), *d.shapes[i])
            for i in range(layers.start, layers.stop)
        }
        batched = vmap(lambda p, x: functional_call(self.model, p, (x,)), in_dims=(0, None))
        correct = torch.zeros(len(stacked), dtype=torch.long, device=stacked.device)
        start = 0
        for x in self.xs:
            y = self.y[start : start + len(x)]
            correct += (batched(params, x).argmax(-1) == y).sum(1)  # logits (K, B, classes)
            start += len(x)
        return (correct.double() / self.total).tolist()


def _check(scales: Sequence[float], samples: int, target_ci: float | None) -> None:
    if not scales or any(s < 0 or not math.isfinite(s) for s in scales):
        raise ValueError(f"scales must be a non-empty list of numbers >= 0 (got {list(scales)})")
    if samples < 1:
        raise ValueError(f"samples must be >= 1 (got {samples})")
    if target_ci is not None and target_ci <= 0:
        raise ValueError(f"target_ci must be > 0 (got {target_ci})")


@contextmanager
def prepare(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    path: EvalPath = "auto",
    draw_batch: int = 8,
    chunk: int | None = None,
) -> Iterator[Prepared]:
    """Set up `model` on the data of `loader` once (eval mode, the device's fast memory layout, the data
    on the device in chunks of `chunk` images (None: sized to the cache, loop path only), the analog
    weights in one flat buffer) for any number of `Prepared.curve` calls. The model's weights, layout
    and train/eval mode are restored on exit."""
    if path not in ("auto", "loop", "batched"):
        raise ValueError(f"path must be one of auto, loop, batched (got {path!r})")
    device = _device(model)
    path = DEFAULT_PATH.get(device.type, "loop") if path == "auto" else path
    fmt = fast_memory_format(model, device) if path == "loop" else None
    was_training = model.training
    model.eval()
    try:
        with ExitStack() as stack:
            stack.enter_context(memory_format(model, fmt))
            batches = [(images_to(x, device, fmt), y.to(device, non_blocking=True)) for x, y in loader]
            if path == "loop":
                with torch.no_grad():
                    batches = rechunk(model, batches, chunk, fmt)
            deployed = stack.enter_context(Deployed(model, standard=path == "batched"))
            head = None
            if path == "loop" and deployed.layers and batches:
                head = OutputLayer.find(model, deployed.layers[-1][1], batches[0][0][:1])
            if head is not None:
                stack.callback(head.close)
            yield Prepared(model, batches, deployed, path, draw_batch, head)
    finally:
        model.train(was_training)


def robustness_curve(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    noise: NoiseModel,
    scales: Sequence[float],
    *args: Any,
    path: EvalPath = "auto",
    draw_batch: int = 8,
    **kwargs: Any,
) -> RobustnessCurve:
    """`Prepared.curve(noise, scales, *args, **kwargs)` of `model` on `loader` (set-up and restore
    included): samples, seed, target_ci, max_samples, antithetic, conditional as there."""
    with prepare(model, loader, path=path, draw_batch=draw_batch) as prepared:
        return prepared.curve(noise, scales, *args, **kwargs)


def accuracy(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]]) -> float:
    """Clean accuracy in eval mode (the model's mode and weights are restored)."""
    with prepare(model, loader, path="loop") as prepared:
        return prepared.clean_accuracy()
