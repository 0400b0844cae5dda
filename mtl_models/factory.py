"""The model factory: a validated :class:`ModelSpec` in, a compiled Keras model out.

Pure: no globals, no search imports, and no I/O but the backbone's weights when the spec names a
file (or ``imagenet``, which Keras downloads once). Layer names follow one convention so
that other code can find parts of a built or loaded model: ``backbone__*`` (shared
trunk; ``backbone_<task>__*`` with separate branches), ``<task>__*`` (a head), and the
output layer named after its task.
"""

from __future__ import annotations

import keras

from mtl_models.augmentation import augment_inputs
from mtl_models.backbone import build_trunk, is_backbone_layer, normalize_inputs
from mtl_models.heads import build_head, head_metrics, loss_name
from mtl_models.layers import TaskUncertainty
from mtl_models.model import MultiTaskModel, task_loss
from mtl_models.spec import ModelSpec, OptimizerSpec

__all__ = ["build_model", "compile_model", "freeze_for_finetune", "make_optimizer"]


def build_model(spec: ModelSpec) -> MultiTaskModel:
    """Build and compile the network ``spec`` describes.

    Returns a model with dict inputs (one per ``spec.inputs``) and dict outputs (one per
    task), compiled with each task's loss, weight and metrics and the spec's optimizer.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"build_model expects a ModelSpec, got {type(spec).__name__}.")
    inputs = {i.name: keras.Input(shape=i.shape, name=i.name) for i in spec.inputs}
    tensors = augment_inputs(spec.augmentation, spec.inputs, inputs)
    tensors = normalize_inputs(spec.inputs, tensors, raw_images=spec.backbone.pretrained)
    if spec.sharing == "hard":
        shared = build_trunk(spec.backbone, spec.inputs, tensors, prefix="backbone")
        trunks = {h.name: shared for h in spec.heads}
    else:
        trunks = {h.name: build_trunk(spec.backbone, spec.inputs, tensors, prefix=f"backbone_{h.name}") for h in spec.heads}
    uncertainty = spec.loss_weighting == "uncertainty"
    outputs, hidden = {}, {}
    for head in spec.head_order():
        outputs[head.name], hidden[head.name] = build_head(head, trunks[head.name], hidden, uncertainty=uncertainty)
    # Keep the declared task order in the outputs dict, whatever order heads were built in.
    model = MultiTaskModel(inputs=inputs, outputs={h.name: outputs[h.name] for h in spec.heads}, name=spec.name)
    if spec.freeze_backbone:
        for layer in model.layers:
            if is_backbone_layer(layer):
                layer.trainable = False
    compile_model(model, spec)
    return model


def make_optimizer(spec: OptimizerSpec) -> keras.optimizers.Optimizer:
    """A fresh optimizer as the spec names it."""
    # The spec's names are Keras' own identifiers, so no table of classes repeats them here.
    return keras.optimizers.get({"class_name": spec.name, "config": {"learning_rate": spec.learning_rate}})


def compile_model(model: keras.Model, spec: ModelSpec, *, only_task: str | None = None) -> None:
    """Compile ``model`` with the spec's losses, weights, metrics and optimizer.

    ``only_task`` trains that task's plain loss alone, for fine-tuning: the others get
    loss weight 0, and under uncertainty weighting the learned weights are set aside too
    (``model.only_task`` tells :meth:`MultiTaskModel.compute_loss` so).
    """
    weights = {h.name: float(h.loss_weight) for h in spec.heads}
    if only_task is not None:
        spec.head(only_task)  # raises SpecError for an unknown task
        weights = {name: 1.0 if name == only_task else 0.0 for name in weights}
    elif spec.loss_weighting == "uncertainty":
        weights = None  # learned by the model's TaskUncertainty layers instead
    model.only_task = only_task
    model.compile(
        optimizer=make_optimizer(spec.optimizer),
        loss={h.name: task_loss(loss_name(h.task)) for h in spec.heads},
        loss_weights=weights,
        metrics={h.name: head_metrics(h.task) for h in spec.heads},
    )


def freeze_for_finetune(model: keras.Model, spec: ModelSpec, task: str, *, learning_rate: float | None = None) -> None:
    """Freeze every layer except ``task``'s head, then recompile to train that task's loss alone.

    Network (e)'s step: after multi-task training, fine-tune one head on frozen features.
    Learned loss weights (:class:`TaskUncertainty`) are frozen too: the task trains on its
    plain loss, as a single-task model would.
    """
    spec.head(task)
    prefix = f"{task}__"
    for layer in model.layers:
        in_head = layer.name == task or layer.name.startswith(prefix)
        layer.trainable = in_head and not isinstance(layer, TaskUncertainty)
    if learning_rate is not None:
        spec = spec.replace(optimizer=OptimizerSpec(name=spec.optimizer.name, learning_rate=learning_rate))
    compile_model(model, spec, only_task=task)
