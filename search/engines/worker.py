"""What every training run needs, whichever engine runs it: TensorFlow set up for its share of the machine,
the names a run's results and failures go by, and the rule that a run which raised fails for good.

No Keras here (TensorFlow is imported inside :func:`configure_tensorflow` only): the search's driver
imports this module and never needs TensorFlow. The epoch callback is :mod:`search.engines.scoring`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

from search.experiment.metrics import OBJECTIVE, split_key

__all__ = ["FAILURES_DIR", "FAILURE_KEY", "FAIL_ENV", "MAX_RETRIES", "TEST_ENV_PREFIX", "VAL_OBJECTIVE", "TrialFailure",
           "configure_tensorflow", "fails_for_good", "import_tensorflow_quietly", "stderr_silenced"]

# Tests make some trials raise mid-training, so that failure handling is checked for real:
# this variable, set to JSON {"when": {name: value, ...}, "epoch": n}, fails every trial whose
# sampled parameters take all those values, at the end of epoch ``n``. Unset in normal use.
TEST_ENV_PREFIX = "MTL_SEARCH_TEST_"  # the test hooks' variables, forwarded to the workers of a local Ray
FAIL_ENV = TEST_ENV_PREFIX + "FAIL"
# A run whose node is lost (a killed worker, a preempted machine) is retried up to this many
# times; a run that raised is not (see fails_for_good).
MAX_RETRIES = 2
FAILURES_DIR = "failures"  # under the run directory: markers of runs that raised
VAL_OBJECTIVE = split_key(OBJECTIVE, "val")  # the objective in Keras' logs, for callbacks to monitor


class TrialFailure(RuntimeError):
    """A run that cannot succeed (NaN loss, invalid sampled model); the search goes on."""


# A trial worker reports a TrialFailure as its trial's last result, under this key, instead of raising it:
# Ray Tune would retry the trial and replace the worker, where the worker is fine and a retry would fail again.
FAILURE_KEY = "trial_failure"


@contextlib.contextmanager
def stderr_silenced(silenced: bool = True) -> Iterator[None]:
    """File descriptor 2 to /dev/null while the block runs (TensorFlow's C++ lines ignore Python's logging)."""
    if not silenced:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines (oneDNN, "no CUDA drivers") kept out of the terminal:
    they ignore TF_CPP_MIN_LOG_LEVEL, so file descriptor 2 is silenced while it imports and looks for GPUs
    (on a machine without one, CUDA's "failed call to cuInit" is printed then), then restored. A failed
    import still raises."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def configure_tensorflow(cpus: float, gpus: float = 0.0) -> None:
    """Limit TensorFlow's threads to ``cpus`` and turn GPU memory growth on, before first use.

    Looking for GPUs prints CUDA's "failed call to cuInit" on a machine without one: kept out of the
    terminal unless the run asked for ``gpus``, and then a run that finds none says so in one line.
    """
    import tensorflow as tf

    threads = max(1, int(cpus))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # TensorFlow already initialised in this process; keep its settings
        pass
    with stderr_silenced(not gpus):
        found = tf.config.list_physical_devices("GPU")
    if gpus and not found:
        print(f"mtl-search: warning: this run asked for {gpus:g} GPU but TensorFlow sees none; install the CUDA "
              "build with: python -m pip install 'mtl-search[cuda]'", file=sys.stderr, flush=True)
    for gpu in found:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass


@contextlib.contextmanager
def fails_for_good(failures_dir: str | None, run_id: str | None = None):
    """Make a Ray Tune run that raised fail for good, while a run whose node died is retried.

    Ray Tune retries a trial after any error (``FailureConfig.max_failures``). Retries are for
    lost nodes; an exception from the run itself (NaN loss, an invalid model, a bug) would
    only repeat. So the first exception leaves a marker file with its reason under
    ``failures_dir``, and a retry finding the marker re-raises that reason at once. ``run_id``
    names the marker (default: the Ray Tune trial this runs in).
    """
    if not failures_dir:
        yield
        return
    if run_id is None:
        from ray import tune

        run_id = tune.get_context().get_trial_id()
    marker = Path(failures_dir) / f"{run_id}.txt"
    if marker.is_file():
        raise TrialFailure(marker.read_text())
    try:
        yield
    except Exception as exc:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(exc) if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}")
        raise
