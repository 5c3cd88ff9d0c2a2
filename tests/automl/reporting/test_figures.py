"""The pictures, checked as a reader sees them: labelled ticks on the log axis over any range,
titles drawn inside the figure, generation labels and informative nodes in the lineage."""

from __future__ import annotations

import matplotlib
import pytest

from automl.core.genome import Genome
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.reporting.lineage import lineage_figure, lineage_graph
from automl.reporting.report import hypervolume_by_generation, hypervolume_figure
from automl.reporting.summary import front_figure
from automl.store.study import StudyStore

matplotlib.use("Agg")
CHOICES = {"a": list(range(64))}


def _study(name: str, mflops: list[float]) -> StudyStore:
    """Trials of rising cost and accuracy; from the second on, each warm-starts from the one before."""
    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES, {"epochs": 1.0})
    for i, cost in enumerate(mflops):
        genome = Genome("toy", (("a", i),))
        attrs = {"key": genome.key(), "genome": f"a{i}", "generation": i // 3, "parents": []}
        if i:
            attrs |= {"warm_start_from": i - 1, "transforms": ["s1 widen 8->12"]}
        trial = store.start(genome, CHOICES, attrs)
        store.complete(trial, {"accuracy": 0.5 + 0.4 * i / len(mflops), "flops": cost * 1e6},
                       {"mflops": cost, "epochs": 1.0 if i == 0 else 0.3, "seconds": 1.0})
    return store


def visible_tick_labels(axis) -> list[str]:
    low, high = sorted(axis.get_view_interval())
    return [label.get_text() for tick, label in zip(axis.get_majorticklocs(), axis.get_ticklabels())
            if label.get_text() and low <= tick <= high]


def inside(figure, artist) -> bool:
    figure.canvas.draw()
    box = artist.get_window_extent(renderer=figure.canvas.get_renderer())
    return (box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1
            and box.width > 0)


@pytest.mark.parametrize("mflops, expected", [
    ([6.6, 9.0, 14.0, 22.0, 54.0], {"10", "20", "50"}),  # less than a decade: what the issue saw
    ([1.4, 3.0, 17.0, 120.0, 900.0], {"10", "100"}),
    ([6.6, 6.9, 7.4, 8.0], set()),  # a factor of 1.2: a linear axis
])
def test_the_pareto_plot_labels_its_flops_axis_over_any_range(in_tmp, mflops, expected):
    figure = front_figure(_study("p", mflops))
    figure.canvas.draw()
    labels = visible_tick_labels(figure.axes[0].xaxis)
    assert len(labels) >= 3 and expected <= set(labels)
    assert inside(figure, figure._suptitle)


def test_the_lineage_figure_is_titled_inside_labelled_by_generation_and_node_facts(in_tmp):
    store = _study("mobile-mnist5k-20261129-103000", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    figure = lineage_figure(lineage_graph(store), store.name)
    figure.canvas.draw()
    assert inside(figure, figure._suptitle) and store.name in figure._suptitle.get_text()
    assert visible_tick_labels(figure.axes[0].xaxis) == ["generation 0", "generation 1", "generation 2"]
    nodes = [t.get_text() for t in figure.axes[0].texts]
    assert "#6\n0.843\n7.0 MF" in nodes


def test_the_hypervolume_plot_is_titled_inside_and_its_values_are_shares(in_tmp):
    store = _study("hv", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    rows = hypervolume_by_generation(store)
    assert all(0 < row["hypervolume"] <= 1 for row in rows)
    figure = hypervolume_figure(rows, "a-long-study-name-" * 4)
    assert inside(figure, figure._suptitle)
