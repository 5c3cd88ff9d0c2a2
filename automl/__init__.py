"""automl: find the CNN architectures with the best accuracy for their cost, fast.

Python API::

    import automl
    result = automl.search({"a": [1, 2, 3], "b": ["x", "y"]}, evaluate,
                           objectives=[("error", "min"), ("cost", "min")], budget=50)
    result.front      # the Pareto-optimal candidates
"""

__version__ = "0.1.0"

from automl.engine import Evaluation, SearchResult, search  # noqa: E402
from automl.errors import AutomlError  # noqa: E402
from automl.flops import count_flops, count_params  # noqa: E402
from automl.genome import Genome  # noqa: E402

__all__ = ["AutomlError", "Evaluation", "Genome", "SearchResult", "__version__", "count_flops",
           "count_params", "search"]
