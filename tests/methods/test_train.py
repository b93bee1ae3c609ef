"""The training loop: determinism, exact resume, NaN detection, what it reports."""

from __future__ import annotations

import copy
from typing import Literal

import pytest
import torch

import hardware
from methods import TrainConfig, TrainState, train
from methods.base import Method, StepOutput
from zoo import build_model, load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def fresh_model(data, seed: int = 0, name: str = "mlp"):
    torch.manual_seed(seed)
    options = {"hidden": 32} if name == "mlp" else {"channels": (4, 8), "hidden": (16,)}
    return build_model(name, data.in_channels, data.image_size, data.num_classes, **options)


def run(data, epochs: int = 2, report=None, resume=None, method_name: str = "baseline", model="mlp", **cfg):
    import methods

    return train(
        fresh_model(data, name=model),
        methods.METHODS.build(method_name),
        hardware.noise_model("additive", sigma=0.1),
        data,
        TrainConfig(epochs=epochs, batch_size=64, device="cpu", **cfg),
        seed=7,
        eval_seed=3,
        report=report,
        resume=resume,
    )


def test_reports_every_epoch_with_the_documented_metrics(digits):
    seen = []
    result = run(digits, epochs=2, report=lambda metrics, state: seen.append((dict(metrics), state.epoch)))
    assert [epoch for _, epoch in seen] == [1, 2]
    keys = {"epoch", "train_loss", "train_ce", "train_acc", "val_acc", "val_noisy_acc", "epoch_time", "lr"}
    assert keys <= set(seen[0][0])
    assert result.history == [m for m, _ in seen]
    assert 0.5 < result.history[-1]["val_acc"] <= 1.0  # an MLP learns digits in two epochs
    assert result.history[-1]["val_noisy_acc"] <= result.history[-1]["val_acc"] + 0.05


def test_same_seed_gives_identical_numbers(digits):
    a, b = run(digits), run(digits)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


@pytest.mark.parametrize("model", ["mlp", "lenet"])  # lenet: trained in channels_last on CPU
def test_resume_from_a_state_continues_exactly(digits, model: str):
    states = {}

    def keep(metrics, state: TrainState):
        states[state.epoch] = copy.deepcopy(state.state_dict())  # what a checkpoint file would hold

    full = run(digits, epochs=3, report=keep, optimizer="sgd", lr=0.05, model=model)
    resumed = run(digits, epochs=3, resume=states[1], optimizer="sgd", lr=0.05, model=model)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["train_loss"] == full.history[-1]["train_loss"]
    for pa, pb in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_conv_nets_train_in_channels_last_on_cpu_and_come_back_contiguous(digits):
    seen = []

    def layout(metrics, state: TrainState):
        conv = next(m for m in state.model.modules() if isinstance(m, torch.nn.Conv2d))
        seen.append(conv.weight.is_contiguous(memory_format=torch.channels_last))

    fast = run(digits, report=layout, model="lenet", method_name="noise_injection")
    plain = run(digits, model="lenet", method_name="noise_injection", memory_format="contiguous")
    assert seen == [True, True]
    assert all(p.is_contiguous() for p in fast.model.parameters())
    # the same training up to the convolutions' summation order
    assert fast.history[-1]["val_acc"] == pytest.approx(plain.history[-1]["val_acc"], abs=0.03)
    assert fast.history[-1]["train_loss"] == pytest.approx(plain.history[-1]["train_loss"], rel=0.02)


class ExplodingMethod(Method):
    name: Literal["exploding"] = "exploding"

    def step(self, model, x, y, noise):
        logits = model(x)
        return StepOutput(logits.sum() * float("nan"), logits)


def test_nan_loss_raises_a_clear_error(digits):
    with pytest.raises(FloatingPointError, match="loss became nan in epoch 1"):
        train(
            fresh_model(digits),
            ExplodingMethod(),
            hardware.noise_model("additive", sigma=0.1),
            digits,
            TrainConfig(epochs=1, device="cpu"),
            seed=0,
        )


def test_exploding_loss_is_flagged_as_diverged_with_its_epoch(digits):
    """lr=1e6 keeps the loss finite (1e20 and more) but useless: the run stops as diverged, with the epoch."""
    from methods import METHODS

    with pytest.raises(FloatingPointError, match=r"loss diverged to .* in epoch 1 \(baseline\): over 1000x"):
        train(
            fresh_model(digits),
            METHODS.build("baseline"),
            hardware.noise_model("additive", sigma=0.1),
            digits,
            TrainConfig(epochs=3, device="cpu", lr=1e6, optimizer="sgd"),
            seed=0,
        )


def test_divergence_check_bounds():
    from methods.train import check_divergence

    check_divergence(2299.0, 2.3, 1, "m")  # just under 1000x: fine
    check_divergence(5.0, 0.0, 1, "m")  # a near-zero first loss is floored at 0.01
    for loss, first in ((2301.0, 2.3), (float("inf"), 2.3), (float("nan"), 2.3)):
        with pytest.raises(FloatingPointError):
            check_divergence(loss, first, 4, "m")
