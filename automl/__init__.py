"""automl: find the CNN architectures with the best accuracy for their cost, fast.

Python API::

    import automl
    result = automl.search({"a": [1, 2, 3], "b": ["x", "y"]}, evaluate,
                           objectives=[("error", "min"), ("cost", "min")], budget=50)
    result.front      # the Pareto-optimal candidates

    model = automl.load_model("exported/trial-12")   # a model written by `automl export`

Names load on first use (PEP 562): ``import automl`` imports neither torch nor optuna, and a
search over a plain dict space with a plain Python evaluator never imports torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_EXPORTS = {
    "AutomlError": "automl.core.errors",
    "CannotInherit": "automl.core.errors",
    "Genome": "automl.core.genome",
    "Objective": "automl.core.pareto",
    "Evaluation": "automl.core.evaluation",
    "EvaluationContext": "automl.core.evaluation",
    "SearchResult": "automl.engine.api",
    "search": "automl.engine.api",
    "count_flops": "automl.nn.flops",
    "count_params": "automl.nn.flops",
    "load_model": "automl.reporting.loader",
    "predict": "automl.reporting.loader",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'automl' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs only
    from automl.core.errors import AutomlError, CannotInherit
    from automl.core.evaluation import Evaluation, EvaluationContext
    from automl.core.genome import Genome
    from automl.core.pareto import Objective
    from automl.nn.flops import count_flops, count_params
    from automl.reporting.loader import load_model, predict
    from automl.engine.api import SearchResult, search
