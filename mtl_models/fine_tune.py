"""The fine-tuning schedule of a Keras Applications backbone: which of its layers train in an epoch, and how fast.

For ``backbone.frozen_epochs`` epochs the application is frozen and only the rest of the model trains;
from then on the application trains too (its top ``unfreeze_layers`` layers, or all of it) at the
learning rate times ``fine_tune_lr_factor``. A training loop calls :func:`apply_fine_tune` before each
epoch (one ``fit`` per epoch), or puts :class:`FineTuneSchedule` among the callbacks of a longer ``fit``.

What the schedule sets depends on the epoch alone, never on what was set before, so it holds after a
model is rebuilt and its weights restored from a checkpoint at any epoch. The optimizer is built over every
weight the schedule will ever train, frozen or not: it knows a weight when it thaws, and its saved state
has the same variables in every epoch (a checkpoint from a frozen epoch loads into a thawed one).
"""

from __future__ import annotations

import keras

from mtl_models.backbone import is_backbone_layer
from mtl_models.spec import ModelSpec

__all__ = ["FineTuneSchedule", "applications", "apply_fine_tune", "learning_rate_factor"]


def applications(model: keras.Model) -> list[keras.Model]:
    """The model's Keras Applications networks: one, or one per head with ``sharing="separate"``."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model) and is_backbone_layer(layer)]


def learning_rate_factor(spec: ModelSpec, epoch: int) -> float:
    """What the schedule multiplies the learning rate by in ``epoch`` (0-based): the factor once the application
    trains, else 1."""
    backbone = spec.backbone
    trains = backbone.kind == "keras_application" and not spec.freeze_backbone and epoch >= backbone.frozen_epochs
    return backbone.fine_tune_lr_factor if trains else 1.0


def apply_fine_tune(model: keras.Model, spec: ModelSpec, epoch: int, base_learning_rate: float) -> float:
    """Make the application's layers trainable or not as the schedule has them in ``epoch`` (0-based, the epoch
    about to run) and return that epoch's learning rate: ``base_learning_rate`` times
    :func:`learning_rate_factor`.

    Call it before the epoch trains, on a model from :func:`~mtl_models.build_model` (freshly built, or
    rebuilt and restored from a checkpoint). Calling it again changes nothing. When the trainable layers
    change, the model's training step is traced again, with the optimizer and its state kept. A conv
    backbone, or one frozen by ``freeze_backbone``, has no schedule: nothing changes and the rate is the base.
    """
    rate = float(base_learning_rate) * learning_rate_factor(spec, epoch)
    backbone = spec.backbone
    if backbone.kind != "keras_application" or spec.freeze_backbone:
        return rate
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:  # while everything is still trainable (build_model's state)
        optimizer.build(model.trainable_variables)
    frozen = epoch < backbone.frozen_epochs
    changed = False
    for application in applications(model):
        count = len(application.layers)
        top = backbone.unfreeze_layers or count
        wanted = [not frozen and index >= count - top for index in range(count)]
        if application.trainable == any(wanted) and [layer.trainable for layer in application.layers] == wanted:
            continue
        # A model that is not trainable has no trainable weights, whatever its layers say; setting it sets them all.
        application.trainable = any(wanted)
        for layer, trainable in zip(application.layers, wanted):
            layer.trainable = trainable
        changed = True
    if changed and getattr(model, "compiled", False):
        model.make_train_function(force=True)  # the step traced before holds the old list of trainable weights
    return rate


class FineTuneSchedule(keras.callbacks.Callback):
    """:func:`apply_fine_tune` at the start of every epoch of one ``fit`` (a retraining run).

    It changes the optimizer's learning rate only by the schedule's factor, so a rate another callback
    lowered (ReduceLROnPlateau) or a checkpoint restored stays lowered.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        rate = self.model.optimizer.learning_rate
        # The rate before the factor of the epoch before (a checkpoint restored the rate that epoch ended with).
        base = float(keras.ops.convert_to_numpy(rate)) / learning_rate_factor(self.spec, epoch - 1)
        rate.assign(apply_fine_tune(self.model, self.spec, epoch, base))
