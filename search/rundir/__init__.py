"""What a run leaves on disk, ``results/<name>/``: the directory and its ``run.json`` (``directory``), one
record per trial (``records``), the leaderboard ranked from them (``leaderboard``) and its text views
(``render``).

Pandas and the standard library only: nothing here imports Ray, Optuna or Keras, so a run can be
read on any machine.
"""

from search._lazy import lazy_exports

__all__ = ["FINISHED", "SCORED", "STATUSES", "Column", "LeaderboardSpec", "ParamRange", "RunInfo", "TrialRecord",
           "build_leaderboard", "leaderboard_spec", "load_records", "read_run_info", "render_markdown", "render_table",
           "trial_path", "write_leaderboard"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("FINISHED", "SCORED", "STATUSES", "TrialRecord", "load_records", "trial_path"),
                    "search.rundir.records"),
    **dict.fromkeys(("Column", "LeaderboardSpec", "ParamRange", "build_leaderboard", "leaderboard_spec",
                     "write_leaderboard"), "search.rundir.leaderboard"),
    **dict.fromkeys(("render_markdown", "render_table"), "search.rundir.render"),
    **dict.fromkeys(("RunInfo", "read_run_info"), "search.rundir.directory"),
}, globals())
