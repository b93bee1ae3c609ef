"""Negative feedback training: the loss by hand, the side exits, their removal before deployment."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from tiny import random_batch, tiny_lenet

import hardware
import methods
from methods import TrainConfig, train
from methods.nft import EXITS, IRSExit
from zoo import build_model

ADDITIVE = hardware.noise_model("additive", sigma=0.1)


def lenet(seed: int = 0):
    return tiny_lenet(seed, channels=(8, 16), hidden=(32, 24))


def nft(**params):
    return methods.METHODS.build("nft", **params)


def batch(n: int = 16):
    return random_batch(n, seed=1)


def test_irs_loss_matches_a_hand_computation():
    """Noise-free (sigma 0, exits at 0): nf_out = out - beta (Out_1 + 0.1 Out_2 + 0.01 Out_3),
    loss = CE(nf_out / 4)."""
    method = nft(variant="irs", beta=0.3, exit_hidden=8, exit_features=32)
    model = method.prepare(lenet()).train()
    x, y = batch()
    out = method.step(model, x, y, ADDITIVE.with_sigma(0.0))

    exits = getattr(model, EXITS)
    assert list(exits) == ["conv1", "conv2", "fc1"]  # every stage but the last, shallowest first
    logits, feats = model.forward_features(x, list(exits))
    outs = []
    for stage, e in exits.items():
        h = feats[stage]
        h = F.adaptive_avg_pool2d(h, e.side).flatten(1) if h.dim() == 4 else h
        outs.append(F.relu(h @ e.weight1.T + e.bias1) @ e.weight2.T + e.bias2)
    nf_out = logits - 0.3 * (outs[0] + 0.1 * outs[1] + 0.01 * outs[2])
    expected = F.cross_entropy(nf_out / 4, y)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.terms["ce"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    torch.testing.assert_close(out.logits, logits)


def test_ovf_loss_matches_a_hand_computation():
    """out at sigma, Out_n at sigma + 0.15, 0.10, 0.05 with the same weights, in this order of draws."""
    method = nft(variant="ovf", beta=0.2)
    model = build_model("mlp", 1, 8, 10, hidden=16)
    x, y = batch()
    torch.manual_seed(5)
    out = method.step(model, x, y, ADDITIVE)

    torch.manual_seed(5)
    with hardware.noisy_weights(model, ADDITIVE):
        logits = model(x)
    outs = []
    for sigma in (0.25, 0.2, 0.15):
        with hardware.noisy_weights(model, ADDITIVE.with_sigma(sigma)):
            outs.append(model(x))
    nf_out = logits - 0.2 * (outs[0] + 0.1 * outs[1] + 0.01 * outs[2])
    assert out.loss.item() == pytest.approx(F.cross_entropy(nf_out / 4, y).item(), rel=1e-6)
    assert not torch.allclose(outs[0], logits)  # the extra forwards are noisier draws, not copies


def test_exits_are_gone_after_training_and_the_deployed_model_is_the_backbone():
    from zoo import load_dataset

    data = load_dataset("digits", seed=0)
    method = nft(exit_features=64, exit_hidden=64)
    result = train(lenet(), method, ADDITIVE, data, TrainConfig(epochs=2, device="cpu"), seed=0)
    fresh = lenet(seed=1)
    assert not hasattr(result.model, EXITS)
    assert list(result.model.state_dict()) == list(fresh.state_dict())
    assert sum(p.numel() for p in result.model.parameters()) == sum(p.numel() for p in fresh.parameters())
    assert result.history[-1]["val_acc"] > 0.3  # it learns (chance: 0.1); CE(nf_out / 4) learns slowly


def test_exits_are_digital_to_the_backbone_noise_and_draw_their_own():
    model = nft(exit_features=32, exit_hidden=8).prepare(lenet())
    bare = lenet()
    last = hardware.noise_model("additive", sigma=0.1, digital_last=True)
    assert list(hardware.noisy_parameters(model, last)) == list(hardware.noisy_parameters(bare, last))
    e, h = getattr(model, EXITS)["conv2"], torch.randn(4, 16, 2, 2)
    e.build((16, 2, 2))
    torch.testing.assert_close(e(h, ADDITIVE.with_sigma(0.0)), e(h, ADDITIVE.with_sigma(0.0)))
    assert not torch.allclose(e(h, ADDITIVE), e(h, ADDITIVE))


def built(shape: tuple[int, ...], features: int = 2304) -> IRSExit:
    exit_ = IRSExit(features, 512, 10)
    exit_.build(shape)
    return exit_


def test_exit_pooling_reproduces_the_reference_exits_and_never_upsamples():
    """Reference VGG-8 / ResNet-18 exits on 32x32 CIFAR: pool 6 / 4 / 3 for 64 / 128 / 256 channels
    (2,304 / 2,048 / 2,304 features)."""
    exits = [built(shape) for shape in ((64, 32, 32), (128, 16, 16), (256, 8, 8))]
    assert [(e.side, e.weight1.shape[1]) for e in exits] == [(6, 2304), (4, 2048), (3, 2304)]
    assert (built((16, 4, 4)).side, built((16, 4, 4)).weight1.shape[1]) == (4, 256)  # 12 > 4 cells
    assert built((100,)).weight1.shape[1] == 100 and built((100,)).side == 0


def test_exits_are_sized_on_the_first_batch_and_resume_from_a_state_dict():
    method = nft(exit_hidden=8)
    model = method.prepare(lenet())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # built before the exits are sized
    assert not any(e.built for e in getattr(model, EXITS).values())
    out = method.step(model, *batch(), ADDITIVE)
    out.loss.backward()
    optimizer.step()
    widths = {n: e.weight1.shape[1] for n, e in getattr(model, EXITS).items()}
    assert widths == {"conv1": 8 * 4 * 4, "conv2": 16 * 2 * 2, "fc1": 32}  # 8x8 digits: maps of 4x4, 2x2
    assert optimizer.state[getattr(model, EXITS)["conv1"].weight1]["exp_avg"].shape == (8, 128)

    resumed = method.prepare(lenet(seed=4))
    resumed.load_state_dict(model.state_dict())
    h = torch.randn(3, 8, 4, 4)
    torch.testing.assert_close(
        getattr(resumed, EXITS)["conv1"](h, ADDITIVE.with_sigma(0)),
        getattr(model, EXITS)["conv1"](h, ADDITIVE.with_sigma(0)),
    )


def test_pass_counts_and_bad_input():
    assert nft(variant="ovf").passes() == (4, 4) and nft(variant="irs").passes() == (3, 3)
    assert nft(variant="both").passes() == (6, 6)
    with pytest.raises(ValidationError, match="variant"):
        nft(variant="feedback")
    with pytest.raises(ValueError, match="method.exit_stages.*'nope'.*allowed: conv1, conv2, fc1, fc2"):
        nft(exit_stages=["nope"]).prepare(lenet())
    with pytest.raises(ValueError, match="no IRS exits.*prepare"):
        nft().step(lenet(), *batch(), ADDITIVE)


def test_both_variants_together_feed_back_ovf_then_irs_outputs():
    x, y = batch()
    for variant, n_outs in (("ovf", 3), ("irs", 3), ("both", 6)):
        method = nft(variant=variant, beta=0.0, exit_features=32, exit_hidden=8)
        model = method.prepare(lenet())
        method.step(model, x, y, ADDITIVE)  # sizes the exits (draws their initial weights)
        torch.manual_seed(0)
        out = method.step(model, x, y, ADDITIVE)
        torch.manual_seed(0)
        with hardware.noisy_weights(model, ADDITIVE):
            logits = model(x)
        # beta = 0: only the 1 / (N + 1) scaling remains
        assert out.loss.item() == pytest.approx(F.cross_entropy(logits / (n_outs + 1), y).item(), rel=1e-6), variant
