"""The commands of ``automl``, one module per group; ``cli.py`` assembles them.

Each module imports only typer and rich at the top: the work (and torch) is imported inside
a command, so ``automl --help`` stays fast.
"""
