"""Settings the runner refuses before anything is created, and the recipe setting."""

from __future__ import annotations

import pytest

from automl.app.config import merge
from automl.app.runner import check_reachable, resumed_settings, run_search
from automl.core.errors import AutomlError


@pytest.mark.parametrize("flags, message", [
    ({"max_flops": 1e3}, r"--max-flops 1k cannot be met: the smallest architecture of space 'mobile' .* has 1\.\d+M"),
    ({"max_params": 1e3}, r"--max-params 1k cannot be met: .* has 1\d\.\d+k"),
])
def test_unreachable_constraints_end_at_once_and_create_no_study(in_tmp, flags, message):
    with pytest.raises(AutomlError, match=message):
        run_search(merge({}, {"study": "tight", "budget": 2, **flags}))
    assert not (in_tmp / "studies").exists()


def test_the_smallest_genome_is_what_decides():
    class Space:
        name = "s"

        def smallest(self):
            return "small"

        def format(self, genome):
            return genome

    cost = lambda genome: {"small": (100.0, 10.0)}.get(genome, (1e12, 1e12))  # noqa: E731 - others are huge
    check_reachable(Space(), cost, 100.0, 10.0)  # exactly at the limits: fine
    with pytest.raises(AutomlError, match="--max-params 9 cannot be met"):
        check_reachable(Space(), cost, None, 9.0)


def test_dvolver_recipe_fixes_population_and_preselect():
    settings = merge({}, {"recipe": "dvolver"})
    assert (settings.population, settings.preselect) == (32, 1)
    assert settings.total_budget() == 32 * settings.DEFAULT_GENERATIONS
    with pytest.raises(AutomlError, match="fixes --population at 32"):
        merge({}, {"recipe": "dvolver", "population": 8})
    with pytest.raises(AutomlError, match="unknown recipe"):
        merge({}, {"recipe": "nope"})


def test_the_recipe_is_fixed_on_resume():
    stored = {"recipe": "dvolver", "population": 32, "preselect": 1, "strategy": "nsga2"}
    assert resumed_settings(merge({}, {}), stored, set()).recipe == "dvolver"
    with pytest.raises(AutomlError, match="--recipe nsga2 differs from the study's dvolver"):
        resumed_settings(merge({}, {"recipe": "nsga2"}), stored, {"recipe"})
