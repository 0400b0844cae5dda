"""The one epoch callback every engine and retraining use: its rows, the objective it logs, NaN and deadline."""

import copy
import time

import keras
import pytest

from mtl_models import build_model
from search.engines.scoring import EpochScorer
from search.engines.worker import VAL_OBJECTIVE
from search.experiment.config import parse_experiment
from search.experiment.prepared import prepare


@pytest.fixture(scope="module")
def prepared(tiny_template):
    data = copy.deepcopy(tiny_template)
    data["data"]["options"]["n_samples"] = 120
    return prepare(parse_experiment(data))


class _Seen(keras.callbacks.Callback):
    """A callback after the scorer, as a checkpoint or KerasTuner's objective would be."""

    def __init__(self):
        super().__init__()
        self.logged = []

    def on_epoch_end(self, epoch, logs=None):
        self.logged.append(logs.get(VAL_OBJECTIVE))


def _fit(prepared, scorer, *, epochs=2, params=None, callbacks=()):
    spec, batch_size = prepared.spec_for(params or {})
    keras.utils.set_random_seed(0)
    model = build_model(spec)
    train, val = prepared.splits.train, prepared.splits.val
    model.fit(dict(train.inputs), dict(train.targets), validation_data=(dict(val.inputs), dict(val.targets)),
              epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[scorer, *callbacks])
    return model


def test_each_epoch_becomes_one_row_in_the_metric_vocabulary_and_the_objective_reaches_later_callbacks(prepared):
    handed, seen = [], _Seen()
    scorer = EpochScorer(prepared.objective, on_row=handed.append)
    _fit(prepared, scorer, callbacks=[seen])
    assert [row["epoch"] for row in scorer.rows] == [1, 2] and handed == scorer.rows
    for row in scorer.rows:
        for task in ("shape_accuracy", "colour_accuracy", "midpoint_mae"):
            assert f"train_{task}" in row and f"val_{task}" in row
        assert {"train_loss", "val_loss", "learning_rate", "first_step_at", "train_s"} <= set(row)
        assert row[VAL_OBJECTIVE] == pytest.approx(prepared.objective.value(row, split="val"))
        assert 0.0 <= row[VAL_OBJECTIVE] <= 1.0
    assert seen.logged == [row[VAL_OBJECTIVE] for row in scorer.rows]
    assert scorer.best == max(seen.logged) and scorer.rows[scorer.best_epoch - 1][VAL_OBJECTIVE] == scorer.best
    assert 0 < scorer.rows[0]["train_s"] < scorer.rows[1]["train_s"] and scorer.failure is None


def test_a_non_finite_loss_stops_training_and_fails_the_run(prepared):
    handed = []
    scorer = EpochScorer(prepared.objective, non_finite=-float("inf"), on_row=handed.append)
    _fit(prepared, scorer, epochs=3, params={"heads.shape.loss_weight": 1.0e30})  # overflows for real
    assert scorer.failure == "loss became nan at epoch 1"
    assert len(scorer.rows) == 1 and handed == []  # the failed epoch is kept but never reported
    assert scorer.rows[0][VAL_OBJECTIVE] == -float("inf") and scorer.best_epoch == 0


def test_past_its_deadline_a_run_stops_at_the_end_of_the_epoch(prepared):
    scorer = EpochScorer(prepared.objective, deadline=time.time())
    _fit(prepared, scorer, epochs=5)
    assert len(scorer.rows) == 1 and scorer.out_of_time
