"""A trained model judged under the experiment's deployment settings (`eval.deploy`) and for flatness.

Every setting draws from `eval.seed` (common random numbers: the same draws for every trial). A
`sigma` setting that is exactly the training noise over `eval.scales` is today's test curve, so it
reuses that curve instead of drawing it again. The model is set up on each split once
(`hardware.prepare`) for all its settings, so k settings cost their draws and one set-up.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from torch import nn

from hardware import DeploySetting, Flatness, RobustnessCurve, hessian_max_eigenvalue, prepare
from methods import make_loader
from sweep.config import ExperimentConfig, setting_metric
from zoo import DataSplits


@dataclass
class SettingResult:
    """One setting's curve on one split, with the setting's own AUC (over log10 x on a log axis)."""

    setting: DeploySetting
    curve: RobustnessCurve

    @property
    def auc(self) -> float:
        return self.setting.auc(self.curve)

    def to_dict(self) -> dict[str, Any]:
        return {"setting": self.setting.describe(), "auc": self.auc, "curve": self.curve.to_dict()}


def is_training_curve(setting: DeploySetting, cfg: ExperimentConfig) -> bool:
    """The setting is the training noise swept over `eval.scales`: `test_curve` draw for draw."""
    if setting.name != "sigma" or setting.values != cfg.eval.scales:
        return False
    noise = setting.noise_model()  # type: ignore[attr-defined]
    return noise.model_copy(update={"sigma": cfg.noise.sigma}) == cfg.noise


def deploy_curves(
    model: nn.Module,
    data: DataSplits,
    cfg: ExperimentConfig,
    split: str = "test",
    keys: set[str] | None = None,
    training_curve: RobustnessCurve | None = None,
) -> dict[str, SettingResult]:
    """Key -> the curve of every setting in `eval.deploy` (only those in `keys`, if given) on `split`.
    `training_curve`: the training noise's curve on that split, reused by a setting equal to it."""
    e = cfg.eval
    loader = make_loader(data.test if split == "test" else data.val, cfg.train.eval_batch_size, shuffle=False)
    settings = [s for s in e.settings() if keys is None or s.key in keys]
    results = {}
    with ExitStack() as stack:
        prepared = None  # one set-up of the model on the split serves every setting
        for setting in settings:
            if training_curve is not None and is_training_curve(setting, cfg):
                curve = RobustnessCurve(setting.describe(), training_curve.seed, training_curve.points)
            else:
                prepared = prepared or stack.enter_context(prepare(model, loader))
                curve = setting.evaluate_prepared(
                    prepared, samples=e.samples, seed=e.seed, target_ci=e.target_ci, max_samples=e.max_samples
                )
            results[setting.key] = SettingResult(setting, curve)
    return results


def flatness(model: nn.Module, data: DataSplits, cfg: ExperimentConfig) -> Flatness | None:
    """`hessian_max_eigenvalue` on the first batches of the unshuffled training split (None when
    `eval.flatness` is not set)."""
    f = cfg.eval.flatness
    if f is None:
        return None
    loader = make_loader(data.train, cfg.train.eval_batch_size, shuffle=False)
    return hessian_max_eigenvalue(model, loader, batches=f.batches, iterations=f.iterations, tol=f.tol, seed=f.seed)


def deploy_metrics(
    test: dict[str, SettingResult], val: dict[str, SettingResult], flat: Flatness | None
) -> dict[str, float]:
    """Flat metrics: `auc:KEY` and `acc:KEY:VALUE` per test curve, `val_auc:KEY` and `val_acc:KEY:VALUE`
    per validation curve (`sweep.config.setting_metric`), `flatness` (lambda_max) and its convergence."""
    metrics: dict[str, float] = {}
    for split, results in (("test", test), ("val", val)):
        for key, r in results.items():
            metrics[setting_metric(key, split=split)] = r.auc
            metrics.update({setting_metric(key, p.scale, split): p.mean for p in r.curve.points})
    if flat is not None:
        metrics.update({"flatness": flat.lambda_max, "flatness_rel_change": flat.rel_change})
        metrics["flatness_iterations"] = flat.iterations
    return metrics
