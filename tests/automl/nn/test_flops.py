import pytest
import torch
import torchvision

from automl import count_flops, count_params

# torchvision's published multiply-add counts ("GFLOPS" in its model docs are MACs).
PUBLISHED_MACS = {"mobilenet_v2": 300.774e6, "resnet18": 1814.073e6}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_torchvision_models_match_published_counts(name):
    model = getattr(torchvision.models, name)()
    flops = count_flops(model, (3, 224, 224))
    assert abs(flops / 2 - PUBLISHED_MACS[name]) / PUBLISHED_MACS[name] < 0.02


def test_two_flops_per_multiply_add_and_params():
    layer = torch.nn.Linear(10, 4)
    assert count_flops(layer, (10,)) == 2 * 10 * 4
    assert count_params(layer) == 44


def test_counting_keeps_training_mode():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    model.train()
    count_flops(model, (1, 8, 8))
    assert model.training


def test_totals_equal_flop_counter_mode_on_sampled_architectures():
    import numpy as np
    from torch.utils.flop_counter import FlopCounterMode

    import search_spaces

    rng = np.random.default_rng(0)
    space = search_spaces.get("mobile")
    cases = [(torchvision.models.resnet18(), (3, 224, 224)), (torchvision.models.mobilenet_v2(), (3, 224, 224))]
    cases += [(space.build(space.sample(rng), (3, 32, 32), 10), (3, 32, 32)) for _ in range(5)]
    for model, shape in cases:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape))
        assert count_flops(model, shape) == counter.get_total_flops()


@pytest.mark.parametrize("space_name", ["mobile", "dvolver", "resnet"])
def test_a_model_built_on_the_meta_device_costs_what_the_real_one_does(space_name):
    import numpy as np

    import search_spaces
    from automl.nn.flops import model_cost

    space = search_spaces.get(space_name)
    for genome in (space.decode(np.zeros(len(space.genes()), dtype=int)), space.sample(np.random.default_rng(1))):
        build = lambda: space.build(genome, (1, 28, 28), 10)  # noqa: E731
        real = build()
        assert model_cost(build, (1, 28, 28)) == (count_flops(real, (1, 28, 28)), count_params(real))


def test_a_model_that_needs_real_data_is_counted_for_real():
    from automl.nn.flops import model_cost

    class DataDependent(torch.nn.Module):  # reads a value when run: meta tensors have none
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return self.conv(x) * float(self.conv.weight.abs().sum() > -1)

    with torch.device("meta"), pytest.raises(Exception):
        count_flops(DataDependent(), (1, 8, 8))  # the meta build cannot count it...
    built = DataDependent()
    assert model_cost(lambda: DataDependent(), (1, 8, 8)) == (count_flops(built, (1, 8, 8)), count_params(built))  # ...the real one does
