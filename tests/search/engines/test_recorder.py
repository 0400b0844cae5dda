"""The driver-side recorder survives Ray Tune's pickling as a handle: a restored run records with this session's."""

import copy
import pickle

from ray import cloudpickle
from ray.tune import Callback

from search.engines.recorder import Recorder, attach
from search.experiment.config import parse_experiment
from search.experiment.prepared import prepare


def test_a_pickled_recorder_comes_back_as_the_one_attached_in_this_process(tmp_path, tiny_template):
    prepared = prepare(parse_experiment(copy.deepcopy(tiny_template)))
    lines = []
    with attach(prepared, tmp_path / "first", lines.append) as first:
        saved = cloudpickle.dumps(first)  # as Ray Tune writes tuner.pkl
    assert len(saved) < 200  # a handle, not the recorder's state
    with attach(prepared, tmp_path / "moved", lines.append) as fresh:
        restored = pickle.loads(saved)
        assert restored is fresh and restored.run_dir == tmp_path / "moved"
    inert = pickle.loads(saved)  # nothing attached: a callback that does nothing
    assert type(inert) is Callback and not isinstance(inert, Recorder)


def test_a_trial_the_restored_search_does_not_know_is_recorded_as_lost_not_left_running(tmp_path, tiny_template):
    """A driver killed between starting a trial and Ray Tune's next snapshot leaves a `running` record of a trial
    the resumed search never runs (it runs another in its place): the search's end records it as failed, so the
    run reads as finished (CI saw `mtl-search resume` exit 130 for it)."""
    from types import SimpleNamespace

    from search.rundir.records import load_records

    prepared = prepare(parse_experiment(copy.deepcopy(tiny_template)))
    with attach(prepared, tmp_path, lambda line: None) as recorder:
        run_dir = tmp_path
        (run_dir / "trials").mkdir(parents=True, exist_ok=True)
        known = SimpleNamespace(trial_id="known", config={"x": 1}, status="RUNNING")
        lost = SimpleNamespace(trial_id="lost", config={"x": 2}, status="RUNNING")
        recorder.on_trial_start(0, [known, lost], known)
        recorder.on_trial_start(0, [known, lost], lost)
        recorder.on_experiment_end([known])  # the restored search knows only `known`
    records = {r.trial_id: r for r in load_records(run_dir)}
    assert records["known"].status == "interrupted"  # Tune knows it: a later resume continues it
    assert records["lost"].status == "failed" and records["lost"].params == {"x": 2}
    assert "killed before Ray Tune saved this trial" in records["lost"].failure
