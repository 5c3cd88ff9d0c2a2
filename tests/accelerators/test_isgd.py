import pytest

from accelerators.isgd import ControlChart, InconsistentSGD
from automl.core.errors import AutomlError


def test_control_chart_flags_only_outliers():
    chart = ControlChart(20, 3.0)
    losses = [2.0 + 0.05 * (-1) ** i * (1 + i % 3) / 3 for i in range(200)]  # bounded noise within 2 sigma
    outliers = {60, 120, 170}
    for i in outliers:
        losses[i] = 5.0
    flagged = {i for i, loss in enumerate(losses) if chart.observe(loss) is not None}
    assert flagged == outliers


def test_nothing_is_flagged_before_the_window_fills():
    chart = ControlChart(5, 3.0)
    assert [chart.observe(x) for x in (1.0, 1.1, 9.0, 0.9, 1.0)] == [None] * 5  # 9.0 came too early
    chart = ControlChart(5, 3.0)
    assert [chart.observe(x) for x in (1.0, 1.1, 0.9, 1.0, 1.1)] == [None] * 5
    assert chart.observe(9.0) is not None


def test_options_are_checked():
    with pytest.raises(AutomlError):
        InconsistentSGD(max_fraction=0.0)
    with pytest.raises(AutomlError):
        InconsistentSGD.options["window"].parse("isgd", "window", "1")


def _train(small_mnist, **options):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    accelerator = InconsistentSGD(**options)
    return train(model, small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[accelerator]), accelerator


def test_caps_are_respected_and_the_model_learns(small_mnist):
    # a low limit (0.5 sigma) and a short window flag many batches; the caps bound the work
    result, isgd = _train(small_mnist, window=4, sigmas=0.5, max_extra=2, max_fraction=0.2)
    report = result.accelerators["isgd"]
    assert report["batches_flagged"] > 0 and report["regular_steps"] == 20
    assert report["extra_steps"] <= min(2 * report["batches_flagged"], int(0.2 * 20))
    assert report["extra_forwards"] >= report["extra_steps"]
    assert report["extra_flops"] > 0 and 0 < report["extra_fraction"] < 1
    assert report["training_flops_saved"] == 0.0
    assert result.accuracy > 0.4  # chance is 0.1
