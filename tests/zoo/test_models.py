"""Contract tests over every registered model, then pinned facts about each architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo import MODELS, StagedModel, build_model
from zoo.models.resnet_cifar import PadShortcut

# (in_channels, image_size, num_classes): digits, CIFAR-10, CIFAR-100, MNIST-like
CONFIGS = [(1, 8, 10), (3, 32, 10), (3, 32, 100), (1, 28, 10)]
names = MODELS.names
CONFIG_IDS = [f"{c}x{s}x{s}-{k}" for c, s, k in CONFIGS]

# 3x32x32 inputs, 10 classes
PARAMS = {
    "mlp": 855_050,
    "lenet": 268_698,
    "vgg8": 12_902_474,
    "resnet20": 269_722,  # He et al. 2016 Table 6: 0.27M
    "resnet32": 464_154,  # 0.46M
    "resnet56": 853_018,  # 0.85M
    "resnet18": 11_173_962,
}
STAGE_SHAPES = {
    "mlp": {"hidden1": (256,), "hidden2": (256,)},
    "lenet": {"conv1": (16, 16, 16), "conv2": (32, 8, 8), "fc1": (128,)},
    "vgg8": {"block1": (128, 16, 16), "block2": (256, 8, 8), "block3": (512, 4, 4), "fc": (1024,)},
    "resnet20": {"layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)},
    "resnet56": {"layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)},
    "resnet18": {
        "layer1": (64, 32, 32),
        "layer2": (128, 16, 16),
        "layer3": (256, 8, 8),
        "layer4": (512, 4, 4),
    },
}


@pytest.fixture(autouse=True)
def one_thread():
    """Batches here are tiny: a second thread only adds synchronisation, badly so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- contract: every registered model ----


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("name", names())
def test_forward_features_shapes_and_gradients(name: str, config: tuple[int, int, int]) -> None:
    c, size, classes = config
    torch.manual_seed(0)
    model = build_model(name, c, size, classes)
    assert isinstance(model, StagedModel) and model.num_classes == classes
    x = torch.randn(2, c, size, size)
    logits, feats = model.forward_features(x, model.stage_names)
    assert logits.shape == (2, classes)
    assert torch.isfinite(logits).all()
    assert list(feats) == model.stage_names
    assert {k: tuple(f.shape[1:]) for k, f in feats.items()} == model.stage_shapes((c, size, size))
    assert all(f.shape[0] == 2 for f in feats.values())
    torch.testing.assert_close(model(x), logits)

    F.cross_entropy(logits, torch.tensor([0, classes - 1])).backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert without_grad == []


@pytest.mark.parametrize("name", names())
def test_default_taps_are_untouched_stage_outputs(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 1, 8, 10).eval()
    assert model.default_taps and set(model.default_taps) <= set(model.stage_names)
    x = torch.randn(3, 1, 8, 8)
    _, feats = model.forward_features(x, reversed(model.default_taps))
    assert list(feats) == [s for s in model.stage_names if s in model.default_taps]  # stage order
    # a tapped tensor is the stage output as it was (no later in-place op changed it)
    h = model.stem(x)
    for stage_name, stage in model.stages.items():
        h = stage(h)
        if stage_name in feats:
            torch.testing.assert_close(feats[stage_name], h)
    with pytest.raises(ValueError, match="unknown stage.*allowed"):
        model.forward_features(x, ["nope"])


@pytest.mark.parametrize("name", names())
def test_init_is_deterministic_for_a_seed(name: str) -> None:
    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return build_model(name, 1, 8, 10).state_dict()

    a, b, other = weights(0), weights(0), weights(1)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a)


@pytest.mark.parametrize("name", names())
def test_options_are_documented_fields_with_defaults(name: str) -> None:
    """The config layer validates `model.options` against these fields before anything runs."""
    fields = MODELS.get(name).model_fields
    assert fields["name"].default == name
    for field, info in fields.items():
        assert not info.is_required() and (field == "name" or info.description), field


# ---- bad input ----


def test_unknown_model_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'; allowed: .*resnet18, resnet20"):
        build_model("resnet19", 3, 32, 10)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match="model 'mlp' has no option 'widht'; allowed: hidden, depth$"):
        build_model("mlp", 1, 8, 10, widht=3)


