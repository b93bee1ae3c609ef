"""Monte Carlo robustness evaluation: accuracy vs noise scale with honest statistics."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Literal

import torch
from torch import Tensor, nn

from hardware.apply import Deployed, draw_generator
from hardware.layout import fast_memory_format, images_to, memory_format
from hardware.noise.base import NoiseModel, Sampler

EvalPath = Literal["auto", "loop", "batched"]

DEFAULT_PATH: dict[str, Literal["loop", "batched"]] = {"cpu": "loop", "cuda": "batched"}
"""Per device type: `loop` writes draw k into the weights in place and runs the normal forward;
`batched` runs `draw_batch` draws in one torch.func.vmap forward over stacked weights (the same draws).
CPU: bench/mc_eval.py measured the loop (in channels_last, hardware.layout) about 3x faster on LeNet and
ResNet-20. CUDA: not measured yet (no GPU at hand); batched is the default because small models
there are bound by kernel launches, which batching amortizes. Run bench/mc_eval.py --device cuda and
change this where it says otherwise."""

Batches = list[tuple[Tensor, Tensor]]


@dataclass
class CurvePoint:
    """The accuracies of the Monte Carlo draws at one noise scale and their statistics."""

    scale: float
    accuracies: list[float]
    mean: float
    std: float
    ci95: float
    """Half-width of the 95% confidence interval of the mean (Student t); NaN for one random draw."""
    min: float

    @property
    def n_draws(self) -> int:
        return len(self.accuracies)

    @classmethod
    def from_accuracies(cls, scale: float, accuracies: list[float], deterministic: bool) -> CurvePoint:
        n = len(accuracies)
        mean = sum(accuracies) / n
        if n > 1:
            std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (n - 1))
            ci95 = t_quantile(n - 1) * std / math.sqrt(n)
        else:
            std = ci95 = 0.0 if deterministic else math.nan
        return cls(scale, list(accuracies), mean, std, ci95, min(accuracies))


@dataclass
class RobustnessCurve:
    """Accuracy vs noise scale.

    `noise`: the noise model's fields except sigma (the scale axis). `auc`: the trapezoid area under
    the mean accuracy over the scales divided by the scale range, i.e. the average accuracy over
    [min scale, max scale] (with a single scale: its mean).
    """

    noise: dict[str, Any]
    seed: int
    points: list[CurvePoint]
    auc: float = field(init=False)

    def __post_init__(self) -> None:
        self.auc = area_under_curve(self.scales, [p.mean for p in self.points])

    @property
    def scales(self) -> list[float]:
        return [p.scale for p in self.points]

    @property
    def means(self) -> list[float]:
        return [p.mean for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN becomes None)."""
        points = [
            {
                **{k: _json_float(v) for k, v in asdict(p).items() if k != "accuracies"},
                "n_draws": p.n_draws,
                "accuracies": p.accuracies,
            }
            for p in self.points
        ]
        return {
            "noise": self.noise,
            "seed": self.seed,
            "scales": self.scales,
            "auc": self.auc,
            "points": points,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessCurve:
        points = [
            CurvePoint(p["scale"], list(p["accuracies"]), p["mean"], _nan(p["std"]), _nan(p["ci95"]), p["min"])
            for p in data["points"]
        ]
        return cls(dict(data["noise"]), int(data["seed"]), points)


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


@cache
def t_quantile(dof: int) -> float:
    """The 0.975 quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def area_under_curve(scales: Sequence[float], values: Sequence[float]) -> float:
    if len(scales) == 1:
        return float(values[0])
    area = sum(
        (s1 - s0) * (v0 + v1) / 2 for s0, s1, v0, v1 in zip(scales, scales[1:], values, values[1:], strict=False)
    )
    return area / (scales[-1] - scales[0])


# ---------------------------------------------------------------------------------- evaluation


def as_batches(
    loader: Iterable[tuple[Tensor, Tensor]], device: torch.device, fmt: torch.memory_format | None = None
) -> Batches:
    """The loader's batches as tensors on `device` (4-d inputs in `fmt`), kept for all draws (one pass
    over the loader)."""
    return [(images_to(x, device, fmt), y.to(device, non_blocking=True)) for x, y in loader]


def _correct(model: nn.Module, xs: list[Tensor], y: Tensor) -> int:
    """Correct predictions over all batches, with one sync (few small ops: they count on tiny models)."""
    logits = torch.cat([model(x) for x in xs]) if len(xs) > 1 else model(xs[0])  # (N, classes)
    return int((logits.argmax(-1) == y).sum())


def _total(batches: Batches) -> int:
    total = sum(len(y) for _, y in batches)
    if total == 0:
        raise ValueError("the loader yielded no examples")
    return total


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def accuracy(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]]) -> float:
    """Clean accuracy in eval mode (the model's mode is restored)."""
    device = _device(model)
    fmt = fast_memory_format(model, device)
    was_training = model.training
    model.eval()
    try:
        with memory_format(model, fmt):
            batches = as_batches(loader, device, fmt)
            return _correct(model, [x for x, _ in batches], torch.cat([y for _, y in batches])) / _total(batches)
    finally:
        model.train(was_training)


class _Evaluator:
    """Per-draw accuracies of one deployed model on fixed batches."""

    def __init__(
        self, model: nn.Module, batches: Batches, noise: NoiseModel, seed: int, path: str, draw_batch: int
    ) -> None:
        self.model, self.batches, self.seed, self.draw_batch, self.path = model, batches, seed, draw_batch, path
        self.xs, self.y = [x for x, _ in batches], torch.cat([y for _, y in batches])  # (N,)
        self.total = _total(batches)
        self.device = _device(model)
        self.deployed = Deployed(model, noise)

    def clean(self) -> float:
        self.deployed.restore()
        return _correct(self.model, self.xs, self.y) / self.total

    def draws(self, samplers: dict[str, Sampler], ks: range) -> list[float]:
        """The accuracies of draws `ks` (draw k from `draw_generator(seed, k)`)."""
        if self.path == "loop":
            accs = []
            for k in ks:
                self.deployed.write(samplers, draw_generator(self.seed, k, self.device))
                accs.append(_correct(self.model, self.xs, self.y) / self.total)
            return accs
        accs = []
        for start in range(ks.start, ks.stop, self.draw_batch):
            accs += self._batched(samplers, range(start, min(start + self.draw_batch, ks.stop)))
        return accs

    def _batched(self, samplers: dict[str, Sampler], ks: range) -> list[float]:
        """len(ks) draws in one vmapped forward per data batch (the same draws as the loop path)."""
        from torch.func import functional_call, vmap

        clean = self.deployed.clean
        stacked = {name: w.new_empty((len(ks), *w.shape)) for name, w in clean.items()}  # (K, *w.shape)
        for i, k in enumerate(ks):
            generator = draw_generator(self.seed, k, self.device)
            for name, draw in samplers.items():
                draw(stacked[name][i], generator)

        def forward(params: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.model, params, (x,))

        batched = vmap(forward, in_dims=(0, None))
        correct = torch.zeros(len(ks), dtype=torch.long, device=self.device)
        for x, y in self.batches:
            logits = batched(stacked, x)  # (K, B, classes)
            correct += (logits.argmax(-1) == y).sum(1)
        return (correct.double() / self.total).tolist()


@torch.no_grad()
def robustness_curve(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    noise: NoiseModel,
    scales: Sequence[float],
    samples: int,
    seed: int,
    target_ci: float | None = None,
    max_samples: int | None = None,
    *,
    path: EvalPath = "auto",
    draw_batch: int = 8,
) -> RobustnessCurve:
    """Accuracy of `model` on `loader` at each noise scale (`noise.with_sigma(scale)`) over Monte
    Carlo draws; draw k uses `draw_generator(seed, k)` at every scale (common random numbers).

    `samples` draws per scale; a deterministic scale (e.g. 0) gets one. With `target_ci`, draws
    continue until the 95% CI half-width is at most `target_ci` or `max_samples` (default
    100 * samples) draws are done. The model's weights and train/eval mode are restored afterwards.
    """
    if not scales or any(s < 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of numbers >= 0 (got {list(scales)})")
    if samples < 1:
        raise ValueError(f"samples must be >= 1 (got {samples})")
    if target_ci is not None and target_ci <= 0:
        raise ValueError(f"target_ci must be > 0 (got {target_ci})")
    if path not in ("auto", "loop", "batched"):
        raise ValueError(f"path must be one of auto, loop, batched (got {path!r})")
    limit = max(samples, max_samples if max_samples is not None else 100 * samples)

    device = _device(model)
    path = DEFAULT_PATH.get(device.type, "loop") if path == "auto" else path
    fmt = fast_memory_format(model, device) if path == "loop" else None
    was_training = model.training
    model.eval()
    with memory_format(model, fmt):
        try:
            evaluator = _Evaluator(model, as_batches(loader, device, fmt), noise, seed, path, draw_batch)
            points = _curve_points(evaluator, noise, scales, samples, target_ci, limit)
        finally:
            model.train(was_training)
    return RobustnessCurve(noise.model_dump(mode="json", exclude={"sigma"}), seed, points)


def _curve_points(
    evaluator: _Evaluator,
    noise: NoiseModel,
    scales: Sequence[float],
    samples: int,
    target_ci: float | None,
    limit: int,
) -> list[CurvePoint]:
    points = []
    try:
        for scale in scales:
            m = noise.with_sigma(scale)
            if m.is_identity:
                accs = [evaluator.clean()]
            elif m.is_deterministic:
                accs = evaluator.draws(evaluator.deployed.samplers(m), range(1))
            else:
                samplers = evaluator.deployed.samplers(m)
                accs = evaluator.draws(samplers, range(samples))
                step = 1 if evaluator.path == "loop" else evaluator.draw_batch
                while target_ci is not None and len(accs) < limit:
                    if CurvePoint.from_accuracies(scale, accs, False).ci95 <= target_ci:
                        break
                    accs += evaluator.draws(samplers, range(len(accs), min(len(accs) + step, limit)))
            points.append(CurvePoint.from_accuracies(scale, accs, m.is_deterministic))
    finally:
        evaluator.deployed.restore()
    return points


def format_curve_table(curve: RobustnessCurve) -> str:
    """The curve as a plain-text table (accuracies in %), with the AUC below it."""
    noise = curve.noise.get("name", "?")
    lines = [f"{'scale':>8}  {'draws':>5}  {'mean %':>7}  {'std':>6}  {'CI95 +-':>7}  {'min %':>7}"]
    for p in curve.points:
        lines.append(
            f"{p.scale:>8.4g}  {p.n_draws:>5d}  {100 * p.mean:>7.2f}  {100 * p.std:>6.2f}  "
            f"{100 * p.ci95:>7.2f}  {100 * p.min:>7.2f}"
        )
    lines.append(f"noise {noise}, seed {curve.seed}: AUC (mean accuracy over the scales) {100 * curve.auc:.2f}%")
    return "\n".join(lines)
