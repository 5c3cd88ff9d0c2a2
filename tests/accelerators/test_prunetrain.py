import math

import pytest
import torch
from torch import nn

import search_spaces
from accelerators.base import InvariantBroken
from accelerators.prunetrain import PruneTrain, channel_groups, channel_liveness, group_lasso, penalised_layers
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops
from automl.train.loop import TrainConfig, _rebuild_optimizer, make_optimizer, make_scheduler, train
from tests.conftest import SMALLEST_MOBILE

SHAPE = (1, 28, 28)
# residual chains (two and three blocks per stage), expansion > 1, mixed kernels
RESIDUAL = "stem16-ir_r2_k3_e3_c12-ir_r3_k5_e3_c16-ir_r2_k3_e1_c24-ir_r1_k3_e3_c32-ir_r2_k7_e3_c48-head128"


def _model(genome: str = RESIDUAL, seed: int = 0) -> nn.Module:
    space = search_spaces.get("mobile-norm" if genome.endswith("-nonorm") else "mobile")
    torch.manual_seed(seed)
    model = space.build(space.parse(genome), SHAPE, 10)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.5)
    return model


def _state(model: nn.Module, optimizer=None) -> TrainState:
    return TrainState(model, optimizer, None, 1, 20, SHAPE, torch.device("cpu"))


@torch.no_grad()
def _kill(group, channels) -> None:
    """Zero every weight producing and reading ``channels`` of ``group``."""
    for conv in group.producers:
        conv.weight[channels] = 0
    for layer in group.consumers:
        layer.weight[:, channels] = 0


def _started(model, optimizer=None, **options):
    accelerator = PruneTrain(**options)
    state = _state(model, optimizer)
    accelerator.apply(Event.INIT, state)
    return accelerator, state


