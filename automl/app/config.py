"""Search settings: built-in defaults, overridden by a TOML study config, overridden by flags.

A study config (``studies/*.toml``) uses the long option names with underscores, at the top
level or under a ``[search]`` table::

    space = "mobile"
    dataset = "mnist5k"
    population = 8
    generations = 4
    epochs = 1
"""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from automl.core.errors import AutomlError


@dataclass
class SearchSettings:
    """Everything ``automl search`` needs; the defaults finish on a laptop in minutes."""

    space: str = "mobile"
    dataset: str = "mnist5k"
    data_root: str = "data"
    download: bool = False
    study: str | None = None
    storage: str | None = None
    population: int = 6  # small and four generations deep: children near enough to inherit weights
    generations: int | None = None
    budget: int | None = None
    epochs: float = 1.0
    warm_epochs: float | None = None
    warm_start: bool = True
    batch_size: int = 64
    lr: float = 0.1
    seed: int = 0
    strategy: str = "nsga2"
    preselect: int = 8
    resume: bool = False
    max_flops: float | None = None
    max_params: float | None = None
    accelerate: str = ""
    device: str = "auto"
    quiet: bool = False
    json: bool = False

    # Generation 1's children cross random parents and mostly differ from both in more than a
    # quarter of the genes, too far to warm-start; from generation 2 on, selection has narrowed
    # the population and many children can inherit. Two generations of 8 let 0-2 of 16
    # evaluations inherit (engine with a stand-in evaluator, seeds 0-2); four of 6 let 6-10 of
    # 24, at about the training cost of the 16 from scratch (tests/test_quickstart.py).
    DEFAULT_GENERATIONS = 4

    WARM_FRACTION = 0.3

    def child_epochs(self) -> float | None:
        """Epochs of a warm-started child (None: warm starts off): --warm-epochs, else 0.3 x --epochs."""
        if not self.warm_start:
            return None
        return self.warm_epochs if self.warm_epochs is not None else round(self.WARM_FRACTION * self.epochs, 4)

    def total_budget(self) -> int:
        """Evaluations to run: --budget, else population x generations."""
        if self.budget is not None:
            return self.budget
        return self.population * (self.generations or self.DEFAULT_GENERATIONS)

    def study_name(self) -> str:
        if self.study:
            return self.study
        return f"{self.space}-{_slug(self.dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"

    def check(self) -> SearchSettings:
        for name in ("population", "batch_size", "preselect"):
            if getattr(self, name) < 1:
                raise AutomlError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.population < 2:
            raise AutomlError(f"--population must be at least 2, got {self.population}")
        for name in ("generations", "budget"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AutomlError(f"--{name} must be at least 1, got {value}")
        for name in ("max_flops", "max_params"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise AutomlError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not self.lr > 0:
            raise AutomlError(f"--lr must be positive, got {self.lr}")
        if not self.epochs > 0:
            raise AutomlError(f"--epochs must be positive, got {self.epochs}")
        if self.warm_epochs is not None and not 0 < self.warm_epochs <= self.epochs:
            raise AutomlError(f"--warm-epochs must be in (0, --epochs={self.epochs}], got {self.warm_epochs}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = {f.name for f in fields(SearchSettings)}


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings a TOML study config sets (unknown keys are an error)."""
    path = Path(path)
    if not path.is_file():
        raise AutomlError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise AutomlError(f"config file {str(path)!r} is not valid TOML: {error}") from None
    data = {**{k: v for k, v in data.items() if k != "search"}, **data.get("search", {})}
    values = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - FIELDS)
    if unknown:
        raise AutomlError(f"config file {str(path)!r}: unknown setting {unknown[0]!r}")
    for key in ("max_flops", "max_params"):
        if isinstance(values.get(key), str):
            values[key] = parse_amount(values[key], key)
    return values


def merge(config: dict[str, Any], flags: dict[str, Any]) -> SearchSettings:
    """Defaults <- config file <- flags given on the command line (None = not given)."""
    given = {k: v for k, v in flags.items() if v is not None}
    merged = dict(config)
    if "budget" in given or "generations" in given:  # the command line decides the budget alone
        merged.pop("budget", None)
        merged.pop("generations", None)
    merged.update(given)
    if merged.get("budget") is not None and merged.get("generations") is not None:
        raise AutomlError("give --generations or --budget, not both")
    try:
        return SearchSettings(**merged).check()
    except TypeError as error:
        raise AutomlError(f"bad setting: {error}") from None


_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmMgG]?)\s*$")


def parse_amount(text: str, what: str = "value") -> float:
    """'300M', '1.5G', '20k' or '2e6' -> a number."""
    match = _AMOUNT.match(str(text))
    if not match:
        raise AutomlError(f"{what} {text!r} is not a number such as 20M, 1.5G or 3e6")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text.split(":", 1)[-1]).name if ":" in text else text)
