"""An example of a search space you write yourself: plain CNNs (conv-BN-ReLU stages).

Search it with ``automl search --space studies/examples/plain_cnn.py:PlainCNN`` (or, from an
installed package, ``--space mypackage.spaces:PlainCNN``); look at it with
``automl spaces show studies/examples/plain_cnn.py:PlainCNN --genome d2-w16-k3``.

A space says which genes it has and what their choices are, and builds a model for a genome;
sampling, validation, pymoo's integer encoding and the ``gene=value`` string form come from
:class:`search_spaces.SearchSpace`. Here we also give genomes a short string form. Without an
``inherit`` method, children are trained from scratch (no Net2Net warm starts).
"""

from __future__ import annotations

from torch import nn

from automl import Genome
from search_spaces import SearchSpace


class PlainCNN(SearchSpace):
    name = "plain-cnn"
    description = "conv-BN-ReLU stages, each halving the resolution (depth, width, kernel)"

    def genes(self) -> dict[str, list]:
        # Ordinal genes (the default kind) list their choices from small to large: constraint
        # repair steps them down. Choices must be str, int, float, bool or None (Optuna params).
        return {"depth": [1, 2, 3, 4], "width": [8, 16, 32, 64], "kernel": [3, 5]}

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        self.validate(genome)
        channels, layers = in_shape[0], []
        for stage in range(genome["depth"]):
            width = genome["width"] * 2 ** stage
            layers += [nn.Conv2d(channels, width, genome["kernel"], 2 if stage else 1, genome["kernel"] // 2,
                                 bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def format(self, genome: Genome) -> str:
        return f"d{genome['depth']}-w{genome['width']}-k{genome['kernel']}"

    def parse(self, text: str) -> Genome:
        if "=" in text:  # the generic gene=value form
            return super().parse(text)
        parts = text.split("-")
        if len(parts) != 3 or [p[:1] for p in parts] != ["d", "w", "k"] or not all(p[1:].isdigit() for p in parts):
            return super().parse(text)  # raises the one-line error a user sees
        depth, width, kernel = (int(p[1:]) for p in parts)
        return self.make({"depth": depth, "width": width, "kernel": kernel})
