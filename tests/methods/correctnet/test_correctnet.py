"""CorrectNet: compensation modules, the REINFORCE placement agent, the second phase end to end."""

from __future__ import annotations

import copy
from typing import Literal

import pytest
import torch
from torch import nn

import hardware
import methods
from hardware.noise.base import NoiseModel, standard_normal
from methods import TrainConfig, TrainContext, make_loader, train
from methods.correctnet import compensation
from methods.correctnet.agent import reinforce
from methods.lipschitz import Lipschitz
from zoo import StagedModel, build_model, load_dataset

NOISE = hardware.noise_model("additive", sigma=0.1)


def lenet(seed: int = 0) -> StagedModel:
    torch.manual_seed(seed)
    return build_model("lenet", 1, 8, 10)


def randomized(model: nn.Module, seed: int = 3) -> nn.Module:
    """Give every compensation module non-zero weights (they start as the identity)."""
    g = torch.Generator().manual_seed(seed)
    for p in compensation.compensation_parameters(model):
        p.data = 0.1 * torch.randn(p.shape, generator=g)
    return model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def test_compensation_starts_as_the_identity_and_is_never_noisy():
    model = lenet().eval()
    x = torch.randn(16, 1, 8, 8)
    before, noisy_before = model(x), list(hardware.noisy_parameters(model, NOISE))
    placement = {
        "stages.conv1.0": {"kind": "conv", "width": 16},
        "head": {"kind": "linear", "width": 10, "rank": 4},
    }
    compensation.insert(model, placement)
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)

    randomized(model)
    assert [n.replace(".layer", "") for n in hardware.noisy_parameters(model, NOISE)] == noisy_before
    clean = [p.clone() for p in compensation.compensation_parameters(model)]
    with hardware.perturbed(model, NOISE, hardware.draw_generator(0, 0)):
        assert all(torch.equal(p, c) for p, c in zip(compensation.compensation_parameters(model), clean, strict=True))
    added = sum(p.numel() for p in compensation.compensation_parameters(model))
    assert added == 16 * 16 + 16 + 2 * 10 * 4 + 10 == sum(map(compensation.spec_parameters, placement.values()))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in lenet().parameters()) + added


def test_architecture_and_rebuild_restore_the_deployed_model():
    method = methods.METHODS.build("correctnet")
    model = compensation.insert(lenet(), {"stages.fc1.1": compensation.spec_for(nn.Linear(4, 128), rank=8)})
    randomized(model)
    arch = method.architecture(model)
    assert arch == {"compensation": {"stages.fc1.1": {"kind": "linear", "width": 128, "rank": 8}}}
    rebuilt = method.rebuild(lenet(seed=9), arch)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(8, 1, 8, 8)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))
    assert method.architecture(compensation.strip(model)) == {}


def test_phase_one_is_the_lipschitz_loss():
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    model = lenet()
    a = methods.METHODS.build("correctnet", beta=1e-3).step(model, x, y, NOISE)
    b = Lipschitz(beta=1e-3).step(model, x, y, NOISE)
    assert a.loss.item() == b.loss.item() and a.terms == b.terms


def test_unknown_candidate_is_a_clear_error(digits):
    method = methods.METHODS.build("correctnet", candidates=["stages.nope"])
    with pytest.raises(ValueError, match="method.candidates.*stages.nope.*allowed: stages.conv1.0"):
        method.candidate_layers(lenet(), NOISE)


def test_reinforce_learns_the_rewarding_subset():
    """Reward: +1 for candidate c, -0.2 per chosen candidate; the best subset is {c}."""
    result = reinforce(list("abcd"), lambda a: float(a[2]) - 0.2 * sum(a), episodes=60, lr=0.5, seed=0)
    assert result.best == (False, False, True, False)
    assert result.probabilities[2] > 0.9 and max(result.probabilities[:2] + result.probabilities[3:]) < 0.3
    assert result.frequencies(last=20)[2] > 0.9
    again = reinforce(list("abcd"), lambda a: float(a[2]) - 0.2 * sum(a), episodes=60, lr=0.5, seed=0)
    assert again.choices == result.choices  # same seed, same episodes


class OneSensitiveLayer(NoiseModel):
    """Log-normal weight variation w * exp(s z), s = sigma * boost on the layer with `rows` outputs
    and sigma on every other layer."""

    name: Literal["one_sensitive"] = "one_sensitive"
    rows: int = 48
    boost: float = 10.0

    def sample(self, weight: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
        w = weight.detach()
        s = self.sigma * (self.boost if w.shape[0] == self.rows else 1.0)
        return w * torch.exp(s * standard_normal((n, *w.shape), w, generator))


def bn_mlp() -> StagedModel:
    widths = [64, 48, 40, 32]
    stages = {
        f"s{i + 1}": nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU())
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))
    }
    return StagedModel(nn.Flatten(), stages, nn.Linear(32, 10), 10)


def test_agent_places_compensation_at_the_noise_sensitive_layer(digits):
    """A BN-MLP on digits whose first layer sees 10x the variation of the others (s = 0.8 vs 0.08):
    the agent must choose that layer more often than chance and keep it in the final placement,
    and the deployed compensation must recover noisy accuracy."""
    torch.manual_seed(0)
    backbone = train(
        bn_mlp(),
        methods.METHODS.build("baseline"),
        NOISE.with_sigma(0.0),
        digits,
        TrainConfig(epochs=30, device="cpu"),
        seed=0,
    ).model
    noise = OneSensitiveLayer(sigma=0.08)
    ctx = TrainContext(
        TrainConfig(device="cpu"),
        noise,
        make_loader(digits.train, 64, True, seed=0),
        make_loader(digits.val, 256, False),
        torch.device("cpu"),
        seed=0,
        eval_seed=1,
    )
    method = methods.METHODS.build("correctnet", rank=64, episodes=30, episode_batches=60, eval_draws=3, final_epochs=1)
    n_backbone = sum(p.numel() for p in backbone.parameters())
    trained = method.after_training(copy.deepcopy(backbone), ctx)
    deployed, r = trained.model, trained.details
    sensitive = "stages.s1.0"
    assert list(r["probabilities"]) == ["stages.s1.0", "stages.s2.0", "stages.s3.0", "head"]
    frequency = {c: sum(c in chosen for chosen in r["choices"]) / len(r["choices"]) for c in r["probabilities"]}
    assert frequency[sensitive] > 0.6 and frequency[sensitive] == max(frequency.values())
    assert r["probabilities"][sensitive] > 0.9 and r["probabilities"][sensitive] == max(r["probabilities"].values())
    assert sensitive in r["placement"]
    assert r["val_noisy_acc_after"] > r["val_noisy_acc_before"] + 0.05
    assert r["added_params"] == sum(p.numel() for p in deployed.parameters()) - n_backbone > 0
    assert trained.summary["correctnet/added_params"] == r["added_params"]
    assert set(method.architecture(deployed)["compensation"]) == set(r["placement"])
    # the backbone is untouched (BatchNorm statistics included) and trainable again
    bare = compensation.strip(copy.deepcopy(deployed)).state_dict()
    assert bare.keys() == backbone.state_dict().keys()
    assert all(torch.equal(bare[k], v) for k, v in backbone.state_dict().items())
    assert all(p.requires_grad for p in deployed.parameters())
