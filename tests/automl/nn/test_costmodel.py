"""The roofline cost model: what a traced training step contains and how it is charged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import search_spaces
from automl.core.errors import AutomlError
from automl.nn.costmodel import (FORMATS, Calibration, Op, check_formats, op_seconds, predict_training, step_cost,
                                 trace_step, training_seconds)
from automl.nn.flops import count_flops
from tests.conftest import SMALLEST_MOBILE


def mobile(genome: str = SMALLEST_MOBILE) -> nn.Module:
    space = search_spaces.get("mobile")
    return space.build(space.parse(genome), (1, 28, 28), 10)


def test_forward_flops_of_a_traced_step_match_the_projects_flops_convention():
    model = mobile()
    ops = trace_step(model, (1, 28, 28), batch_size=4)
    forward = sum(op.flops for op in ops if op.phase == "forward" and op.kind != "elementwise")
    assert forward == pytest.approx(4 * count_flops(model, (1, 28, 28)), rel=1e-9)


def test_backward_costs_two_forwards_except_the_input_gradient_of_the_first_layer():
    model = mobile()
    ops = trace_step(model, (1, 28, 28), batch_size=4)
    heavy = [op for op in ops if op.kind != "elementwise"]
    forward = sum(op.flops for op in heavy if op.phase == "forward")
    backward = sum(op.flops for op in heavy if op.phase == "backward")
    stem = sum(op.flops for op in heavy if op.phase == "forward" and op.layer == "stem.0")
    assert backward == pytest.approx(2 * forward - stem, rel=1e-9)


def test_operators_are_classified_by_kind_and_phase():
    ops = trace_step(mobile(), (1, 28, 28), batch_size=2)
    kinds = {(op.layer, op.kind) for op in ops}
    assert ("stages.0.0.depthwise.0", "depthwise") in kinds
    assert ("stages.0.0.expand.0", "conv") in kinds
    assert ("classifier", "matmul") in kinds
    assert ("stem.1", "elementwise") in kinds  # BatchNorm
    assert {op.phase for op in ops} == {"forward", "backward", "optimizer"}
    assert all(op.elements > 0 for op in ops if op.kind != "elementwise")


def test_tracing_leaves_the_model_alone():
    model = mobile()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace_step(model, (1, 28, 28), batch_size=2)
    assert all(p.device.type == "cpu" and p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _whole_step_trace(model: nn.Module, batch_size: int) -> list[Op]:
    """The step traced as one piece: forward, backward and the optimizer over all parameters
    (the first update, which creates the momentum buffers, left out)."""
    import copy

    import torch.nn.functional as F
    from torch.utils.module_tracker import ModuleTracker

    from automl.nn.costmodel import _Recorder

    meta = copy.deepcopy(model).to(device="meta").to(memory_format=torch.channels_last).train()
    inputs = torch.empty((batch_size, 1, 28, 28), device="meta").contiguous(memory_format=torch.channels_last)
    targets = torch.zeros(batch_size, dtype=torch.long, device="meta")
    optimizer = torch.optim.SGD(meta.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    tracker = ModuleTracker()
    recorder = _Recorder(tracker)
    with tracker, recorder:
        F.cross_entropy(meta(inputs), targets, label_smoothing=0.1).backward()
        recorder.phase = "setup"
        optimizer.step()
        recorder.ops = [op for op in recorder.ops if op.phase != "setup"]
        recorder.phase = "optimizer"
        optimizer.step()
    return recorder.ops


@pytest.mark.parametrize("space_name", ["mobile", "resnet", "dvolver"])
def test_updates_traced_once_per_parameter_shape_equal_the_whole_optimizer_step(space_name):
    space = search_spaces.get(space_name)
    genes = space.genes()
    model = space.build(space.make({g: choices[len(choices) // 2] for g, choices in genes.items()}), (1, 28, 28), 10)
    assert trace_step(model, (1, 28, 28), batch_size=8) == _whole_step_trace(model, 8)


@pytest.mark.parametrize("space_name", ["mobile", "resnet", "dvolver"])
def test_operators_written_down_on_meta_without_running_leave_the_trace_as_it_was(space_name, monkeypatch):
    import automl.nn.costmodel as costmodel

    space = search_spaces.get(space_name)
    genes = space.genes()
    model = space.build(space.make({g: choices[-1] for g, choices in genes.items()}), (1, 28, 28), 10)
    fast = trace_step(model, (1, 28, 28), batch_size=4)
    monkeypatch.setattr(costmodel, "shape_only_result", lambda func, args: None)
    costmodel._update_ops.cache_clear()
    assert fast == trace_step(model, (1, 28, 28), batch_size=4)


def _calibration(bandwidth: float = 1e9) -> Calibration:
    throughput = {kind: {fmt: 1e9 * 4 / size for fmt, size in FORMATS.items()}
                  for kind in ("conv", "depthwise", "matmul", "elementwise")}
    return Calibration("cpu", 1, throughput, bandwidth, op_latency=1e-6, step_overhead=1e-3)


def test_an_operator_costs_the_larger_of_its_compute_and_memory_time_plus_latency():
    calibration = _calibration()
    compute_bound = Op("a", "conv", "forward", flops=2e9, elements=1e6)  # 2 s compute, 4 ms memory in fp32
    seconds, memory_bound = op_seconds(compute_bound, "fp32", calibration)
    assert seconds == pytest.approx(2.0 + 1e-6) and not memory_bound
    memory_op = Op("b", "elementwise", "forward", flops=1e6, elements=1e9)  # 4 s of memory in fp32
    seconds, memory_bound = op_seconds(memory_op, "fp32", calibration)
    assert seconds == pytest.approx(4.0 + 1e-6) and memory_bound
    assert op_seconds(memory_op, "bf16", calibration)[0] == pytest.approx(2.0 + 1e-6)  # half the bytes


def test_the_network_level_scales_every_operator_of_its_format_not_the_step_overhead():
    calibration = _calibration()
    calibration.network_scale = {"fp32": 0.8, "bf16": 1.5}
    op = Op("a", "conv", "forward", flops=2e9, elements=1e6)
    assert op_seconds(op, "fp32", calibration)[0] == pytest.approx(0.8 * (2.0 + 1e-6))
    assert op_seconds(op, "bf16", calibration)[0] == pytest.approx(1.5 * (1.0 + 1e-6))
    assert op_seconds(op, "int8", calibration)[0] == pytest.approx(0.5 + 1e-6)  # no level: 1
    cost = step_cost([op], calibration, "fp32", batch_size=8)
    assert cost.step_seconds == pytest.approx(0.8 * (2.0 + 1e-6) + 1e-3)


def test_step_and_training_seconds_add_up():
    calibration = _calibration()
    ops = [Op("a", "conv", "forward", 1e9, 10), Op("a", "conv", "backward", 2e9, 10),
           Op("b", "elementwise", "optimizer", 10, 1e9)]
    cost = step_cost(ops, calibration, "fp32", batch_size=8)
    assert cost.step_seconds == pytest.approx(1.0 + 2.0 + 4.0 + 3e-6 + 1e-3)
    assert cost.forward_seconds == pytest.approx(1.0 + 1e-6)
    assert {layer.layer: layer.forward_flops for layer in cost.layers} == {"a": 1e9, "b": 0.0}
    assert training_seconds(cost, steps=10, bn_batches=2) == pytest.approx(
        10 * cost.step_seconds + 2 * (cost.forward_seconds + 1e-3))


def test_lower_precision_formats_are_predicted_faster(cost_calibration):
    model = mobile("stem32-ir_r2_k5_e6_c24-ir_r2_k5_e6_c40-ir_r2_k5_e6_c64-ir_r2_k5_e6_c96-ir_r2_k5_e6_c128-head512")
    seconds = {fmt: predict_training(model, (1, 28, 28), 64, 54, cost_calibration, fmt, 1024) for fmt in FORMATS}
    assert seconds["int8"] < seconds["bf16"] < seconds["fp32"]
    assert seconds["bf16"] == pytest.approx(seconds["fx16"])  # both 16-bit: same bytes, same lanes here


def test_unknown_formats_are_user_errors():
    assert check_formats(["fp32", "fx16"]) == ["fp32", "fx16"]
    with pytest.raises(AutomlError, match="fp64"):
        check_formats(["fp64"])


def test_convolutions_carry_kernel_stride_and_width():
    model = nn.Sequential(nn.Conv2d(8, 8, 5, 2, 2, groups=8), nn.Conv2d(8, 32, 1), nn.Conv2d(32, 32, 3, 2, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    ops = trace_step(model, (8, 12, 12), batch_size=2)
    depthwise = [op for op in ops if op.kind == "depthwise"]
    assert {op.phase for op in depthwise} == {"forward", "backward"}
    assert all(op.variant == "k5s2" and op.width == 8 for op in depthwise)
    pointwise = [op for op in ops if op.kind == "conv" and op.variant == "k1s1"]
    assert pointwise and all(op.width == pytest.approx(16.0) for op in pointwise)  # sqrt(8 x 32)
    dense = [op for op in ops if op.kind == "conv" and op.variant == "k3s2"]
    assert {op.phase for op in dense} == {"forward", "backward"} and dense[0].width == 32
    assert dense[0].rate_keys() == ("conv:k3s2:forward", "conv:forward", "conv")
    assert depthwise[0].rate_keys() == ("depthwise:k5s2:forward", "depthwise:forward", "depthwise")


def test_the_most_specific_calibrated_entry_prices_an_operator_interpolated_by_width():
    calibration = _calibration()
    calibration.throughput["depthwise:k5s2:backward"] = {"fp32": 1e8}
    calibration.throughput["conv:forward"] = {"fp32": 3e9}
    calibration.by_width["conv:forward"] = {"fp32": [[10.0, 1e9], [100.0, 3e9]]}
    strided = Op("a", "depthwise", "backward", flops=1e8, elements=1, variant="k5s2", width=24)
    other = Op("a", "depthwise", "backward", flops=1e8, elements=1, variant="k3s1", width=24)
    assert op_seconds(strided, "fp32", calibration)[0] == pytest.approx(1.0 + 1e-6)  # its own entry
    assert op_seconds(other, "fp32", calibration)[0] == pytest.approx(0.1 + 1e-6)  # none: the kind's
    narrow, wide, middle = (Op("c", "conv", "forward", flops=1e9, elements=1, width=w) for w in (5.0, 1000.0, 10 ** 1.5))
    assert op_seconds(narrow, "fp32", calibration)[0] == pytest.approx(1.0 + 1e-6)  # held flat beyond the ends
    assert op_seconds(wide, "fp32", calibration)[0] == pytest.approx(1 / 3 + 1e-6)
    assert op_seconds(middle, "fp32", calibration)[0] == pytest.approx(1 / 2 + 1e-6)  # halfway in log width


@pytest.mark.parametrize("space_name", search_spaces.names())
def test_every_registered_space_is_traced_whole_and_priced(cost_calibration, space_name):
    import numpy as np

    space = search_spaces.get(space_name)
    model = space.build(space.decode(np.zeros(len(space.genes()), dtype=int)), (1, 28, 28), 10)
    ops = trace_step(model, (1, 28, 28), batch_size=2)
    heavy_forward = sum(op.flops for op in ops if op.phase == "forward" and op.kind != "elementwise")
    assert heavy_forward == pytest.approx(2 * count_flops(model, (1, 28, 28)), rel=1e-9)
    assert {op.phase for op in ops} >= {"forward", "backward", "optimizer"}
    assert step_cost(ops, cost_calibration, "fp32", batch_size=2).step_seconds > 0
