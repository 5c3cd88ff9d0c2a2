"""``optuna-tpe``: Optuna's TPESampler on the study (a baseline for ours)."""

from __future__ import annotations

from automl.engine.optuna_sampler import OptunaStrategy


class OptunaTPEStrategy(OptunaStrategy):
    name = "optuna-tpe"

    def sampler(self):
        import optuna

        return optuna.samplers.TPESampler(seed=self.seed)
