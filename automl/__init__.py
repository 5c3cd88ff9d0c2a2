"""automl: find the CNN architectures with the best accuracy for their cost, fast.

Python API::

    import automl
    result = automl.search({"a": [1, 2, 3], "b": ["x", "y"]}, evaluate,
                           objectives=[("error", "min"), ("cost", "min")], budget=50)
    result.front      # the Pareto-optimal candidates

    model = automl.load_model("exported/trial-12")   # a model written by `automl export`
"""

__version__ = "0.1.0"

from automl.engine import Evaluation, SearchResult, search  # noqa: E402
from automl.errors import AutomlError  # noqa: E402
from automl.flops import count_flops, count_params  # noqa: E402
from automl.genome import Genome  # noqa: E402

__all__ = ["AutomlError", "Evaluation", "Genome", "SearchResult", "__version__", "count_flops",
           "count_params", "load_model", "search"]


def load_model(path: "str | os.PathLike[str]") -> "torch.nn.Module":  # noqa: F821
    """Rebuild a model exported by ``automl export`` from its folder (card.json and
    model.safetensors; no pickle), in eval mode. See :mod:`automl.export`."""
    from automl.export import load_model as load

    return load(path)
