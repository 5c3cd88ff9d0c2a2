"""wae: the encoder reconstructs, is trained once and cached, and candidates still learn on its code."""

import pytest
import torch
import torch.nn.functional as F

import accelerators.wae as wae
import search_spaces
from accelerators.wae import (WaveletAutoEncoder, WaveletEncoderInput, WaveletInputModel, encode_split,
                              reconstruction_error, train_encoder)
from automl.data import Dataset, Split
from automl.core.errors import AutomlError
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE


def small_model(in_shape=(1, 28, 28)):
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    return space.build(space.parse(SMALLEST_MOBILE), in_shape, 10)


@pytest.fixture(scope="module")
def encoder(mnist5k):
    split = Split(x=mnist5k.train.x[:1280], y=mnist5k.train.y[:1280])
    trained, meta = train_encoder(split, channels=1, epochs=3, max_seconds=120)
    assert not meta["timed_out"]
    return trained


def test_reconstruction_beats_a_plain_half_resolution_image(encoder, mnist5k):
    # Normalised data has unit variance, so predicting the mean scores MSE ~1. The bar the WAE
    # must clear is the plain half-resolution image (2x2 average, bilinear upsampling), which
    # carries a quarter of the values where [I_L, I_H] carries half: it must do better with both.
    val = Split(x=mnist5k.val.x[:300], y=mnist5k.val.y[:300])
    baseline = F.mse_loss(F.interpolate(F.avg_pool2d(val.x, 2), scale_factor=2, mode="bilinear"), val.x).item()
    error = reconstruction_error(encoder, val)
    assert error["mse"] < min(baseline, 0.15), (error, baseline)
    assert error["high_energy_share"] < 0.05, error  # the energy term pushed the content into I_L


def test_code_and_model_shapes(encoder, mnist5k):
    split = Split(x=mnist5k.val.x[:10], y=mnist5k.val.y[:10])
    code = encode_split(encoder, split).x
    assert code.shape == (10, 2, 14, 14)
    model = WaveletInputModel(small_model(), channels=1, num_classes=10)
    assert model.fuse == "features" and model(code).shape == (10, 10)
    odd = WaveletAutoEncoder(3, width=4)
    x = torch.randn(2, 3, 27, 27)
    recon, low, high = odd(x)
    assert low.shape == high.shape == (2, 3, 14, 14) and recon.shape == x.shape


def test_the_encoder_is_trained_once_and_reused(small_mnist, tmp_path, monkeypatch):
    config = TrainConfig(epochs=0.2)
    first = WaveletEncoderInput(epochs=1)
    train(small_model(), small_mnist, config, seed=0, accelerators=[first], cache_dir=tmp_path)
    report = first.report()
    assert report["cache_hit"] is False and report["one_off_seconds"] > 0
    saved = list((tmp_path / "wae").glob("*.safetensors"))
    assert len(saved) == 1 and saved[0].with_suffix(".json").is_file()
    assert report["flops_per_sample_wrapped"] < report["flops_per_sample_original"]

    def must_not_train(*args, **kwargs):
        raise AssertionError("a second candidate trained the encoder again")

    monkeypatch.setattr(wae, "train_encoder", must_not_train)
    wae._ENCODED.clear()  # a fresh process: only the disk cache is there
    second = WaveletEncoderInput(epochs=1)
    result = train(small_model(), small_mnist, config, seed=1, accelerators=[second], cache_dir=tmp_path)
    again = second.report()
    assert again["cache_hit"] is True and again["one_off_seconds"] == 0 and again["one_off_flops"] == 0
    assert again["cache_key"] == report["cache_key"]
    assert again["reconstruction_mse"] == pytest.approx(report["reconstruction_mse"])
    assert again["training_flops_saved"] == pytest.approx(again["training_flops_saved_gross"] - again["encoder_flops_spent"])
    assert again["training_flops_saved_gross"] > 0
    assert again["encoder_flops_spent"] > 0  # the codes were not in memory: encoding is this run's cost
    assert isinstance(result.model, WaveletInputModel)


def test_a_small_model_still_learns(small_mnist):
    accelerator = WaveletEncoderInput(epochs=1)  # no cache folder: the in-process cache is used
    result = train(small_model(), small_mnist, TrainConfig(epochs=2), seed=0, accelerators=[accelerator])
    assert result.history[-1]["loss"] < result.history[0]["loss"], result.history
    assert result.accuracy > 0.3, result.accuracy  # chance is 0.1
    report = result.accelerators["wae"]
    assert report["code_shape"] == [2, 14, 14] and report["fusion"] == "features"
    assert all(not m._forward_hooks and "forward" not in m.__dict__ for m in result.model.modules())
    raw = accelerator.raw_model(result.model).eval()  # deployable on raw images
    assert raw(small_mnist.val.x[:4]).shape == (4, 10)


def test_streamed_data_is_refused(small_mnist):
    streamed = Split(y=small_mnist.train.y, stream=torch.utils.data.TensorDataset(small_mnist.train.x, small_mnist.train.y))
    data = Dataset("streamed", streamed, small_mnist.val, small_mnist.test, small_mnist.input_shape,
                   small_mnist.class_names, small_mnist.mean, small_mnist.std)
    with pytest.raises(AutomlError, match="in-memory"):
        train(small_model(), data, TrainConfig(epochs=0.1), accelerators=[WaveletEncoderInput()])


@pytest.mark.parametrize("values", [{"epochs": 0}, {"energy": -1.0}, {"width": 0}, {"max_seconds": 0.0}])
def test_bad_options_are_user_errors(values):
    key, value = next(iter(values.items()))
    with pytest.raises(AutomlError):
        WaveletEncoderInput.options[key].parse("wae", key, str(value))
