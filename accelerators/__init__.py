"""Accelerators: the registry and the built-in methods.

``parse("fx16,sparsegrad:sparsity=0.9")`` validates a user's choice and returns configured
instances in run order. Third-party accelerators register through the
``automl.accelerators`` entry-point group (the entry point names an Accelerator subclass).
"""

from __future__ import annotations

from accelerators.base import KINDS, Accelerator, Option, parse_spec, split_spec
from automl.core.errors import AutomlError
from automl.core.registry import Registry



def _checked(cls: type[Accelerator]) -> type[Accelerator]:
    if not (isinstance(cls, type) and issubclass(cls, Accelerator)):
        raise AutomlError(f"{cls!r} is not an Accelerator subclass")
    if cls.kind not in KINDS:
        raise AutomlError(f"accelerator {cls.name!r} has kind {cls.kind!r}; kinds are {', '.join(KINDS)}")
    return cls




def register(cls: type[Accelerator]) -> type[Accelerator]:
    """Class decorator adding an accelerator to the registry (its kind is checked)."""
    return registry.register(_checked(cls))


def get(name: str) -> type[Accelerator]:
    return registry.get(name)


def names() -> list[str]:
    return registry.names()


def parse(text: str | None) -> list[Accelerator]:
    """Configured accelerators for a ``--accelerate`` value (empty for None or "")."""
    return parse_spec(text or "", get)


def _register_builtins() -> None:
    from accelerators.amp import MixedPrecision
    from accelerators.approx import ApproximateTensorOps
    from accelerators.earlystop import EarlyStop
    from accelerators.fx16 import FixedPoint16
    from accelerators.gradapprox import GradientApproximation
    from accelerators.isgd import InconsistentSGD
    from accelerators.prunetrain import PruneTrain
    from accelerators.rescale import KernelRescaling
    from accelerators.s3pool import StochasticSpatialSampling
    from accelerators.sparsegrad import SparseGradients
    from accelerators.ssf import StructureStrengthFilters
    from accelerators.stdloss import StandardizationLoss
    from accelerators.subset import Subset
    from accelerators.wae import WaveletEncoderInput

    for cls in (FixedPoint16, SparseGradients, ApproximateTensorOps, GradientApproximation, MixedPrecision,
                Subset, KernelRescaling, WaveletEncoderInput, StructureStrengthFilters, PruneTrain,
                StochasticSpatialSampling, StandardizationLoss, InconsistentSGD, EarlyStop):
        register(cls)


registry: Registry[type[Accelerator]] = Registry("accelerator", "automl.accelerators", _checked, _register_builtins)


__all__ = ["KINDS", "Accelerator", "Option", "get", "names", "parse", "register", "registry", "split_spec"]
