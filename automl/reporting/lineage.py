"""Ancestry of trials: which trained parent each child inherited from, and its NSGA-II parents.

The graph (networkx) has one node per trial and an edge parent -> child for each warm start
(``kind="warm"``, with the Net2Net moves applied), each crossover parent
(``kind="crossover"``) and each trial ``automl train`` trained longer (``kind="trained"``).
The terminal shows it as a tree from a trial up to its ancestors.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from optuna.trial import TrialState
from rich.tree import Tree

from automl.reporting.figures import fit_title
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
        source = trial.user_attrs.get("trained_from")  # `automl train`: the same architecture, trained longer
        if source is not None and source in graph:
            graph.add_edge(source, trial.number, kind="trained")
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
            how = {"warm": f"[green]warm start[/] ({', '.join(edge.get('moves', [])) or 'same architecture'})",
                   "trained": "[magenta]trained longer (automl train) from[/]"}.get(
                       edge["kind"], "[cyan]crossover parent[/]")
            if parent in seen:
                node.add(f"{how}: trial {parent} (shown above)")
                continue
            seen.add(parent)
            grow(node.add(f"{how}: {_label(graph, parent)}"), parent)

    grow(root, trial)
    return root


def plot_lineage(graph: nx.DiGraph, path: str | Path, title: str) -> Path:
    """PNG: trials by generation, warm-start edges solid, crossover edges dashed, front in red."""
    import matplotlib.pyplot as plt

    figure = lineage_figure(graph, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def _node_text(graph: nx.DiGraph, trial: int) -> str:
    node = graph.nodes[trial]
    if node["accuracy"] is None:
        return f"#{trial}\n{node['state'].lower()}"
    mflops = f"\n{node['mflops']:.1f} MF" if node.get("mflops") is not None else ""
    return f"#{trial}\n{node['accuracy']:.3f}{mflops}"


def lineage_layout(graph: nx.DiGraph) -> dict[int, tuple[float, float]]:
    """One column per generation (x = generation), trials stacked by number within it."""
    columns: dict[int, list[int]] = {}
    for trial, data in sorted(graph.nodes(data=True)):
        columns.setdefault(int(data["generation"] or 0), []).append(trial)
    return {trial: (float(generation), -float(row))
            for generation, trials in columns.items() for row, trial in enumerate(trials)}


def lineage_figure(graph: nx.DiGraph, title: str):
    """The figure :func:`plot_lineage` saves: each node shows trial, accuracy and MFLOPs;
    columns are labelled by generation; the title is wrapped to stay inside the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = lineage_layout(graph)
    generations = sorted({int(x) for x, _ in position.values()})
    rows = max((-y for _, y in position.values()), default=0) + 1
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(generations) + 1), max(3.5, 0.9 * rows + 1.5)),
                                dpi=120)
    if graph.number_of_nodes():
        colours = ["tab:red" if graph.nodes[n]["front"] else "lightgray" for n in graph.nodes]
        for kind, style in (("warm", "solid"), ("crossover", "dashed"), ("trained", "dotted")):
            edges = [(a, b) for a, b, d in graph.edges(data=True) if d["kind"] == kind]
            nx.draw_networkx_edges(graph, position, edgelist=edges, style=style, arrows=True, node_size=1400,
                                   alpha=0.7 if kind == "warm" else 0.35, ax=axes)
        nx.draw_networkx_nodes(graph, position, node_color=colours, node_size=1400, alpha=0.9, ax=axes)
        nx.draw_networkx_labels(graph, position, labels={n: _node_text(graph, n) for n in graph.nodes},
                                font_size=6, ax=axes)
    axes.set_xticks(generations, [f"generation {g}" for g in generations], fontsize=8)
    axes.set_yticks([])
    axes.tick_params(axis="x", length=0, labelbottom=True)
    for side in ("top", "right", "left", "bottom"):
        axes.spines[side].set_visible(False)
    axes.margins(x=0.25 if len(generations) < 3 else 0.12, y=0.2)
    fit_title(figure, f"{title}: lineage (solid: warm start, dashed: crossover, dotted: trained longer, "
                      "red: Pareto front; "
                      "node: trial, validation accuracy, MFLOPs)")
    figure.tight_layout()
    return figure
