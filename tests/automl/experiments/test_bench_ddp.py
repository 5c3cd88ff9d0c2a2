"""`automl bench scale --parts ddp`: DDP against one process, the same steps on the same global batches."""

from __future__ import annotations

from automl.experiments.ddp import ddp_equivalence


def test_two_processes_agree_with_one_and_both_rates_are_measured(small_mnist):
    result = ddp_equivalence(processes=2, steps=3, global_batch=32, data=small_mnist, images=256, rounds=1)
    assert result["steps"] == result["steps_ddp"] == 3 and result["per_process_batch"] == 16
    assert not result["has_batchnorm"] and result["max_abs_weight_change"] > 1e-3
    assert result["equivalent"] and result["max_abs_weight_difference"] <= result["tolerance"] == 1e-4
    assert result["samples_per_s_one_process"] > 0 and result["samples_per_s_ddp"] > 0
