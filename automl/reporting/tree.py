"""A grown Tree-CNN as a model like any other: exported, loaded, shown as a tree.

``automl export`` of a grow study writes ``OUT/tree/``: ``card.json`` (one card for the whole
tree: its structure, the test accuracy measured now, FLOPs per inference path and on average
over the test split) and one safetensors file per node (``node-root.safetensors``,
``node-n1.safetensors``...), plus ``model.onnx``, the whole tree as one graph (every branch
computed, routing as a mask; checked against torch with onnxruntime). ``torch.export`` of a
tree is refused (the card says why): eager routing is data-dependent. ``automl.load_model`` rebuilds
the tree from the card and the node files (no pickle, checksums checked).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from optuna.trial import TrialState
from rich.tree import Tree as RichTree

from automl.grow.model import TreeModel, build_tree_model, path_flops
from automl.grow.structure import ROOT, TREE_ATTR, Tree, TreeError
from automl.reporting.cards import CARD, CARD_FORMAT, CARD_VERSION, ONNX, ExportError, sha256_of
from automl.store.study import StudyStore

TREE_FOLDER = "tree"
PT2_REFUSAL = ("not written: torch.export cannot express a Tree-CNN's data-dependent routing; "
               "use model.onnx or automl.load_model")


def is_tree_study(store: StudyStore) -> bool:
    return TREE_ATTR in store.study.user_attrs


def study_tree(store: StudyStore) -> Tree:
    return Tree.from_dict(store.study.user_attrs.get(TREE_ATTR), f"study {store.name!r}")


def study_tree_model(store: StudyStore, tree: Tree) -> TreeModel:
    """The tree with each node's weights from the trial its structure names."""
    by_number = {t.number: t for t in store.trials((TrialState.COMPLETE,))}
    states = {}
    for name, node in tree.nodes.items():
        if node.trial not in by_number:
            raise TreeError(f"study {store.name!r}: node {name!r} names trial {node.trial}, which is not stored")
        states[name] = store.download_weights(by_number[node.trial])
    return build_tree_model(tree, states)


# -- export -----------------------------------------------------------------------------------

def export_tree(store: StudyStore, data, out: str | Path, formats: tuple[str, ...], device: torch.device
                ) -> dict[str, Any]:
    """Write the study's tree to ``out/tree``; returns its card (with the ``folder``)."""
    from safetensors.torch import save_file

    from automl.grow.scoring import score

    tree = study_tree(store)
    model = study_tree_model(store, tree).to(device)
    folder = Path(out) / TREE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD).unlink(missing_ok=True)  # a card means a complete export
    files: dict[str, Any] = {"nodes": {}}
    for name, node in tree.nodes.items():
        module = model.root if name == ROOT else model.branches[name]
        path = folder / f"node-{name}.safetensors"
        save_file({k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}, str(path),
                  metadata={"format": "pt", "node": name, "trial": str(node.trial)})
        files["nodes"][name] = {"file": path.name, "sha256": sha256_of(path), "trial": node.trial}
    model = model.to("cpu").eval()
    if "onnx" in formats:
        from automl.reporting.export import _export_onnx

        c, h, w = tree.input_shape
        files["onnx"] = _export_onnx(model, torch.zeros((2, c, h, w)), folder / ONNX)
    if "pt2" in formats:
        files["pt2"] = {"refused": PT2_REFUSAL}
    accuracy = score(model, data, tree.classes, [], tree.classes, torch.device("cpu"))["all"]
    card = _card(store, tree, data, files, accuracy, _mean_flops(model, tree, data))
    (folder / CARD).write_text(json.dumps(card, indent=2, default=str))
    return {**card, "folder": str(folder)}


@torch.no_grad()
def _mean_flops(model: TreeModel, tree: Tree, data) -> float:
    """FLOPs per inference over the test samples of the tree's classes, each routed by the root."""
    x = data.test.x[torch.isin(data.test.y, torch.tensor(tree.classes, device=data.test.y.device))].to("cpu")
    route = torch.cat([model.root(x[i:i + 500]).argmax(dim=1) for i in range(0, len(x), 500)])
    cost = [tree.nodes[ROOT].flops + (tree.nodes[o.node].flops if o.node else 0) for o in tree.outputs]
    return float(torch.tensor(cost, dtype=torch.float64)[route].mean())


