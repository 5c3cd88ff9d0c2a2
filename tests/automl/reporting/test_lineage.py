from automl.core.genome import Genome
from automl.reporting.lineage import ancestry, lineage_graph, plot_lineage, tree
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore

CHOICES = {"a": [1, 2, 3, 4]}


def _add(store, a, acc, flops, **attrs):
    genome = Genome("toy", (("a", a),))
    trial = store.start(genome, CHOICES, {"key": genome.key(), "genome": f"a{a}", **attrs})
    store.complete(trial, {"accuracy": acc, "flops": flops}, {"mflops": flops / 1e6})


def test_graph_links_warm_starts_and_crossover_parents(in_tmp):
    store = StudyStore.create("l", None, DEFAULT_OBJECTIVES, {})
    _add(store, 1, 0.5, 1e6, generation=0, parents=[])
    _add(store, 2, 0.6, 2e6, generation=0, parents=[])
    _add(store, 3, 0.9, 3e6, generation=1, parents=[0, 1], warm_start_from=1, transforms=["s1 widen 8->12"])
    graph = lineage_graph(store)
    assert graph.edges[1, 2]["kind"] == "warm" and graph.edges[0, 2]["kind"] == "crossover"
    assert set(ancestry(graph, [2]).nodes) == {0, 1, 2}
    text = str(tree(graph, 2).label)
    assert "trial 2" in text
    path = plot_lineage(graph, in_tmp / "l.png", "l")
    assert path.stat().st_size > 1000
