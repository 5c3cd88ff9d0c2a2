import numpy as np
import pytest
import torch

from accelerators import parse
from accelerators.subset import Subset, diverse_subset, random_subset
from automl.core.errors import AutomlError
from automl.train.loop import TrainConfig, train


def test_random_subset_is_class_balanced_and_shared_by_seed():
    labels = np.repeat(np.arange(10), [30, 40, 50, 60, 70, 30, 40, 50, 60, 70])
    index = random_subset(labels, 0.5, seed=3)
    kept = np.bincount(labels[index], minlength=10)
    assert kept.tolist() == [15, 20, 25, 30, 35, 15, 20, 25, 30, 35]
    assert np.array_equal(index, random_subset(labels, 0.5, seed=3))
    assert len(set(index.tolist())) == len(index)


def test_diverse_subset_covers_a_class_better_than_its_densest_points():
    torch.manual_seed(0)
    # one class: a dense blob of 90 near-identical images plus 10 distinct outliers
    blob = torch.randn(1, 1, 8, 8).repeat(90, 1, 1, 1) + 0.01 * torch.randn(90, 1, 8, 8)
    outliers = 3 * torch.randn(10, 1, 8, 8)
    images = torch.cat([blob, outliers])
    labels = np.zeros(100, dtype=int)
    index = diverse_subset(images, labels, 0.1)
    assert len(index) == 10
    assert (index >= 90).sum() >= 8  # the cover reaches the outliers instead of the blob


def test_training_sees_the_fraction_and_reports_the_saving(small_mnist, tiny_model):
    subset = Subset(fraction=0.25)
    result = train(tiny_model(), small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[subset])
    report = result.accelerators["subset"]
    assert abs(report["images_kept"] - 320) <= 5 and report["images_full"] == 1280  # rounded per class
    assert result.samples == report["images_kept"] // 64 * 64
    assert report["training_flops_saved"] > 0


def test_streamed_data_is_refused(small_mnist, tiny_model):
    from automl.data import Dataset, Split

    streamed = Dataset("s", Split(y=small_mnist.train.y, stream=object()), small_mnist.val, small_mnist.test,
                       small_mnist.input_shape, small_mnist.class_names, small_mnist.mean, small_mnist.std)
    with pytest.raises(AutomlError, match="in-memory"):
        train(tiny_model(), streamed, TrainConfig(epochs=1), accelerators=[Subset()])


@pytest.mark.parametrize("bad", ["subset:fraction=0", "subset:fraction=1.5", "subset:select=best"])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(AutomlError):
        parse(bad)
