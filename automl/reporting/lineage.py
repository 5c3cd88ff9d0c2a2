"""Ancestry of trials: which trained parent each child inherited from, and its NSGA-II parents.

The graph (networkx) has one node per trial and an edge parent -> child for each warm start
(``kind="warm"``, with the Net2Net moves applied) and each crossover parent
(``kind="crossover"``). The terminal shows it as a tree from a trial up to its ancestors.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from optuna.trial import TrialState
from rich.tree import Tree

from automl.store.study import StudyStore


def lineage_graph(store: StudyStore) -> nx.DiGraph:
    graph = nx.DiGraph()
    front = {t.number for t in store.pareto()}
    for trial in store.trials((TrialState.COMPLETE, TrialState.FAIL)):
        if trial.user_attrs.get("duplicate_of") is not None or trial.user_attrs.get("infeasible"):
            continue
        graph.add_node(trial.number, genome=trial.user_attrs.get("genome", ""), state=trial.state.name,
                       accuracy=trial.values[0] if trial.values else None,
                       mflops=trial.user_attrs.get("mflops"), generation=trial.user_attrs.get("generation", 0),
                       front=trial.number in front)
    for trial in store.trials((TrialState.COMPLETE, TrialState.FAIL)):
        if trial.number not in graph:
            continue
        warm = trial.user_attrs.get("warm_start_from")
        for parent in trial.user_attrs.get("parents", []) or []:
            if parent in graph and parent != warm:
                graph.add_edge(parent, trial.number, kind="crossover")
        if warm is not None and warm in graph:
            graph.add_edge(warm, trial.number, kind="warm", moves=trial.user_attrs.get("transforms", []))
    return graph


def ancestry(graph: nx.DiGraph, trials: list[int]) -> nx.DiGraph:
    """The subgraph of the given trials and all their ancestors."""
    keep = set(trials)
    for trial in trials:
        keep |= nx.ancestors(graph, trial)
    return graph.subgraph(keep).copy()


def _label(graph: nx.DiGraph, trial: int) -> str:
    node = graph.nodes[trial]
    if node["accuracy"] is None:
        facts = f"[red]{node['state'].lower()}[/]"
    else:
        facts = f"accuracy {node['accuracy']:.4f}, {node['mflops']:.2f} MFLOPs"
    star = " [bold yellow]*front[/]" if node["front"] else ""
    return f"trial {trial} (gen {node['generation']}): {facts}{star}  [dim]{node['genome']}[/]"


def tree(graph: nx.DiGraph, trial: int) -> Tree:
    """A rich Tree from ``trial`` up through its parents (repeated ancestors shown once)."""
    root = Tree(_label(graph, trial))
    seen = {trial}

    def grow(node: Tree, child: int) -> None:
        for parent in sorted(graph.predecessors(child)):
            edge = graph.edges[parent, child]
            how = (f"[green]warm start[/] ({', '.join(edge['moves']) or 'same architecture'})"
                   if edge["kind"] == "warm" else "[cyan]crossover parent[/]")
            if parent in seen:
                node.add(f"{how}: trial {parent} (shown above)")
                continue
            seen.add(parent)
            grow(node.add(f"{how}: {_label(graph, parent)}"), parent)

    grow(root, trial)
    return root


def plot_lineage(graph: nx.DiGraph, path: str | Path, title: str) -> Path:
    """PNG: trials by generation, warm-start edges solid, crossover edges dashed, front in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(6, 1.2 * (1 + max((d["generation"] for _, d in graph.nodes(data=True)),
                                                                 default=0))), 5), dpi=120)
    if graph.number_of_nodes():
        position = nx.multipartite_layout(graph, subset_key="generation")
        colours = ["tab:red" if graph.nodes[n]["front"] else "tab:gray" for n in graph.nodes]
        nx.draw_networkx_nodes(graph, position, node_color=colours, node_size=220, ax=axes)
        nx.draw_networkx_labels(graph, position, font_size=7, ax=axes)
        for kind, style in (("warm", "solid"), ("crossover", "dashed")):
            edges = [(a, b) for a, b, d in graph.edges(data=True) if d["kind"] == kind]
            nx.draw_networkx_edges(graph, position, edgelist=edges, style=style, arrows=True,
                                   alpha=0.7 if kind == "warm" else 0.35, ax=axes)
    axes.set_title(f"{title}: lineage (solid: warm start, dashed: crossover, red: Pareto front)", fontsize=9)
    axes.axis("off")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
