"""A retraining run that goes on from its last epoch when its worker or node is lost.

Ray Tune retries such a run (on another node, on a cluster), but a retraining run is a function trainable
without Ray Tune checkpoints, so the retry would train again from epoch 1. Instead, after every epoch the
run's whole training state goes to ``<run>/resume/``, under the run directory that every node shares: the
raw weights, the optimizer's state and the weight average (:mod:`search.engines.checkpoint`), and the state
of every callback that decides what comes next: the epochs' rows and the best objective, early stopping's
and the learning-rate plateau's counts, the best checkpoint's value. A retry takes it up and trains on from
the next epoch; early stopping's best weights come from the best checkpoint (``model.keras``). The state is
replaced whole (written beside, then renamed) and removed once the run is finished.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import keras

from search.engines.averaging import WeightAverage
from search.engines.checkpoint import STATE_FILE, load_training, save_training
from search.engines.scoring import EpochScorer
from search.rundir.directory import MODEL_FILE

__all__ = ["RESUME_DIR", "EpochBackup"]

RESUME_DIR = "resume"


class EpochBackup(keras.callbacks.Callback):
    """Saves a retraining run's state after every epoch and takes it up again (:meth:`restore`, before ``fit``).

    Put it last among the callbacks, so that it saves what the others decided at the epoch's end.
    """

    def __init__(self, run_dir: Path, *, averaging: WeightAverage | None, scorer: EpochScorer,
                 checkpoint: keras.callbacks.ModelCheckpoint, stopping: keras.callbacks.EarlyStopping,
                 plateau: keras.callbacks.ReduceLROnPlateau):
        super().__init__()
        self.run_dir, self.path = Path(run_dir), Path(run_dir) / RESUME_DIR
        self.averaging, self.scorer = averaging, scorer
        self.checkpoint, self.stopping, self.plateau = checkpoint, stopping, plateau
        self.pending: dict[str, Any] | None = None  # a restored state the callbacks take up as training begins

    def restore(self, model: keras.Model) -> int:
        """Load the saved state into ``model`` (built from the run's config) and the scorer; the epochs it had
        trained (0: nothing saved, train from the start)."""
        shutil.rmtree(self.path.with_name(f"{RESUME_DIR}.new"), ignore_errors=True)  # a save cut short
        old = self.path.with_name(f"{RESUME_DIR}.old")
        if not self.path.exists() and old.exists():  # cut short between its two renames
            old.rename(self.path)
        if not (self.path / STATE_FILE).is_file():
            return 0
        state = load_training(self.path, model, self.averaging)
        scorer = self.scorer
        scorer.rows, scorer.best, scorer.best_epoch = list(state["rows"]), state["best"], state["best_epoch"]
        scorer.first_step_at = state["first_step_at"]
        self.pending = state
        return int(state["epoch"])

    def on_train_begin(self, logs: dict | None = None) -> None:
        # After the other callbacks' on_train_begin, which reset what is restored here.
        state, self.pending = self.pending, None
        if state is None:
            return
        stopping, plateau = self.stopping, self.plateau
        stopping.wait, stopping.best, stopping.best_epoch = state["stopping"]
        if stopping.restore_best_weights and (self.run_dir / MODEL_FILE).is_file():
            stopping.best_weights = keras.models.load_model(self.run_dir / MODEL_FILE, safe_mode=True).get_weights()
        plateau.wait, plateau.best, plateau.cooldown_counter = state["plateau"]
        self.checkpoint.best = state["checkpoint_best"]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scorer, stopping, plateau = self.scorer, self.stopping, self.plateau
        state = {"epoch": epoch + 1, "rows": scorer.rows, "best": scorer.best, "best_epoch": scorer.best_epoch,
                 "first_step_at": scorer.first_step_at,
                 "stopping": [stopping.wait, _number(stopping.best), stopping.best_epoch],
                 "plateau": [plateau.wait, _number(plateau.best), plateau.cooldown_counter],
                 "checkpoint_best": _number(self.checkpoint.best)}
        new, old = self.path.with_name(f"{RESUME_DIR}.new"), self.path.with_name(f"{RESUME_DIR}.old")
        shutil.rmtree(new, ignore_errors=True)
        save_training(new, self.model, self.averaging, state)
        if self.path.exists():
            self.path.rename(old)
        new.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)

    def clear(self) -> None:
        """Remove the saved state: the run is finished."""
        shutil.rmtree(self.path, ignore_errors=True)


def _number(value: Any) -> float | None:
    """A callback's best value as JSON holds it (Keras keeps some as NumPy or backend scalars)."""
    return None if value is None else float(value)