def _check_dense(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            assert m.weight.shape == (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
            assert m.weight.is_contiguous() or m.weight.is_contiguous(memory_format=torch.channels_last)
        elif isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            assert m.weight.shape == m.bias.shape == m.running_mean.shape == m.running_var.shape == (n,)
        elif isinstance(m, nn.Linear):
            assert m.weight.shape == (m.out_features, m.in_features)


def test_groups_tie_residual_chains_and_cover_every_prunable_channel():
    model = _model()
    names = [g.name for g in channel_groups(model)]
    assert names[0] == "stem" and names[-1] == "head"
    by_name = {g.name: g for g in channel_groups(model)}
    stage2 = by_name["s2"]  # three blocks: all projections produce the stream, blocks 2-3 and s3 read it
    assert len(stage2.producers) == 3 and len(stage2.consumers) == 3
    assert stage2.consumers[-1] is model.stages[2][0].expand[0]
    assert by_name["s5"].consumers[-1] is model.head[0]
    assert by_name["head"].consumers == [model.classifier]
    assert sum(1 for n in names if n.endswith(".hidden")) == 10


def test_removing_dead_channels_changes_no_output_and_flops_drop():
    model = _model().eval()
    groups = {g.name: g for g in channel_groups(model)}
    _kill(groups["stem"], [0, 5])
    _kill(groups["s2"], [1, 2, 7])  # a stream shared by a residual chain of three blocks
    _kill(groups["s2.b1.hidden"], [0, 3, 4, 10])
    _kill(groups["s5.b1.hidden"], list(range(0, 144, 3)))
    _kill(groups["head"], list(range(64)))
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        before = model(x)
    accelerator, state = _started(model)
    assert accelerator.reconfigure(state) and state.model_changed
    with torch.no_grad():
        after = model(x)
    assert (after - before).abs().max() < 1e-5
    assert model.stem[0].out_channels == 14 and model.stages[1][0].project[0].out_channels == 13
    assert model.stages[1][1].expand[0].out_channels == 44 and model.head[0].out_channels == 64
    assert model.classifier.in_features == 64
    _check_dense(model)
    assert accelerator.flops_now == count_flops(model, SHAPE) < accelerator.flops_before == count_flops(_model(), SHAPE)
    report = accelerator.report()
    assert report["pruned_channels"] == {"stem": 2, "s2": 3, "s2.b1.hidden": 4, "s5.b1.hidden": 48, "head": 64}
    assert report["architecture"]["stem"] == 14 and report["architecture"]["head"] == 64
    assert report["architecture_string"].startswith("stem14-[h48c12,h36c12]-[h36c13,h44c13,h48c13]-[h16c24,h24c24]")


def test_networks_without_batchnorm_prune_exactly_too():
    model = _model(RESIDUAL + "-nonorm").eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    groups = {g.name: g for g in channel_groups(model)}
    with torch.no_grad():
        for conv in groups["s3"].producers:  # a constant channel (its bias) that nobody reads
            conv.bias[[0, 4]] = 1.0
    _kill(groups["s3"], [0, 4])
    _kill(groups["s1.b0.hidden"], [1])
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        before = model(x)
    accelerator, state = _started(model)
    assert accelerator.reconfigure(state)
    with torch.no_grad():
        assert (model(x) - before).abs().max() < 1e-5
    assert model.stages[2][0].project[0].bias.shape == (22,)
    _check_dense(model)
    assert accelerator.flops_now == count_flops(model, SHAPE)


def test_a_channel_still_read_is_kept_even_with_zero_producing_weights():
    # its producing convolution is zero, but its BatchNorm still emits beta, which is read
    model = _model().eval()
    stem = channel_groups(model)[0]
    with torch.no_grad():
        model.stem[0].weight[3] = 0
    accelerator, state = _started(model)
    assert not accelerator.reconfigure(state) and not state.model_changed
    assert model.stem[0].out_channels == stem.width == 16


def test_a_fully_dead_group_keeps_one_channel_and_the_model_still_runs():
    model = _model()
    accelerator, state = _started(model, threshold=1e9)
    assert accelerator.reconfigure(state)
    assert all(g.width == 1 for g in accelerator.groups)
    _check_dense(model)
    assert model(torch.randn(2, *SHAPE)).shape == (2, 10)
    assert accelerator.flops_now == count_flops(model, SHAPE)


def test_momentum_is_sliced_and_carried_into_the_rebuilt_optimizer():
    model = _model()
    config = TrainConfig(epochs=1)
    optimizer = make_optimizer(model, config)
    model(torch.randn(4, *SHAPE)).square().mean().backward()
    optimizer.step()
    old = {name: optimizer.state[p]["momentum_buffer"].clone() for name, p in model.named_parameters()}
    groups = {g.name: g for g in channel_groups(model)}
    _kill(groups["s1"], [2])  # expand of s1 block 2 loses an input channel ...
    _kill(groups["s1.b1.hidden"], [0, 1])  # ... and two output channels: sliced twice in one go
    _kill(groups["head"], [5])
    accelerator, state = _started(model, optimizer)
    state.scheduler, state.step = make_scheduler(optimizer, config, 10), 1
    assert accelerator.reconfigure(state)
    carried = state.optimizer_state
    assert set(carried) == set(model.parameters())
    for p in model.parameters():
        assert carried[p]["momentum_buffer"].shape == p.shape
    expand = model.stages[0][1].expand[0].weight
    keep_out = [c for c in range(36) if c not in (0, 1)]
    keep_in = [c for c in range(12) if c != 2]
    assert torch.equal(carried[expand]["momentum_buffer"],
                       old["stages.0.1.expand.0.weight"][keep_out][:, keep_in])
    assert torch.equal(carried[model.classifier.bias]["momentum_buffer"], old["classifier.bias"])

    _rebuild_optimizer(state, config, 10)
    assert not state.model_changed and state.optimizer_state == {}
    for p in model.parameters():
        assert state.optimizer.state[p]["momentum_buffer"].shape == p.shape
    assert {id(p) for group in state.optimizer.param_groups for p in group["params"]} == {id(p) for p in model.parameters()}


def test_lambda_makes_the_penalty_the_ratio_of_the_first_loss_and_it_is_in_the_loss():
    model = _model()
    accelerator, state = _started(model)
    assert accelerator.values["ratio"] == 0.2  # the paper's default
    state.targets = torch.zeros(4, dtype=torch.long)
    state.loss = torch.tensor(2.3)
    accelerator.apply(Event.LOSS, state)
    penalty = accelerator.lam * float(group_lasso(accelerator.layers).detach())
    assert math.isclose(penalty / (penalty + 2.3), 0.2, rel_tol=1e-5)
    assert float(state.loss.detach()) == pytest.approx(2.3 + penalty, rel=1e-6)  # a loss term, trained by SGD
    lam = accelerator.lam
    state.loss = torch.tensor(0.5)
    accelerator.apply(Event.LOSS, state)
    assert accelerator.lam == lam  # fixed at the first iteration


def _slice_norms(weight, dim):
    other = [d for d in range(weight.dim()) if d != dim]
    return weight.detach().pow(2).sum(other).sqrt()


def test_the_lasso_is_on_conv_weight_slices_depthwise_batchnorm_image_and_classes_excluded():
    model = _model()
    layers = penalised_layers(channel_groups(model))
    by_layer = {id(layer): (out, inp) for layer, out, inp in layers}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(id(c) not in by_layer for c in convs if c.groups > 1)  # depthwise: not penalised
    assert all(by_layer[id(c)] == (True, True) for c in convs if c.groups == 1 and c is not model.stem[0])
    assert by_layer[id(model.stem[0])] == (True, False)  # the image's channels are not pruned
    assert by_layer[id(model.classifier)] == (False, True)  # nor the classes
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer, _, _ in layers)
    expected = sum(float(_slice_norms(c.weight, 0).sum()) for c in convs if c.groups == 1)
    expected += sum(float(_slice_norms(c.weight, 1).sum()) for c in convs if c.groups == 1 and c is not model.stem[0])
    expected += float(_slice_norms(model.classifier.weight, 1).sum())
    assert float(group_lasso(layers).detach()) == pytest.approx(expected, rel=1e-5)
    group_lasso(layers).backward()  # differentiable: a loss term
    assert model.stem[0].weight.grad is not None and model.stages[0][0].depthwise[0].weight.grad is None


def test_a_channel_below_the_threshold_everywhere_is_removed_and_outputs_barely_move():
    model = _model().eval()
    groups = {g.name: g for g in channel_groups(model)}
    with torch.no_grad():  # weights producing and reading these channels fall under 1e-4, not to zero
        for name, channels in [("s2", [0, 5]), ("s3.b1.hidden", [2, 3, 7]), ("head", list(range(0, 128, 2)))]:
            for conv in groups[name].producers:
                conv.weight[channels] = conv.weight[channels].clamp(-5e-5, 5e-5)
            for layer in groups[name].consumers:
                layer.weight[:, channels] = layer.weight[:, channels].clamp(-5e-5, 5e-5)
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        before = model(x)
    accelerator, state = _started(model)
    assert accelerator.reconfigure(state)
    with torch.no_grad():
        assert (model(x) - before).abs().max() < 1e-3
    assert accelerator.report()["pruned_channels"] == {"s2": 2, "s3.b1.hidden": 3, "head": 64}
    assert min(float(channel_liveness(g).min()) for g in accelerator.groups) >= 1e-4
    _check_dense(model)


def test_a_channel_still_produced_or_still_read_by_one_layer_is_kept():
    model = _model().eval()
    groups = {g.name: g for g in channel_groups(model)}
    with torch.no_grad():
        groups["s2.b0.hidden"].consumers[0].weight[:, 4] = 0  # nobody reads it, but expand still makes it
        stream = groups["s2"]  # a residual stream: dead in two of three producers and every reader
        for conv in stream.producers[:2]:
            conv.weight[1] = 0
        for layer in stream.consumers:
            layer.weight[:, 1] = 0
    accelerator, state = _started(model)
    assert not accelerator.reconfigure(state)  # the paper's union: no channel is dead


def test_broken_group_widths_are_an_invariant_violation():
    model = _model()
    accelerator, state = _started(model)
    accelerator.check_invariants(Event.AFTER_STEP, state)
    model.head[0].weight = nn.Parameter(model.head[0].weight[:5].detach().clone())  # sliced behind its back
    model.head[0].out_channels = 5
    with pytest.raises(InvariantBroken, match="head"):
        accelerator.check_invariants(Event.AFTER_STEP, state)


def test_training_drives_channels_to_zero_and_reconfigures_mid_epoch(small_mnist):
    # a strong penalty, applied as a proximal step, drives channels to zero within a fraction of
    # an epoch, so the whole path (lasso, slice, rebuild the optimizer mid-epoch, go on) runs
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, small_mnist.num_classes)
    accelerator = PruneTrain(ratio=0.99, every=0.25, grow=False, step="prox")
    result = train(model, small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[accelerator])
    report = result.accelerators["prunetrain"]
    assert report["reconfigurations"] >= 1
    assert report["flops_after"] < report["flops_before"] and report["params_after"] < report["params_before"]
    assert report["flops_after"] == count_flops(result.model, small_mnist.input_shape)
    assert report["training_flops_saved"] > 0 and report["channels_after"] < report["channels_before"]
    _check_dense(result.model)
    assert math.isfinite(result.loss)


