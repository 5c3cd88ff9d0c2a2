"""NSGA-II on integer-encoded genomes, one small module per operator (as optuna's
``samplers/nsgaii`` is split): sampling, selection, crossover, mutation, duplicates, repair,
survival; :mod:`.recipe` names the settings, :mod:`.strategy` puts them together."""
