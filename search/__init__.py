"""Hyperparameter search over multi-task Keras models: experiments, engines, results, CLI.

Imports ``mtl_models``; never the other way round.
"""

__all__: list[str] = []
