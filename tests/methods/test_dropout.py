"""The dropout baseline: hidden-layer dropout in training only, nothing left in the deployed model."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_lenet
from torch import nn

from methods.base import METHODS
from methods.dropout import StageDropout

lenet = tiny_lenet


def test_the_hook_drops_a_fraction_p_and_rescales_in_train_mode_only():
    hook, stage, ones = StageDropout(0.3), nn.Identity(), torch.ones(200_000)
    torch.manual_seed(0)
    out = hook(stage.train(), (ones,), ones)
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert out[out != 0].unique().tolist() == pytest.approx([1 / 0.7])
    assert torch.equal(hook(stage.eval(), (ones,), ones), ones)


def test_dropout_acts_on_every_stage_in_training_and_is_a_noop_in_eval():
    method, plain = METHODS.build("dropout"), lenet()
    model = method.prepare(lenet())
    assert model.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x))
        _, feats = model.train().forward_features(x, model.stage_names)
        _, plain_feats = plain.train().forward_features(x, model.stage_names)
    for name in model.stage_names:  # ReLU zeros plus about p of the rest
        extra = (feats[name] == 0).float().mean() - (plain_feats[name] == 0).float().mean()
        assert 0.1 < extra.item() < 0.3, name


def test_after_training_strips_the_dropout():
    method = METHODS.build("dropout")
    model = method.after_training(method.prepare(lenet()), ctx=None).model.train()
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), lenet().train()(x))
    assert method.architecture(model) == {}


def test_p_is_validated():
    with pytest.raises(ValueError, match="p"):
        METHODS.build("dropout", p=1.0)
    assert METHODS.build("dropout").p == 0.3
