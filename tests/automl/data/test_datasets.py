"""Datasets through the real loaders, on tiny files written in the real on-disk formats."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from automl.data import load_dataset, stratified_split
from automl.core.errors import DataError, UnknownNameError


def test_embedded_default_is_real_mnist_split_stratified(mnist5k):
    assert mnist5k.input_shape == (1, 28, 28) and mnist5k.num_classes == 10
    assert (len(mnist5k.train), len(mnist5k.val), len(mnist5k.test)) == (3500, 750, 750)
    for split, per_class in ((mnist5k.train, 350), (mnist5k.val, 75), (mnist5k.test, 75)):
        assert torch.bincount(split.y).tolist() == [per_class] * 10
    # normalised with statistics of the training split
    assert abs(float(mnist5k.train.x.mean())) < 1e-3 and abs(float(mnist5k.train.x.std()) - 1) < 1e-3
    assert 0.1 < mnist5k.mean[0] < 0.15


def test_split_is_deterministic_and_disjoint():
    labels = np.repeat(np.arange(4), 25)
    a = stratified_split(labels, (0.6, 0.2, 0.2))
    b = stratified_split(labels, (0.6, 0.2, 0.2))
    assert all((x == y).all() for x, y in zip(a, b))
    joined = np.concatenate(a)
    assert len(joined) == 100 and len(set(joined.tolist())) == 100


def test_batches_cover_the_split_once(mnist5k):
    seen = sum(len(y) for _, y in mnist5k.val.batches(128))
    assert seen == len(mnist5k.val)
    g = torch.Generator().manual_seed(0)
    assert sum(len(y) for _, y in mnist5k.train.batches(64, shuffle=True, generator=g, drop_last=True)) == 3456


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(UnknownNameError, match="mnist5k"):
        load_dataset("imagenet-22k")


def test_missing_torchvision_dataset_says_how_to_fetch_it(tmp_path):
    with pytest.raises(DataError, match="--download"):
        load_dataset("cifar10", tmp_path)


# -- writers of the real formats -------------------------------------------------------------

def _write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def _images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_idx_datasets(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    _write_idx(raw, "train", _images(rng, 100, (28, 28)), np.repeat(np.arange(10), 10).astype(np.uint8))
    _write_idx(raw, "t10k", _images(rng, 30, (28, 28)), np.repeat(np.arange(10), 3).astype(np.uint8))
    data = load_dataset(name, tmp_path)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 30)
    assert torch.bincount(data.val.y).tolist() == [1] * 10


@pytest.fixture()
def no_md5(monkeypatch):
    """Tiny files cannot match the published archives' checksums; everything else is real."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.stl10 as stl10
    import torchvision.datasets.svhn as svhn

    for module in (cifar, svhn, stl10):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_python_batches(tmp_path, no_md5):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        batch = {"data": _images(rng, 20, (3072,)), "labels": [j % 10 for j in range(20)]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": _images(rng, 10, (3072,)), "labels": list(range(10))}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    data = load_dataset("cifar10", tmp_path)
    assert data.input_shape == (3, 32, 32) and data.class_names == names
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 10)
    assert len(data.mean) == 3


def test_cifar100_python_batches(tmp_path, no_md5):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps({"data": _images(rng, 200, (3072,)), "fine_labels": [j % 100 for j in range(200)]}))
    (folder / "test").write_bytes(pickle.dumps({"data": _images(rng, 100, (3072,)), "fine_labels": list(range(100))}))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100 and data.input_shape == (3, 32, 32)
    assert data.class_names == [f"c{i}" for i in range(100)]
    assert len(data.train) + len(data.val) == 200 and len(data.test) == 100
    assert sorted(int(y) for y in data.test.y) == list(range(100))  # the fine labels were read


def test_svhn_mat_files(tmp_path, no_md5):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("test", 20)):
        labels = (np.arange(n) % 10 + 1).reshape(-1, 1)  # SVHN stores digit 0 as label 10
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's (H, W, C, N) layout
        savemat(tmp_path / f"{split}_32x32.mat", {"X": images, "y": labels})
    data = load_dataset("svhn", tmp_path)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert int(data.test.y.min()) == 0 and int(data.test.y.max()) == 9


def test_stl10_binary_files(tmp_path, no_md5):
    rng = np.random.default_rng(0)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    for split, n in (("train", 20), ("test", 10)):
        (folder / f"{split}_X.bin").write_bytes(_images(rng, n, (3, 96, 96)).tobytes())
        (folder / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)))
    data = load_dataset("stl10", tmp_path)
    assert data.input_shape == (3, 96, 96) and data.class_names[0] == "class0"
    assert len(data.train) + len(data.val) == 20


def _write_pngs(root, classes=("cat", "dog", "eel"), per_class=10, size=(20, 24)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_images(rng, 1, (*size, 3))[0]).save(root / c / f"{i}.png")


def test_image_folder_in_memory(tmp_path):
    _write_pngs(tmp_path / "pets")
    data = load_dataset(f"imagefolder:{tmp_path / 'pets'}")
    assert data.class_names == ["cat", "dog", "eel"] and data.input_shape == (3, 20, 24)
    assert (len(data.train), len(data.val), len(data.test)) == (21, 6, 3)
    assert data.train.in_memory


def test_image_folder_streamed_when_large(tmp_path):
    from automl.data import load_image_folder

    _write_pngs(tmp_path / "pets")
    data = load_image_folder(tmp_path / "pets", in_memory_limit=0)
    assert not data.train.in_memory
    images, labels = next(data.train.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert images.shape == (4, 3, 20, 24) and labels.shape == (4,)


def test_missing_image_folder_is_a_user_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nothing'}")
