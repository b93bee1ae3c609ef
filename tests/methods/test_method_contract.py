"""Contract tests of every registered training method, also the ones added later, without new code.

Each method runs on a tiny StagedModel through the generic hooks prepare -> step -> backward ->
after_training, with its default hyperparameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import hardware
import methods
from methods import TrainConfig, TrainContext, make_loader, train
from methods.base import METHODS, Method, StepOutput, Trained
from zoo import DataSplits, StagedModel

NAMES = methods.names()
NOISE = hardware.noise_model("additive", sigma=0.1)
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "digits.yaml"


def tiny_model(seed: int = 0) -> StagedModel:
    """conv (BN) -> fc -> linear head on (1, 8, 8) inputs, 3 classes; both stages are taps."""
    torch.manual_seed(seed)
    stages = {
        "conv1": nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)
        ),
        "fc1": nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 16), nn.ReLU()),
    }
    return StagedModel(nn.Identity(), stages, nn.Linear(16, 3), num_classes=3)


def build(name: str, **overrides) -> Method:
    return METHODS.build(name, **overrides)


def batch(n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def run_step(name: str, noise=NOISE, seed: int = 0, **overrides) -> tuple[nn.Module, StepOutput]:
    method = build(name, **overrides)
    model = method.prepare(tiny_model(seed)).train()
    x, y = batch()
    torch.manual_seed(seed + 100)
    out = method.step(model, x, y, noise)
    out.loss.backward()
    return model, out


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def tiny_splits(seed: int = 2) -> DataSplits:
    g = torch.Generator().manual_seed(seed)
    parts = [
        TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))
        for n in (64, 32, 32)
    ]
    return DataSplits(*parts, in_channels=1, image_size=8, num_classes=3)


@pytest.mark.parametrize("name", NAMES)
def test_step_returns_finite_scalar_loss_logits_and_terms(name):
    _, out = run_step(name)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.logits.shape == (32, 3) and torch.isfinite(out.logits).all()
    assert all(isinstance(k, str) and isinstance(v, float) and v == v for k, v in out.terms.items())


@pytest.mark.parametrize("name", NAMES)
def test_every_trainable_parameter_gets_a_gradient(name):
    model, _ = run_step(name)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient on {n}"
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name}: bad gradient on {n}"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_identical_loss_and_gradients(name):
    (model_a, a), (model_b, b) = run_step(name), run_step(name)
    assert a.loss.item() == b.loss.item() and a.terms == b.terms
    ga, gb = grads(model_a), grads(model_b)
    assert ga.keys() == gb.keys()
    for n in ga:
        assert torch.equal(ga[n], gb[n]), f"{name}: gradient of {n} differs between identical runs"


@pytest.mark.parametrize("name", NAMES)
def test_zero_noise_is_noise_free_whatever_the_noise_model(name):
    """At sigma 0 every noise model is the identity: the step must not depend on which one it is."""
    runs = [run_step(name, hardware.noise_model(kind, sigma=0.0)) for kind in ("additive", "multiplicative")]
    (model_a, a), (model_b, b) = runs
    assert a.loss.item() == b.loss.item()
    for n, g in grads(model_a).items():
        assert torch.equal(g, grads(model_b)[n]), n


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_have_defaults_docstrings_and_a_pass_count(name):
    cls = METHODS.get(name)
    for field, info in cls.model_fields.items():
        if field != "name":
            assert not info.is_required(), f"{name}.{field} has no default"
            assert info.description, f"{name}.{field} has no docstring"
    fwd, bwd = METHODS.build(name).passes()
    assert isinstance(fwd, int) and isinstance(bwd, int) and fwd >= 1 and bwd >= 1


@pytest.mark.parametrize("name", NAMES)
def test_every_hyperparameter_is_reachable_with_set(name):
    from sweep.config import ConfigError, load_config

    defaults = METHODS.build(name)
    sets = [f"method.name={name}"]
    sets += [f"method.{f}={json.dumps(v)}" for f, v in defaults.model_dump().items() if f != "name"]
    cfg = load_config(CONFIG, sets)
    assert cfg.method == defaults
    with pytest.raises(ConfigError, match="no_such_field"):
        load_config(CONFIG, [f"method.name={name}", "method.no_such_field=1"])


@pytest.mark.parametrize("name", NAMES)
def test_deployed_model_round_trips_through_architecture_and_rebuild(name):
    method = build(name)
    data = tiny_splits()
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu")
    model = method.prepare(tiny_model()).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    for x, y in make_loader(data.train, 16, shuffle=True):
        out = method.step(model, x, y, NOISE)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    ctx = TrainContext(
        cfg,
        NOISE,
        make_loader(data.train, 16, True),
        make_loader(data.val, 32, False),
        torch.device("cpu"),
        seed=0,
        eval_seed=0,
    )
    trained = method.after_training(model, ctx)
    assert isinstance(trained, Trained)
    assert all(k.startswith(f"{name}/") and isinstance(v, float) for k, v in trained.summary.items())
    assert method == build(name)  # the method is a config: after_training leaves it as it was
    deployed = trained.model.eval()

    rebuilt = method.rebuild(tiny_model(seed=5), method.architecture(deployed))
    rebuilt.load_state_dict(deployed.state_dict())  # strict: same keys, same shapes
    x, _ = batch(8)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), deployed(x))


@pytest.mark.parametrize("name", NAMES)
def test_the_training_loop_runs_it_unchanged_and_reports_its_terms(name):
    method = build(name)
    terms = run_step(name)[1].terms
    seen = []
    train(
        tiny_model(),
        method,
        NOISE,
        tiny_splits(),
        TrainConfig(epochs=1, batch_size=32, device="cpu"),
        seed=0,
        report=lambda metrics, state: seen.append(metrics),
    )
    assert len(seen) == 1
    assert {f"train_{t}" for t in terms} | {"train_loss", "val_acc", "val_noisy_acc"} <= set(seen[0])
    assert all(v == v for v in seen[0].values())  # no NaN
