"""``optuna-nsga2``: Optuna's NSGAIISampler on the study (a baseline for ours)."""

from __future__ import annotations

from automl.engine.optuna_sampler import OptunaStrategy


class OptunaNSGA2Strategy(OptunaStrategy):
    name = "optuna-nsga2"

    def sampler(self):
        import optuna

        return optuna.samplers.NSGAIISampler(population_size=self.population, seed=self.seed)
