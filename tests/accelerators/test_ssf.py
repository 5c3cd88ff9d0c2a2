"""ssf: structure frozen, strength learned, N samples per class, and the model still learns."""

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces
from accelerators.ssf import StructureStrengthFilters, keep_per_class, learn_dictionary
from automl.core.errors import AutomlError
from automl.train.events import Event
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE


def small_model():
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    return space.build(space.parse(SMALLEST_MOBILE), (1, 28, 28), 10)


class Recorder(StructureStrengthFilters):
    """Keeps a copy of the structure and strengths as they were when training started."""

    def apply(self, event, state):
        if event is not Event.FIT_END:
            super().apply(event, state)
        if event is Event.SETUP:
            self.start = {id(c): c.weight.detach().clone() for c in self.structured}
            self.start_strength = {id(c): s.detach().clone() for c, s in self.strengths.items()}
        elif event is Event.FIT_END:
            self.end = {id(c): c.weight.detach().clone() for c in self.structured}
            self.end_strength = {id(c): s.detach().clone() for c, s in self.strengths.items()}
            self.grads = [c.weight.grad for c in self.structured]
            super().apply(event, state)


def test_dictionary_atoms_are_unit_norm_and_fit_the_patches():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(4, 16, generator=generator)
    codes = torch.randn(512, 4, generator=generator) * (torch.rand(512, 4, generator=generator) < 0.5)
    atoms = learn_dictionary(codes @ basis, 8, alpha=0.01, generator=generator)
    assert atoms.shape == (8, 16)
    assert torch.allclose(atoms.norm(dim=1), torch.ones(8), atol=1e-4)
    # the atoms span the data: projecting on them leaves a small residual
    q, _ = torch.linalg.qr(atoms.T)
    data = codes @ basis
    residual = (data - data @ q @ q.T).norm() / data.norm()
    assert residual < 0.05, residual


def test_keep_per_class_keeps_exactly_n_and_is_deterministic():
    labels = np.repeat(np.arange(10), 30)
    index = keep_per_class(labels, 5, seed=3)
    assert np.bincount(labels[index]).tolist() == [5] * 10
    assert (index == keep_per_class(labels, 5, seed=3)).all()
    assert not (index == keep_per_class(labels, 5, seed=4)).all()


def test_structure_stays_frozen_while_strength_learns(small_mnist):
    model = small_model()
    accelerator = Recorder(per_class=20)
    result = train(model, small_mnist, TrainConfig(epochs=3), seed=0, accelerators=[accelerator])
    assert accelerator.structured, "no convolution was given a dictionary structure"
    for conv in accelerator.structured:
        assert torch.equal(accelerator.start[id(conv)], accelerator.end[id(conv)])
    assert all(g is None for g in accelerator.grads)  # no weight gradient was ever computed
    # the strength of a conv followed by BatchNorm is the BN's scale: it was trained
    assert any(not torch.allclose(m.weight, torch.ones_like(m.weight)) for m in result.model.modules()
               if isinstance(m, nn.BatchNorm2d))
    report = result.accelerators["ssf"]
    classes = len(small_mnist.train.y.unique())
    assert report["samples_used"] == 20 * classes and report["samples_available"] == len(small_mnist.train)
    assert report["trainable_params"] < report["total_params"]
    assert report["training_flops_saved"] > 0
    assert all(p.requires_grad for p in result.model.parameters())  # a normal candidate again
    assert result.model.state_dict().keys() == small_model().state_dict().keys()


class NoNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


def test_explicit_strength_without_batchnorm_is_learned_and_folded_back(small_mnist):
    torch.manual_seed(0)
    model = NoNorm()
    accelerator = Recorder()
    result = train(model, small_mnist, TrainConfig(epochs=0.5, lr=0.05), seed=0, accelerators=[accelerator])
    assert len(accelerator.start_strength) == 2
    for conv in accelerator.structured:
        key = id(conv)
        assert torch.equal(accelerator.start[key], accelerator.end[key])  # structure frozen
        assert not torch.allclose(accelerator.start_strength[key], accelerator.end_strength[key])  # strength learned
        folded = accelerator.end[key] * accelerator.end_strength[key].view(-1, 1, 1, 1)
        assert torch.allclose(conv.weight, folded)
        assert "strength" not in dict(conv.named_parameters()) and "forward" not in conv.__dict__
    assert result.model.state_dict().keys() == NoNorm().state_dict().keys()


@pytest.mark.parametrize("key,raw", [("per_class", "-1"), ("patches", "2"), ("iterations", "0"), ("alpha", "-1")])
def test_bad_options_are_user_errors(key, raw):
    with pytest.raises(AutomlError):
        StructureStrengthFilters.options[key].parse("ssf", key, raw)
