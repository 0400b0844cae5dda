"""What the user asked for: the experiment file, the search space, the objective, the metric vocabulary,
and the experiment made concrete against its data (``prepared``: sampled values -> ModelSpec).

No Ray and no training here; every check of the user's input that can run before Ray starts lives
in this room.
"""

from search._lazy import lazy_exports

__all__ = ["Experiment", "Objective", "Param", "Prepared", "SearchSpace", "Term", "build_objective",
           "higher_is_better", "load_experiment", "metric_key", "parse_experiment", "parse_space", "prepare",
           "split_key"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Experiment", "load_experiment", "parse_experiment"), "search.experiment.config"),
    **dict.fromkeys(("Param", "SearchSpace", "parse_space"), "search.experiment.space"),
    **dict.fromkeys(("Objective", "Term", "build_objective"), "search.experiment.objective"),
    **dict.fromkeys(("Prepared", "prepare"), "search.experiment.prepared"),
    **dict.fromkeys(("higher_is_better", "metric_key", "split_key"), "search.experiment.metrics"),
}, globals())
