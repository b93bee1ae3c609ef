"""Contract tests over every registered data set (offline: the torchvision ones read tiny files
written here in the real on-disk formats), then facts about each member."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader, Dataset

from zoo import DATASETS, DataSplits, load_dataset
from zoo.datasets.torchvision_sets import SOURCES

N_TRAIN, N_TEST = 20, 10  # images per tiny torchvision file set
FOLDERS = {  # where torchvision keeps each data set under root
    "mnist": "MNIST/raw",
    "fashion_mnist": "FashionMNIST/raw",
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
}
TEST_FILES = {"mnist": "t10k-images-idx3-ubyte", "fashion_mnist": "t10k-images-idx3-ubyte"}
TEST_FILES |= {"cifar10": "test_batch", "cifar100": "test"}
AUGMENTED = {"cifar10", "cifar100"}  # RandomCrop(32, padding=4) + RandomHorizontalFlip on train
names = DATASETS.names
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 2051, 2049  # 0x0803 / 0x0801: uint8, 3 / 1 dimensions


# --------------------------------------------------------------------------- tiny files, real formats


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """MNIST's idx format: big-endian magic (0x08 = uint8 in byte 3, ndim in byte 4), dims, bytes."""
    header = struct.pack(f">{1 + array.ndim}i", 0x0800 | array.ndim, *array.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist_like(raw: Path, seed: int, compressed: bool = True, extracted: bool = True) -> dict:
    """{split: (images (N, 28, 28) uint8, labels (N,))} written as torchvision's download leaves them."""
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for gz in [g for g, on in ((True, compressed), (False, extracted)) if on]:
            suffix = ".gz" if gz else ""
            write_idx(raw / f"{split}-images-idx3-ubyte{suffix}", images, gz)
            write_idx(raw / f"{split}-labels-idx1-ubyte{suffix}", labels, gz)
        arrays[split] = (images, labels)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings, as Python 2's cPickle wrote the CIFAR files:
    loaded with encoding="bytes" the keys are b"data", with encoding="latin1" (torchvision) "data"."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string


def write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def cifar_batch(rng: np.random.Generator, n: int, num_classes: int) -> dict:
    """Rows of 3072 bytes: 1024 red, 1024 green, 1024 blue, each 32x32 row-major."""
    batch = {"batch_label": "tiny", "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    batch["filenames"] = [f"img_{i}.png" for i in range(n)]
    if num_classes == 10:
        batch["labels"] = rng.integers(0, 10, n).tolist()
    else:
        batch["fine_labels"] = rng.integers(0, 100, n).tolist()
        batch["coarse_labels"] = rng.integers(0, 20, n).tolist()
    return batch


def write_cifar(folder: Path, num_classes: int, seed: int) -> dict:
    """{split: (images (N, 3072) uint8, labels)} as cifar-10-batches-py/ or cifar-100-python/."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    if num_classes == 10:
        batches = [cifar_batch(rng, N_TRAIN // 5, 10) for _ in range(5)]
        for i, batch in enumerate(batches):
            write_pickle(folder / f"data_batch_{i + 1}", batch)
        test = cifar_batch(rng, N_TEST, 10)
        write_pickle(folder / "test_batch", test)
        meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": N_TRAIN // 5}
        write_pickle(folder / "batches.meta", {**meta, "num_vis": 3072})
        train = (np.vstack([b["data"] for b in batches]), sum((b["labels"] for b in batches), []))
        return {"train": train, "test": (test["data"], test["labels"])}
    train, test = cifar_batch(rng, N_TRAIN, 100), cifar_batch(rng, N_TEST, 100)
    write_pickle(folder / "train", train)
    write_pickle(folder / "test", test)
    meta = {
        "fine_label_names": [f"f{i}" for i in range(100)],
        "coarse_label_names": [f"c{i}" for i in range(20)],
    }
    write_pickle(folder / "meta", meta)
    return {"train": (train["data"], train["fine_labels"]), "test": (test["data"], test["fine_labels"])}


def write_all(root: Path) -> dict[str, dict]:
    return {
        "mnist": write_mnist_like(root / FOLDERS["mnist"], seed=1),
        "fashion_mnist": write_mnist_like(root / FOLDERS["fashion_mnist"], seed=2, compressed=False),
        "cifar10": write_cifar(root / FOLDERS["cifar10"], 10, seed=3),
        "cifar100": write_cifar(root / FOLDERS["cifar100"], 100, seed=4),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("data")
    return root, write_all(root)


def load(name: str, root: Path, **kw) -> DataSplits:
    return load_dataset(name, root=str(root), **kw)


def stack(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = zip(*[dataset[i] for i in range(len(dataset))], strict=True)
    return torch.stack(x), torch.stack([torch.as_tensor(v) for v in y])


def rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.flatten(1)}


# --------------------------------------------------------------------------- contract: every data set


@pytest.mark.parametrize("name", names())
def test_items_shapes_and_types(name: str, tiny) -> None:
    data = load(name, tiny[0], augment=False)
    assert isinstance(data, DataSplits)
    for split in (data.train, data.val, data.test):
        assert len(split) > 0
        x, y = split[0]
        assert x.dtype == torch.float32 and x.shape == (data.in_channels, data.image_size, data.image_size)
        assert torch.as_tensor(y).dtype == torch.int64 and 0 <= int(y) < data.num_classes
        xb, yb = next(iter(DataLoader(split, batch_size=4)))  # the batched path
        assert xb.shape == (min(4, len(split)), *x.shape) and xb.dtype == torch.float32
        assert yb.dtype == torch.int64 and yb.shape == (xb.shape[0],)
        assert torch.equal(xb[0], x)


@pytest.mark.parametrize("name", names())
def test_splits_disjoint_and_seeded(name: str, tiny) -> None:
    def val_and_train(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        data = load(name, tiny[0], augment=False, seed=seed)
        return stack(data.val)[0], stack(data.train)[0]

    (val, train), (val_again, train_again) = val_and_train(0), val_and_train(0)
    test = stack(load(name, tiny[0], augment=False).test)[0]
    assert not rows(train) & rows(val) and not rows(train) & rows(test) and not rows(val) & rows(test)
    assert len(rows(train)) == len(train)  # no item twice
    assert torch.equal(val, val_again) and torch.equal(train, train_again)
    assert rows(val_and_train(1)[0]) != rows(val)


@pytest.mark.parametrize("name", names())
def test_augmentation_only_on_augmented_train(name: str, tiny) -> None:
    plain = load(name, tiny[0], augment=False)
    data = load(name, tiny[0], augment=True)

    def draws(dataset: Dataset, index: int) -> list[torch.Tensor]:
        out = []
        for seed in range(12):
            torch.manual_seed(seed)
            out.append(dataset[index][0])
        return out

    for split, clean in ((data.val, plain.val), (data.test, plain.test)):
        assert all(torch.equal(x, clean[0][0]) for x in draws(split, 0))
    train_draws = draws(data.train, 1)
    if name not in AUGMENTED:
        assert all(torch.equal(x, plain.train[1][0]) for x in train_draws)
        return
    assert len(rows(torch.stack(train_draws))) > 1
    # each draw is a 32x32 crop of the clean image padded by 4 with black (0, normalized), maybe flipped
    clean = plain.train[1][0]
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in (SOURCES[name].mean, SOURCES[name].std))
    padded = torch.nn.functional.pad(clean * std + mean, (4, 4, 4, 4))
    padded = (padded - mean) / std  # (3, 40, 40)
    crops = [padded[:, i : i + 32, j : j + 32] for i in range(9) for j in range(9)]
    crops += [c.flip(-1) for c in crops]
    for x in train_draws:
        assert any(torch.allclose(x, c, atol=1e-5) for c in crops)


def options(name: str) -> dict:
    return {k: f.default for k, f in DATASETS.get(name).model_fields.items() if k != "name"}


@pytest.mark.parametrize("name", names())
def test_every_option_has_a_default_and_a_docstring(name: str) -> None:
    fields = DATASETS.get(name).model_fields
    assert fields["name"].default == name
    for field, info in fields.items():
        assert not info.is_required() and (field == "name" or info.description), field


def test_registry_and_options() -> None:
    assert {"digits", "synthetic", "mnist", "fashion_mnist", "cifar10", "cifar100"} <= set(names())
    assert options("digits") == {"test_fraction": 0.2}
    assert options("cifar10") == {}
    with pytest.raises(ValueError, match=r"data set 'digits' has no option 'shape'; allowed: test_fraction$"):
        load_dataset("digits", shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"unknown data set 'imagenet'; allowed: cifar10, cifar100"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


# --------------------------------------------------------------------------- torchvision files


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_reads_the_files_it_was_given(name: str, tiny) -> None:
    """Test item k is fixture test image k, scaled to [0, 1] and normalized per channel: checks
    the idx header / CIFAR's channel-planar rows, and the labels."""
    root, arrays = tiny
    images, labels = arrays[name]["t10k" if "mnist" in name else "test"]
    data = load(name, root)
    x, y = stack(data.test)
    expected = torch.from_numpy(np.asarray(images)).float().view(x.shape) / 255
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in (SOURCES[name].mean, SOURCES[name].std))
    torch.testing.assert_close(x, (expected - mean) / std)
    assert y.tolist() == np.asarray(labels).tolist()
    assert len(data.train) + len(data.val) == N_TRAIN and len(data.val) == 2  # round(0.1 * 20)
    assert data.num_classes == (100 if name == "cifar100" else 10)


def test_fixture_formats_match_the_published_ones(tiny) -> None:
    root, _ = tiny
    with open(root / FOLDERS["cifar10"] / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")  # as the CIFAR page loads it
    assert set(batch) == {b"batch_label", b"data", b"labels", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (N_TRAIN // 5, 3072)
    with open(root / FOLDERS["cifar100"] / "train", "rb") as f:
        assert {b"fine_labels", b"coarse_labels"} <= set(pickle.load(f, encoding="bytes"))
    raw = root / FOLDERS["mnist"]
    assert (raw / "train-images-idx3-ubyte").read_bytes()[:8] == struct.pack(">2i", IDX_IMAGES_MAGIC, N_TRAIN)
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz") as f:
        assert f.read(8) == struct.pack(">2i", IDX_LABELS_MAGIC, N_TEST)


def test_mnist_extracts_gz_only_files(tmp_path: Path) -> None:
    arrays = write_mnist_like(tmp_path / "MNIST" / "raw", seed=1, extracted=False)
    data = load("mnist", tmp_path)
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 16 + N_TRAIN * 28 * 28
    expected = (torch.from_numpy(arrays["t10k"][0][3]).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(data.test[3][0][0], expected)


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_missing_files_error_names_the_path(name: str, tmp_path: Path) -> None:
    folder = tmp_path / FOLDERS[name]
    with pytest.raises(FileNotFoundError, match="download=True") as err:
        load(name, tmp_path)
    assert f"{folder}/" in str(err.value) and "\n" not in str(err.value)

    write_all(tmp_path)
    gone = TEST_FILES[name]
    (folder / gone).unlink()
    (folder / f"{gone}.gz").unlink(missing_ok=True)  # MNIST would extract it again
    with pytest.raises(FileNotFoundError, match=f"expected {gone} in {folder}/;"):
        load(name, tmp_path)


# --------------------------------------------------------------------------- digits


def test_digits_stratified_70_10_20_and_normalized() -> None:
    data = load_dataset("digits")
    splits = {"train": stack(data.train), "val": stack(data.val), "test": stack(data.test)}
    total = sum(len(y) for _, y in splits.values())
    assert total == 1797
    overall = torch.bincount(torch.cat([y for _, y in splits.values()]), minlength=10) / total
    for (name, (_, y)), fraction in zip(splits.items(), (0.7, 0.1, 0.2), strict=True):
        assert abs(len(y) / total - fraction) < 0.005, name
        # stratified: class shares match the whole set to within one image per class
        shares = torch.bincount(y, minlength=10) / len(y)
        assert (shares - overall).abs().max() < 1.5 / len(y), name
    x_train = splits["train"][0]
    assert abs(x_train.mean().item()) < 1e-5 and abs(x_train.std().item() - 1) < 1e-3
    assert abs(splits["test"][0].mean().item()) < 0.05  # same transform, another sample


def test_digits_test_fraction_and_bad_fractions() -> None:
    data = load_dataset("digits", test_fraction=0.5, val_fraction=0.2)
    # sklearn rounds held-out parts up: test ceil(0.5 * 1797), val ceil(0.2 / 0.5 * 898)
    assert (len(data.train), len(data.val), len(data.test)) == (538, 360, 899)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=0.9, val_fraction=0.1)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_labels_are_a_linear_function_of_the_inputs() -> None:
    data = load_dataset(
        "synthetic", shape=[1, 6, 6], num_classes=4, train_size=2000, val_size=10, test_size=500, seed=3
    )
    assert (len(data.train), len(data.val), len(data.test)) == (2000, 10, 500)
    assert (data.in_channels, data.image_size, data.num_classes) == (1, 6, 4)
    (x, y), (xt, yt) = data.train.tensors, data.test.tensors
    assert torch.bincount(y, minlength=4).min() > 2000 / 4 * 0.6  # roughly balanced
    assert abs(x.mean().item()) < 0.02 and abs(x.std().item() - 1) < 0.02
    probe = LogisticRegression(C=100.0, max_iter=2000).fit(x.flatten(1).numpy(), y.numpy())
    assert probe.score(xt.flatten(1).numpy(), yt.numpy()) > 0.9  # chance: 0.25


@pytest.mark.parametrize(
    "bad, field",
    [({"shape": (3, 32, 16)}, "shape"), ({"num_classes": 1}, "num_classes"), ({"val_size": 0}, "val_size")],
)
def test_synthetic_bad_options(bad: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        load_dataset("synthetic", **bad)
