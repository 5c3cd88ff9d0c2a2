import pytest

from accelerators import parse
from automl.core.errors import AutomlError


def test_fp16_needs_cuda(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    with pytest.raises(AutomlError, match="CUDA"):
        train(model, small_mnist, TrainConfig(epochs=0.1), accelerators=parse("amp:dtype=fp16"))


def test_amp_and_fx16_cannot_be_combined():
    with pytest.raises(AutomlError, match="cannot be combined"):
        parse("amp,fx16")
