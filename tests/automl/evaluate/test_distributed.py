"""DistributedDataParallel training: N gloo processes take the steps one process takes."""

from __future__ import annotations

import copy

import pytest
import torch

import accelerators
import search_spaces
from automl.core.errors import AutomlError
from automl.data import Split
from automl.evaluate.distributed import (DistributedTrainer, Launch, ShardedBatches, check_ddp_safe, plan,
                                         torchrun_launch)
from automl.train.loop import TrainConfig, shuffled_batches, train
from tests.conftest import SMALLEST_MOBILE

SPACE, GENOME = "mobile-norm", SMALLEST_MOBILE + "-nonorm"  # no BatchNorm: its statistics are per process


def max_abs_difference(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_the_ranks_shares_make_up_the_one_process_batches():
    split = Split(x=torch.arange(103, dtype=torch.float32).view(103, 1, 1, 1), y=torch.arange(103))
    one, ranks = torch.Generator().manual_seed(5), [torch.Generator().manual_seed(5) for _ in range(3)]
    for _ in range(2):  # two epochs: the generators must stay in step
        expected = [y for _, y in shuffled_batches(split, 24, one, torch.device("cpu"))]
        shares = [[y for _, y in ShardedBatches(r, 3)(split, 24, ranks[r], torch.device("cpu"))] for r in range(3)]
        assert all(len(s) == len(expected) == 4 for s in shares)
        for step, batch in enumerate(expected):
            together = torch.cat([shares[r][step] for r in range(3)])
            assert all(len(shares[r][step]) == 8 for r in range(3))
            assert sorted(together.tolist()) == sorted(batch.tolist())


def test_two_gloo_processes_end_with_the_one_process_weights(small_mnist):
    space = search_spaces.get(SPACE)
    torch.manual_seed(0)
    initial = space.build(space.parse(GENOME), small_mnist.input_shape, small_mnist.num_classes)
    config = TrainConfig(epochs=6 / (len(small_mnist.train) // 32), batch_size=32)
    one = train(copy.deepcopy(initial), small_mnist, config, seed=1)
    many = DistributedTrainer(Launch(2, local_world=2))(copy.deepcopy(initial), small_mnist, config, seed=1)
    assert one.samples == many.samples == 6 * 32
    assert max_abs_difference(initial.state_dict(), one.model.state_dict()) > 1e-3  # the steps moved the weights
    assert max_abs_difference(one.model.state_dict(), many.model.state_dict()) <= 1e-4
    assert not any(name.startswith("module.") for name in many.model.state_dict())  # unwrapped
    assert abs(one.accuracy - many.accuracy) <= 0.01


def test_an_accelerator_not_declared_ddp_safe_is_refused_with_its_reason():
    with pytest.raises(AutomlError, match="accelerator 'fx16' cannot train on 2 processes.*stochastic rounding"):
        check_ddp_safe(accelerators.parse("fx16"), 2)
    check_ddp_safe(accelerators.parse("subset"), 2)  # declared safe


def test_the_launch_comes_from_torchrun_or_from_nproc(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    cpu = torch.device("cpu")
    assert torchrun_launch() is None and plan(1, cpu) is None
    assert plan(3, cpu) == Launch(3, local_world=3)
    with pytest.raises(AutomlError, match="--nproc must be at least 1"):
        plan(0, cpu)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert plan(1, cpu) == Launch(2, 1, 1, 2, torchrun=True)
    with pytest.raises(AutomlError, match="differs from torchrun's WORLD_SIZE 2"):
        plan(4, cpu)
