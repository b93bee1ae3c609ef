"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100, read with torchvision from its usual folders.

Under `root` (torchvision's layout, so an existing torchvision data folder works as is):
``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (the same in ``FashionMNIST/raw``),
``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``,
``cifar-100-python/{train,test,meta}``.

- Validation is a seeded random `val_fraction` of the official train set, never augmented; test
  is the official test set. Train and validation are two views (`Subset`) of ONE uint8 tensor:
  the images are in memory once, as bytes, and each batch is scaled and normalized when drawn.
- CIFAR training augmentation: RandomCrop(32, padding=4) + RandomHorizontalFlip, per image.
- torchvision's CIFAR classes check the md5 of every batch file on every construction: that
  re-hashes the 180 MB each time a trial starts and rejects any other file (such as the tiny
  ones the tests write). The subclasses below check only that the files exist; a download
  still verifies the archive's md5.
- torchvision's MNIST reads the extracted idx files; where only the ``.gz`` files as
  distributed are present, they are extracted next to them first.
- torchvision is imported when one of these sets is first loaded, not when the module registers
  them: the import costs ~4 core-seconds here (zoo.torchvision_compat), which every sweep driver
  and every trial worker paid for the digits set before.
"""

from __future__ import annotations

import functools
import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from zoo.datasets.base import DATASETS, DataSet, DataSplits
from zoo.torchvision_compat import import_torchvision

if TYPE_CHECKING:
    from torchvision import datasets


def torchvision() -> Any:
    """The torchvision package, imported on first use (see zoo.torchvision_compat)."""
    import_torchvision()  # before `import torchvision`
    import torchvision

    return torchvision


def _files_only(cls: type[datasets.CIFAR10]) -> type[datasets.CIFAR10]:
    """`cls` with its md5 checks turned into existence checks (torchvision skips md5=None)."""
    attrs = {
        "train_list": [[name, None] for name, _ in cls.train_list],
        "test_list": [[name, None] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": None},
    }
    return type(cls.__name__, (cls,), attrs)


@dataclass(frozen=True)
class Source:
    """One torchvision data set: where its files are and how to normalize it."""

    cls: type[datasets.VisionDataset]
    mean: tuple[float, ...]  # per channel, of the official train set
    std: tuple[float, ...]
    num_classes: int
    crop_flip: bool  # the CIFAR training augmentation

    @property
    def is_cifar(self) -> bool:
        return issubclass(self.cls, torchvision().datasets.CIFAR10)

    def folder(self, root: str) -> Path:
        if self.is_cifar:
            return Path(root) / self.cls.base_folder
        return Path(root) / self.cls.__name__ / "raw"

    def files(self) -> list[str]:
        if self.is_cifar:
            batches = [name for name, _ in self.cls.train_list + self.cls.test_list]
            return [*batches, self.cls.meta["filename"]]
        return [name.removesuffix(".gz") for name, _ in self.cls.resources]

    def how_to_get(self, root: str) -> str:
        if self.is_cifar:
            return f"extract {self.cls.url} into {root}/"
        names = ", ".join(name for name, _ in self.cls.resources)
        return f"put {names} from {self.cls.mirrors[0]} into {self.folder(root)}/"


@functools.cache
def sources() -> dict[str, Source]:
    """The data sets by name (imports torchvision)."""
    datasets = torchvision().datasets
    cifar10, cifar100 = _files_only(datasets.CIFAR10), _files_only(datasets.CIFAR100)
    return {
        "mnist": Source(datasets.MNIST, (0.1307,), (0.3081,), 10, crop_flip=False),
        "fashion_mnist": Source(datasets.FashionMNIST, (0.2860,), (0.3530,), 10, crop_flip=False),
        # the true per-pixel std; the often copied (0.2023, 0.1994, 0.2010) is a std of something else
        "cifar10": Source(cifar10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10, crop_flip=True),
        "cifar100": Source(cifar100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 100, crop_flip=True),
    }


def __getattr__(name: str) -> Any:  # `SOURCES` as before, built on first use
    if name == "SOURCES":
        return sources()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ImageTensors(Dataset):
    """uint8 images (N, C, H, W), held by reference, served as normalized float32 (C, H, W) items.

    `__getitems__` serves a whole batch at once (DataLoader and Subset use it): one indexing and
    one normalization per batch instead of per image.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.images, self.labels, self.augment = images, labels, augment
        self.mean = torch.tensor(mean).view(-1, 1, 1)  # (C, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        x = self.images[indices]  # (B, C, H, W) uint8
        if self.augment is not None:
            x = torch.stack([self.augment(image) for image in x])  # each image its own crop / flip
        x = (x.float() / 255 - self.mean) / self.std  # (B, C, H, W) float32
        return list(zip(x.unbind(0), self.labels[indices].unbind(0), strict=True))


def _as_tensors(base: datasets.VisionDataset) -> tuple[Tensor, Tensor]:
    """torchvision's arrays as (N, C, H, W) uint8 images and (N,) int64 labels, without copying."""
    images = torch.as_tensor(base.data)  # MNIST (N, H, W), CIFAR (N, H, W, C)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return images, torch.as_tensor(base.targets, dtype=torch.int64)


def _extract_gz(folder: Path, files: list[str]) -> None:
    for name in files:
        target, packed = folder / name, folder / f"{name}.gz"
        if not target.exists() and packed.exists():
            with gzip.open(packed, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _ensure_files(name: str, source: Source, root: str, download: bool) -> None:
    """Raise a one-line FileNotFoundError naming the missing files and how to get them."""
    folder, files = source.folder(root), source.files()
    if not source.is_cifar:
        _extract_gz(folder, files)
    missing = [f for f in files if not (folder / f).exists()]
    if missing and download:
        try:
            source.cls(root, train=False, download=True)  # fetches every split
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
            last_line = (str(err).strip().splitlines() or [""])[-1]  # MNIST's has one line per mirror
            raise FileNotFoundError(
                f"{name}: downloading into {root}/ failed ({type(err).__name__}: {last_line}); "
                f"{source.how_to_get(root)}"
            ) from None
        missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"{name}: expected {', '.join(missing)} in {folder}/; "
            f"set download=True (config: data.download=true) or {source.how_to_get(root)}"
        )


def load_torchvision(name: str, root: str, download: bool, augment: bool, val_fraction: float, seed: int) -> DataSplits:
    source = sources()[name]
    _ensure_files(name, source, root, download)
    images, labels = _as_tensors(source.cls(root, train=True))
    test_images, test_labels = _as_tensors(source.cls(root, train=False))

    n = len(labels)
    n_val = round(val_fraction * n)
    if not 0 < n_val < n:
        raise ValueError(f"{name}: val_fraction={val_fraction} leaves no train or no validation image of {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val].sort().values.tolist(), order[n_val:].sort().values.tolist()

    size = images.shape[-1]
    norm = source.mean, source.std
    crop_flip = None
    if augment and source.crop_flip:
        transforms = torchvision().transforms
        crop_flip = transforms.Compose([transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()])
    train = ImageTensors(images, labels, *norm, augment=crop_flip)
    clean = ImageTensors(images, labels, *norm)  # same tensors, no augmentation
    test = ImageTensors(test_images, test_labels, *norm)
    return DataSplits(
        Subset(train, train_idx),
        Subset(clean, val_idx),
        test,
        in_channels=images.shape[1],
        image_size=size,
        num_classes=source.num_classes,
    )


class TorchvisionSet(DataSet):
    """A torchvision data set from `root` (see the module docstring); no options of its own."""

    def load(self, root: str, download: bool, augment: bool, val_fraction: float, seed: int) -> DataSplits:
        return load_torchvision(self.name, root, download, augment, val_fraction, seed)


@DATASETS.add
class MNIST(TorchvisionSet):
    """MNIST: 28x28 grey digits, 60,000 train (validation drawn from them) and 10,000 test images."""

    name: Literal["mnist"] = "mnist"


@DATASETS.add
class FashionMNIST(TorchvisionSet):
    """Fashion-MNIST: 28x28 grey clothing images, MNIST's sizes."""

    name: Literal["fashion_mnist"] = "fashion_mnist"


@DATASETS.add
class CIFAR10Set(TorchvisionSet):
    """CIFAR-10: 32x32 colour images of 10 classes, 50,000 train and 10,000 test; crop + flip."""

    name: Literal["cifar10"] = "cifar10"


@DATASETS.add
class CIFAR100Set(TorchvisionSet):
    """CIFAR-100: CIFAR-10's images and sizes with 100 classes; crop + flip."""

    name: Literal["cifar100"] = "cifar100"