def test_as_the_model_shrinks_the_mini_batch_grows_and_flops_per_epoch_fall(small_mnist):
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, small_mnist.num_classes)
    accelerator = PruneTrain(ratio=0.95, every=1.0, step="prox")
    result = train(model, small_mnist, TrainConfig(epochs=3), seed=0, accelerators=[accelerator])
    report = result.accelerators["prunetrain"]
    epochs = report["epochs"]
    assert [row["epoch"] for row in epochs] == [1, 2, 3]
    assert epochs[0]["batch_size"] == 64 and epochs[-1]["batch_size"] > 64  # enlarged after a reconfiguration
    assert epochs[-1]["batch_size"] % 8 == 0 and epochs[-1]["batch_size"] <= 1280 // 8
    assert epochs[-1]["mflops"] < epochs[0]["mflops"]
    per_sample = [row["training_flops"] / 1280 for row in epochs]
    assert per_sample[-1] < per_sample[0]  # training FLOPs per epoch fall (per sample: last batches dropped)
    assert result.samples <= 3 * 1280 and result.epochs == pytest.approx(3, abs=0.2)  # budget kept in samples
    assert all(abs(r["epoch"] - round(r["epoch"])) < 0.05 for r in report["history"])  # at epoch ends


@pytest.mark.parametrize("options", [{"ratio": 0.0}, {"ratio": 1.0}, {"every": 0.0}, {"threshold": -1.0},
                                     {"threshold": math.inf}, {"penalty": 1}, {"grow": 2}])
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutomlError):
        PruneTrain(**options)


def test_option_strings_are_checked():
    with pytest.raises(AutomlError, match="ratio"):
        PruneTrain.options["ratio"].parse("prunetrain", "ratio", "1.5")
    assert PruneTrain.options["every"].parse("prunetrain", "every", "0.5") == 0.5
    assert PruneTrain.options["grow"].parse("prunetrain", "grow", "false") is False


def test_a_model_it_cannot_reconfigure_is_a_user_error():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(AutomlError, match="mobile"):
        PruneTrain().apply(Event.INIT, _state(model))
