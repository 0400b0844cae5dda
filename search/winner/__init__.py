"""After the search: retrain the best configurations across seeds (``retraining``, each run a
``retrain_job`` leaving ``runs``), judge them on the test split (``evaluation``, ``retrain_table``),
export the winner (``exporting``, ``model_dir``), use it (``using``: predict, evaluate, finetune),
report (``report``) and serve the search's Optuna study in optuna-dashboard (``dashboard``).

Only retraining runs on Ray; exporting, using, reporting and the dashboard import no Ray.
"""

from search._lazy import lazy_exports

__all__ = ["RetrainOptions", "RetrainTable", "evaluate", "export", "finetune", "load_table", "predict", "retrain",
           "write_report"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("RetrainOptions", "retrain"), "search.winner.retraining"),
    **dict.fromkeys(("RetrainTable", "load_table"), "search.winner.retrain_table"),
    **dict.fromkeys(("evaluate", "finetune", "predict"), "search.winner.using"),
    "export": "search.winner.exporting",
    "write_report": "search.winner.report",
}, globals())