@pytest.mark.parametrize(
    ("name", "size", "options", "field"),
    [
        ("mlp", 8, {"depth": 0}, "depth"),
        ("mlp", 8, {"hidden": 0}, "hidden"),
        ("lenet", 8, {"kernel_size": 4}, "kernel_size"),
        ("lenet", 8, {"channels": []}, "channels"),
        ("lenet", 8, {"hidden": [0]}, "hidden"),
        ("lenet", 8, {"channels": [4, 4, 4, 4]}, "image_size"),
        ("vgg8", 8, {"channels": [64, 128]}, "channels"),
        ("vgg8", 8, {"hidden": 0}, "hidden"),
        ("vgg8", 4, {}, "image_size"),
    ],
)
def test_bad_option_values_raise_one_line_value_errors(name: str, size: int, options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: {field} .*") as err:
        build_model(name, 1, size, 10, **options)
    assert "\n" not in str(err.value)


# ---- pinned architectures ----


def test_the_zoo() -> None:
    assert set(PARAMS) <= set(names())


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count(name: str) -> None:
    assert n_params(build_model(name, 3, 32, 10)) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(STAGE_SHAPES))
def test_stage_shapes_on_cifar(name: str) -> None:
    assert build_model(name, 3, 32, 10).stage_shapes((3, 32, 32)) == STAGE_SHAPES[name]


def test_mlp_options_and_flat_input() -> None:
    model = build_model("mlp", 1, 8, 10, hidden=32, depth=3)
    assert model.stage_shapes((64,)) == {"hidden1": (32,), "hidden2": (32,), "hidden3": (32,)}
    assert n_params(model) == (64 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 10 + 10)


def test_lenet5_shape_without_batchnorm() -> None:
    model = build_model("lenet", 1, 32, 10, channels=(6, 16), hidden=(120, 84), kernel_size=5, batch_norm=False)
    assert model.stage_shapes((1, 32, 32)) == {
        "conv1": (6, 16, 16),
        "conv2": (16, 8, 8),
        "fc1": (120,),
        "fc2": (84,),
    }
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.default_taps == ("conv1", "conv2")
    convs = (1 * 6 * 25 + 6) + (6 * 16 * 25 + 16)
    assert n_params(model) == convs + (16 * 8 * 8 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)


def test_lenet_without_hidden_layers() -> None:
    model = build_model("lenet", 1, 8, 10, hidden=())
    assert model.stage_names == ["conv1", "conv2"]
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_vgg8_neurosim_channels() -> None:
    model = build_model("vgg8", 3, 32, 10, channels=(128, 128, 256, 256, 512, 512))
    assert model.stage_shapes((3, 32, 32))["block1"] == (128, 16, 16)
    assert n_params(model) == PARAMS["vgg8"] + (3 * 128 - 3 * 64 + 128 * 128 - 64 * 128) * 9 + 2 * 64


def test_option_a_shortcut_subsamples_and_zero_pads() -> None:
    x = torch.randn(2, 16, 7, 7)
    y = PadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


def test_cifar_resnets_have_no_projection_shortcuts_and_resnet18_has_three() -> None:
    def one_by_one(name: str) -> int:
        model = build_model(name, 3, 32, 10)
        return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())

    assert one_by_one("resnet20") == 0
    assert one_by_one("resnet18") == 3


def test_resnet18_is_torchvisions_with_a_small_image_stem() -> None:
    try:
        from torchvision.models import resnet18 as tv_resnet18
    except Exception as err:  # a torchvision whose compiled ops do not match torch fails with RuntimeError
        pytest.skip(f"torchvision does not import: {err}")
    reference = tv_resnet18(num_classes=10)
    reference.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
    reference.maxpool = nn.Identity()
    model = build_model("resnet18", 3, 32, 10)
    assert [p.shape for p in model.parameters()] == [p.shape for p in reference.parameters()]
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            ours.copy_(theirs)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x), reference.eval()(x))


def test_lenet_learns_digits() -> None:
    """The default model on the default data: >= 95% test accuracy after a few seconds on CPU."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images.reshape(-1, 1, 8, 8) / 16.0, dtype=torch.float32)
    x = (x - x[:1400].mean()) / x[:1400].std()
    y = torch.tensor(labels)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    train, test = order[:1400], order[1400:]
    torch.manual_seed(0)
    model = build_model("lenet", 1, 8, 10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(12):
        for batch in train[torch.randperm(len(train))].split(64):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model.eval()(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy >= 0.95
