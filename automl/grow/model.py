"""A Tree-CNN as one ``nn.Module``: the root routes each input to one output, a branch's
node CNN picks the class under it (the paper's hard routing).

The output is, per class, the log of its path probability - the root's probability of the
class's output times the branch's probability of the class (1 for a leaf) - for the classes
under the output the input was routed to, and ``FLOOR`` (probability 0) for every other class:
``argmax`` is the tree's prediction and ``exp(max)`` its confidence. Run eagerly, a branch sees
only the inputs routed to it, so an input costs the root plus its one branch; traced (ONNX,
torch.export) every branch runs on the whole batch and routing becomes a mask, which gives the
same outputs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl.grow.structure import ROOT, Tree

FLOOR = -1e4  # log-probability of the classes an input was not routed to


class TreeModel(nn.Module):
    """Root CNN plus one node CNN per branch; outputs follow ``tree.classes`` (the outputs'
    classes in output order, so each output's scores are one block of columns)."""

    def __init__(self, tree: Tree, root: nn.Module, branches: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.root = root
        self.branches = nn.ModuleDict(dict(branches))
        self.outputs = [(len(o.classes), o.node) for o in tree.outputs]

    def forward(self, x: Tensor) -> Tensor:
        root = F.log_softmax(self.root(x), dim=1)
        route = root.argmax(dim=1)
        traced = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        columns = []
        for j, (size, node) in enumerate(self.outputs):
            chosen = (route == j).unsqueeze(1)
            if node is None:
                scores = root[:, j:j + 1]
            elif traced:  # every branch on the whole batch; the mask below does the routing
                scores = root[:, j:j + 1] + F.log_softmax(self.branches[node](x), dim=1)
            else:  # a branch sees only the inputs routed to it
                scores = torch.full((x.shape[0], size), FLOOR, dtype=root.dtype, device=root.device)
                index = chosen.squeeze(1).nonzero().squeeze(1)
                if index.numel():
                    scores[index] = root[index, j:j + 1] + F.log_softmax(self.branches[node](x[index]), dim=1)
            columns.append(torch.where(chosen, scores, torch.full_like(scores, FLOOR)))
        return torch.cat(columns, dim=1)


def build_tree_model(tree: Tree, states: Mapping[str, Mapping[str, Tensor]] | None = None) -> TreeModel:
    """The tree's model from its structure, with each node's weights when given (by node name)."""
    import search_spaces

    space = search_spaces.get(tree.space)
    shape = tuple(tree.input_shape)

    def node(name: str, num_classes: int) -> nn.Module:
        model = space.build(space.make(tree.nodes[name].genes), shape, num_classes)
        if states is not None:
            model.load_state_dict(states[name])
        return model

    root = node(ROOT, len(tree.outputs))
    branches = {name: node(name, len(tree.outputs[j].classes)) for j, name in tree.branches()}
    return TreeModel(tree, root, branches).eval()


def path_flops(tree: Tree) -> dict[str, int]:
    """Forward FLOPs of one input along each path: the root plus the output's branch."""
    root = tree.nodes[ROOT].flops
    return {tree.class_names[o.classes[0]] if o.node is None else o.node:
            root + (tree.nodes[o.node].flops if o.node else 0) for o in tree.outputs}
