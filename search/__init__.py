"""Hyperparameter search over multi-task Keras models: experiments, engines, results, CLI.

Imports ``mtl_models``; never the other way round. The API mirrors the CLI:
``search.run(experiment)`` returns the leaderboard as a DataFrame, ``search.resume(run_dir)``
continues an interrupted search, ``search.results(run_dir)`` reads a leaderboard and
``search.retrain_table(run_dir)`` the retrain table (DataFrames whose columns name split and metric);
``search.retrain(run_dir, RetrainOptions(...))`` retrains the best configurations across
seeds, ``search.export(run_dir, out)`` writes the winner, and ``predict``, ``evaluate``,
``finetune`` use an exported model; ``search.migrate(path)`` converts a run or model directory
written by an earlier version.

The package has four rooms, imported in one direction (cli -> api -> winner -> engines -> rundir
-> experiment -> errors -> mtl_models): ``experiment`` (what the user asked for), ``engines`` (how
trials run), ``rundir`` (what a run leaves on disk) and ``winner`` (what comes after the search).
"""

from search._lazy import lazy_exports

__all__ = ["ConfigError", "RetrainOptions", "SearchError", "evaluate", "export", "finetune", "load_experiment",
           "migrate", "predict", "results", "resume", "retrain", "retrain_table", "run", "write_report"]

# Loaded on first use, so that `mtl-search --help` and bad-input errors stay fast and the
# CLI can quiet TensorFlow before it is imported.
__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("run", "resume", "results", "retrain_table"), "search.api"),
    **dict.fromkeys(("retrain", "RetrainOptions"), "search.winner.retraining"),
    "export": "search.winner.exporting",
    **dict.fromkeys(("evaluate", "finetune", "predict"), "search.winner.using"),
    "write_report": "search.winner.report",
    "migrate": "search.migration",
    "load_experiment": "search.experiment.config",
    **dict.fromkeys(("ConfigError", "SearchError"), "search.errors"),
}, globals())
