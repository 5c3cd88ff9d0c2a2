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

import math
import re
import time
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from automl.app.paths import check_writable_folder
from automl.core.errors import AutomlError

MAX_SEED = 2**32 - 1  # numpy and torch both take seeds this large


@dataclass
class SearchSettings:
    """Everything ``automl search`` needs; the defaults finish on a laptop in minutes."""

    space: str = "mobile"
    dataset: str = "mnist5k"
    data_root: str = "data"
    download: bool = False
    study: str | None = None
    storage: str | None = None
    artifacts: str | None = None  # where a server-backed study keeps its weights (SQLite: beside its file)
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
    recipe: str = "nsga2"
    preselect: int = 8
    resume: bool = False
    max_flops: float | None = None
    max_params: float | None = None
    accelerate: str = ""
    device: str = "auto"
    workers: int | None = None  # candidates trained at once on a local Ray instance
    ray: str | None = None  # address of a Ray cluster ("auto": the one this machine belongs to)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 when --device resolves to a GPU, else 0
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
        return f"{_slug(self.space)}-{_slug(self.dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"

    def check(self) -> SearchSettings:
        """Every setting's type and range, before anything is loaded, created or stored."""
        check_types(asdict(self))
        for name in ("epochs", "lr", "warm_epochs", "max_flops", "max_params"):
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise AutomlError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if not 0 <= self.seed <= MAX_SEED:
            raise AutomlError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        for name in ("batch_size", "preselect"):
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
        if self.seed < 0:
            raise AutomlError(f"--seed must be 0 or more, got {self.seed}")
        if not self.lr > 0:
            raise AutomlError(f"--lr must be positive, got {self.lr}")
        if not self.epochs > 0:
            raise AutomlError(f"--epochs must be positive, got {self.epochs}")
        self._check_workers()
        if self.artifacts:
            check_writable_folder(self.artifacts, "--artifacts")
        if self.warm_epochs is not None and not 0 < self.warm_epochs <= self.epochs:
            raise AutomlError(f"--warm-epochs must be in (0, --epochs={self.epochs}], got {self.warm_epochs}")
        return self

    def _check_workers(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise AutomlError(f"--workers must be at least 1, got {self.workers}")
        if self.ray is not None and not self.ray.strip():
            raise AutomlError("--ray needs an address: auto, or ray://HOST:PORT, or HOST:PORT")
        if not (math.isfinite(self.cpus_per_trial) and self.cpus_per_trial > 0):
            raise AutomlError(f"--cpus-per-trial must be a positive number, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and not (math.isfinite(self.gpus_per_trial) and self.gpus_per_trial >= 0):
            raise AutomlError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")

    @property
    def parallel(self) -> bool:
        """Whether candidates train in Ray workers (--workers or --ray) rather than here."""
        return self.workers is not None or self.ray is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = {f.name for f in fields(SearchSettings)}
# each setting's accepted Python types, from its annotation ("int | None" -> (int, NoneType))
_TYPES = {"str": (str,), "bool": (bool,), "int": (int,), "float": (float, int), "None": (type(None),)}
KINDS = {f.name: sum((_TYPES[t.strip()] for t in str(f.type).split("|")), ()) for f in fields(SearchSettings)}
_KIND_WORDS = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}


def check_types(values: dict[str, Any]) -> None:
    """Refuse a setting of the wrong type (``population = "eight"``, ``device = ["cpu"]``)
    with a line naming it, instead of a TypeError deep inside the search."""
    for name, value in values.items():
        kinds = KINDS.get(name)
        if kinds is None:
            continue
        if isinstance(value, bool) and bool not in kinds:
            ok = False  # true is not a number of anything
        else:
            ok = isinstance(value, kinds)
        if not ok:
            shown_kinds = [k for k in kinds if k in _KIND_WORDS and not (k is int and float in kinds)]
            wanted = " or ".join(_KIND_WORDS[k] for k in shown_kinds)
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise AutomlError(f"setting {name!r} must be {wanted}, got {shown}")


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings a TOML study config sets (unknown keys are an error)."""
    path = Path(path)
    if path.is_dir():
        raise AutomlError(f"config file {str(path)!r} is a folder, not a TOML file")
    if not path.is_file():
        raise AutomlError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise AutomlError(f"config file {str(path)!r} is not valid TOML: {error}") from None
    table = data.get("search", {})
    if not isinstance(table, dict):
        raise AutomlError(f"config file {str(path)!r}: 'search' must be a table ([search]), got {table!r}")
    data = {**{k: v for k, v in data.items() if k != "search"}, **table}
    values = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - FIELDS)
    if unknown:
        raise AutomlError(f"config file {str(path)!r}: unknown setting {unknown[0]!r}")
    for key in ("max_flops", "max_params"):
        if isinstance(values.get(key), str):
            values[key] = parse_amount(values[key], key)
    check_types(values)
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
    _apply_recipe(merged)
    try:
        return SearchSettings(**merged).check()
    except TypeError as error:
        raise AutomlError(f"bad setting: {error}") from None


def _apply_recipe(merged: dict[str, Any]) -> None:
    """A recipe that fixes the population or pre-selection (Dvolver's) sets them; a value
    given that contradicts it is an error rather than a silent change of recipe."""
    from automl.engine.nsga2.recipe import get_recipe

    recipe = get_recipe(str(merged.get("recipe", "nsga2")))
    for name in ("population", "preselect"):
        fixed = getattr(recipe, name)
        if fixed is None:
            continue
        if merged.get(name) is not None and merged[name] != fixed:
            raise AutomlError(f"--recipe {recipe.name} fixes --{name} at {fixed} (its reference value); "
                              f"drop --{name} {merged[name]} or use --recipe nsga2")
        merged[name] = fixed


_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmMgG]?)\s*$")


def parse_amount(text: str, what: str = "value") -> float:
    """'300M', '1.5G', '20k' or '2e6' -> a number."""
    match = _AMOUNT.match(str(text))
    if not match:
        if str(text).strip().startswith("-"):
            raise AutomlError(f"{what} must be positive, got {text}")
        raise AutomlError(f"{what} {text!r} is not a number such as 20M, 1.5G or 3e6")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text.split(":", 1)[-1]).name if ":" in text else text)
