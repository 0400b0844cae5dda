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
