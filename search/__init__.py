"""Hyperparameter search over multi-task Keras models: experiments, engines, results, CLI.

Imports ``mtl_models``; never the other way round. The API mirrors the CLI:
``search.run(experiment)`` returns the leaderboard as a DataFrame, ``search.resume(run_dir)``
continues an interrupted search, ``search.results(run_dir)`` reads a leaderboard;
``search.retrain(run_dir, RetrainOptions(...))`` retrains the best configurations across
seeds, ``search.export(run_dir, out)`` writes the winner, and ``predict``, ``evaluate``,
``finetune`` use an exported model.
"""

import importlib

__all__ = ["ConfigError", "RetrainOptions", "SearchError", "evaluate", "export", "finetune", "load_experiment", "predict",
           "results", "resume", "retrain", "run", "write_report"]

# Loaded on first use, so that `mtl-search --help` and bad-input errors stay fast and the
# CLI can quiet TensorFlow before it is imported.
_LAZY = {
    "run": "search.api",
    "resume": "search.api",
    "results": "search.api",
    "retrain": "search.retraining",
    "RetrainOptions": "search.retraining",
    "export": "search.exporting",
    "evaluate": "search.exporting",
    "finetune": "search.exporting",
    "predict": "search.prediction",
    "write_report": "search.report",
    "load_experiment": "search.config",
    "ConfigError": "search.errors",
    "SearchError": "search.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")