def _card(store: StudyStore, tree: Tree, data, files: dict[str, Any], accuracy: float, mean_flops: float
          ) -> dict[str, Any]:
    import search_spaces
    from automl import __version__

    space = search_spaces.get(tree.space)
    root = space.make(tree.nodes[ROOT].genes)
    paths = path_flops(tree)
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION, "kind": "tree", "automl": __version__,
        "study": store.name, "trial": tree.nodes[ROOT].trial, "space": tree.space, "genome": space.format(root),
        "genes": dict(root), "dataset": tree.dataset, "input_shape": tree.input_shape,
        "num_classes": len(tree.classes), "class_names": [tree.class_names[c] for c in tree.classes],
        "normalisation": {"mean": list(data.mean), "std": list(data.std), "scale": "pixels / 255"},
        "test_accuracy": accuracy, "test_samples": int(torch.isin(data.test.y, torch.tensor(
            tree.classes, device=data.test.y.device)).sum()),
        "validation_accuracy": None, "weights": "grown",
        "flops": int(round(mean_flops)), "mflops": mean_flops / 1e6,
        "mflops_per_path": {k: v / 1e6 for k, v in paths.items()}, "mflops_mean": mean_flops / 1e6,
        "mflops_all_branches": (tree.nodes[ROOT].flops + sum(tree.nodes[n].flops for _, n in tree.branches())) / 1e6,
        "params": None, "tree": tree.as_dict(), "files": files,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# -- loading ----------------------------------------------------------------------------------

def load_tree(folder: str | Path, card: dict[str, Any]) -> TreeModel:
    """The tree of an exported card, with each node's weights checked against its sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    tree = Tree.from_dict(card.get("tree"), f"model card {str(folder / CARD)!r}")
    states = {}
    for name in tree.nodes:
        entry = (card.get("files") or {}).get("nodes", {}).get(name) or {}
        path = folder / str(entry.get("file", f"node-{name}.safetensors"))
        if not path.is_file():
            raise ExportError(f"weights file {str(path)!r} of tree node {name!r} is missing")
        if entry.get("sha256") and sha256_of(path) != entry["sha256"]:
            raise ExportError(f"weights file {str(path)!r} does not match its model card (sha256 differs): "
                              "corrupted or replaced")
        try:
            states[name] = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ExportError(f"weights file {str(path)!r} cannot be read: {str(error).splitlines()[0]}") from None
    try:
        return build_tree_model(tree, states)
    except RuntimeError as error:
        raise ExportError(f"tree node weights in {str(folder)!r} do not fit the tree: "
                          f"{' '.join(str(error).split())[:160]}") from None


def root_from_export(folder: str | Path):
    """The root an exported model offers to ``automl grow --from``: architecture, weights, classes."""
    import search_spaces

    from automl.grow.grower import RootSource
    from automl.reporting.cards import load_card
    from automl.reporting.loader import load_model

    card = load_card(folder)
    if card.get("kind") == "tree":
        raise TreeError(f"{str(folder)!r} holds a grown tree; grow from a single exported model")
    model = load_model(folder)
    space = search_spaces.get(card["space"])
    genes = card.get("genes")
    genome = space.make(genes) if isinstance(genes, dict) else space.parse(card["genome"])
    return RootSource(space, genome, model.state_dict(), list(card["class_names"]), tuple(card["input_shape"]),
                      f"exported model {str(folder)!r}")


# -- lineage ----------------------------------------------------------------------------------

def tree_view(store: StudyStore) -> RichTree:
    """The tree in the terminal: the root, then each output (a leaf, or a branch with its node)."""
    tree = study_tree(store)
    trials = {t.number: t for t in store.trials((TrialState.COMPLETE,))}

    def label(name: str) -> str:
        node = tree.nodes[name]
        trial = trials.get(node.trial)
        accuracy = f"accuracy {trial.values[0]:.4f}, " if trial is not None else ""
        history = [t.number for t in trials.values() if t.user_attrs.get("tree_node") == name]
        return (f"{name} (trial {node.trial}; {accuracy}{node.flops / 1e6:.2f} MFLOPs; trained in trials "
                f"{', '.join(map(str, history))})  [dim]{trial.user_attrs.get('genome', '') if trial else ''}[/]")

    view = RichTree(f"Tree-CNN of study {store.name!r}: {label(ROOT)}")
    for j, output in enumerate(tree.outputs):
        names = ", ".join(tree.class_names[c] for c in output.classes)
        if output.node is None:
            view.add(f"output {j}: leaf, class {names}")
        else:
            view.add(f"output {j}: branch {label(output.node)}").add(f"classes {names}")
    return view


def tree_json(store: StudyStore) -> dict[str, Any]:
    tree = study_tree(store)
    trainings = [{"trial": t.number, "node": t.user_attrs.get("tree_node"), "role": t.user_attrs.get("tree_role"),
                  "task": t.user_attrs.get("tree_task"), "accuracy": t.values[0], "mflops": t.user_attrs.get("mflops"),
                  "seconds": t.user_attrs.get("seconds"), "warm_start_from": t.user_attrs.get("warm_start_from")}
                 for t in store.trials((TrialState.COMPLETE,))]
    return {"study": store.name, "tree": tree.as_dict(), "trainings": trainings}
