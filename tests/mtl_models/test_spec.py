"""Spec validation: every invalid spec raises SpecError naming the field, the rule and the value."""

import json

import pytest

from mtl_models import (AugmentationSpec, BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, SpecError,
                        TaskSpec)


def _image(shape=(32, 32, 3)):
    return InputSpec("image", shape)


def _heads(**b_options):
    return (
        HeadSpec(TaskSpec("A", "classification", num_classes=10), units=32),
        HeadSpec(TaskSpec("B", "regression", activation="sigmoid"), **b_options),
    )


def _spec(**changes):
    base = dict(inputs=(_image(),), heads=_heads(), backbone=BackboneSpec(blocks=2, filters=8))
    base.update(changes)
    return ModelSpec(**base)


def _app(shape=(32, 32, 3), heads=None, **backbone):
    return _spec(inputs=(InputSpec("image", shape),), backbone=BackboneSpec(kind="keras_application", **backbone),
                 **({"heads": heads} if heads else {}))


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (lambda: _spec(heads=_heads(transfer_from=("Z",))), "heads[B].transfer_from", "'Z'"),
        (lambda: _spec(heads=_heads(transfer_from=("B",))), "heads[B].transfer_from", "'B'"),
        (lambda: HeadSpec(TaskSpec("A", "binary"), dropout=1.5), "heads[A].dropout", "1.5"),
        (lambda: HeadSpec(TaskSpec("A", "binary"), dropout=1.0), "heads[A].dropout", "1.0"),
        (lambda: BackboneSpec(dropout=-0.1), "backbone.dropout", "-0.1"),
        (
            lambda: _spec(
                inputs=(InputSpec("features", (10,)),),
                heads=(HeadSpec(TaskSpec("mask", "segmentation"), units=8),),
            ),
            "heads[mask].task.kind",
            "'segmentation'",
        ),
        (lambda: TaskSpec("A", "classification", num_classes=1), "tasks[A].num_classes", "1"),
        (lambda: TaskSpec("A", "binary", num_classes=3), "tasks[A].num_classes", "3"),
        (lambda: TaskSpec("A", "regression", loss="hinge"), "tasks[A].loss", "'hinge'"),
        (lambda: TaskSpec("A", "classification", num_classes=3, loss="mse"), "tasks[A].loss", "'mse'"),
        (lambda: TaskSpec("A", "classification", num_classes=3, metrics=("mae",)), "tasks[A].metrics", "'mae'"),
        (lambda: TaskSpec("A", "ordinal"), "tasks[A].kind", "'ordinal'"),
        (lambda: TaskSpec("2bad", "binary"), "tasks.name", "'2bad'"),
        (lambda: TaskSpec("a__b", "binary"), "tasks.name", "'a__b'"),
        (lambda: BackboneSpec(blocks=3, filters=(8, 16)), "backbone.filters", "(8, 16)"),
        (lambda: BackboneSpec(blocks=2, filters=0), "backbone.filters", "0"),
        (lambda: BackboneSpec(pooling="median"), "backbone.pooling", "'median'"),
        (lambda: _spec(backbone=BackboneSpec(blocks=6, filters=4)), "backbone.blocks", "6"),
        (lambda: InputSpec("image", (32, 32)), "inputs[image].shape", "(32, 32)"),
        (lambda: InputSpec("image", (32, 32, 3), mean=(0.0,), variance=(1.0,)), "inputs[image].mean", "(0.0,)"),
        (lambda: InputSpec("x", (2,), mean=(0.0, 1.0)), "inputs[x].variance", "None"),
        (lambda: OptimizerSpec(learning_rate=0), "optimizer.learning_rate", "0"),
        (lambda: OptimizerSpec(name="lion"), "optimizer.name", "'lion'"),
        (lambda: HeadSpec(TaskSpec("A", "binary"), loss_weight=-1), "heads[A].loss_weight", "-1"),
        (lambda: HeadSpec(TaskSpec("A", "binary"), units=-4), "heads[A].units", "-4"),
        (lambda: _spec(loss_weighting="learned"), "loss_weighting", "'learned'"),
        (lambda: _spec(heads=()), "heads", "[]"),
        (
            lambda: _spec(heads=(HeadSpec(TaskSpec("A", "binary")), HeadSpec(TaskSpec("A", "binary")))),
            "heads.task.name",
            "'A'",
        ),
        (
            lambda: _spec(inputs=(_image(), InputSpec("other", (8, 8, 1)))),
            "inputs",
            "['image', 'other']",
        ),
        # Names that would clash with another layer of the built model.
        (lambda: _spec(heads=(HeadSpec(TaskSpec("image", "binary")),)), "heads.task.name", "'image'"),
        (lambda: _spec(heads=(HeadSpec(TaskSpec("image_norm", "binary")),)), "heads.task.name", "'image_norm'"),
        (lambda: _spec(inputs=(_image(), InputSpec("image_norm", (4,)))), "inputs.name", "'image_norm'"),
        (lambda: TaskSpec("backbone", "binary"), "tasks.name", "'backbone'"),
        (lambda: TaskSpec("backbone_A", "binary"), "tasks.name", "'backbone_A'"),
        # Wrong nested types.
        (lambda: _spec(heads=("A",)), "heads", "('A',)"),
        (lambda: _spec(backbone={"blocks": 2}), "backbone", "{'blocks': 2}"),
        (lambda: _spec(optimizer="adam"), "optimizer", "'adam'"),
        (lambda: _spec(inputs=_image()), "inputs", repr(_image())),
        (lambda: HeadSpec("A"), "heads.task", "'A'"),
        # Fields the kind does not use.
        (lambda: TaskSpec("A", "regression", num_classes=3), "tasks[A].num_classes", "3"),
        (lambda: TaskSpec("A", "classification", num_classes=3, output_dim=2), "tasks[A].output_dim", "2"),
        (lambda: TaskSpec("A", "segmentation", output_dim=2), "tasks[A].output_dim", "2"),
        (lambda: HeadSpec(TaskSpec("A", "binary"), units=0, dropout=0.3), "heads[A].dropout", "0.3"),
        # Keras Applications backbones and their fine-tuning schedule.
        (lambda: BackboneSpec(kind="vgg"), "backbone.kind", "'vgg'"),
        (lambda: BackboneSpec(name="VGG16"), "backbone.name", "'VGG16'"),
        (lambda: BackboneSpec(weights="imagenet21k"), "backbone.weights", "'imagenet21k'"),
        (lambda: BackboneSpec(weights="model.ckpt"), "backbone.weights", "'model.ckpt'"),
        (lambda: BackboneSpec(weights=False), "backbone.weights", "False"),
        (lambda: BackboneSpec(frozen_epochs=-1), "backbone.frozen_epochs", "-1"),
        (lambda: BackboneSpec(frozen_epochs=1.5), "backbone.frozen_epochs", "1.5"),
        (lambda: BackboneSpec(unfreeze_layers=-2), "backbone.unfreeze_layers", "-2"),
        (lambda: BackboneSpec(fine_tune_lr_factor=0), "backbone.fine_tune_lr_factor", "0"),
        (lambda: BackboneSpec(fine_tune_lr_factor=1.5), "backbone.fine_tune_lr_factor", "1.5"),
        (lambda: _app(shape=(28, 28, 3)), "backbone.name", "'MobileNetV3Small'"),
        (lambda: _app(shape=(32, 32, 4), weights="imagenet"), "backbone.weights", "'imagenet'"),
        (lambda: _app(shape=(48, 48, 3), heads=(HeadSpec(TaskSpec("mask", "segmentation"), units=8),)),
         "backbone.name", "'MobileNetV3Small'"),
        (lambda: _spec(inputs=(InputSpec("x", (4,)),), backbone=BackboneSpec(kind="keras_application")),
         "backbone.kind", "'keras_application'"),
        # Augmentation, and the flag that says a task's label is a position.
        (lambda: AugmentationSpec(flip="diagonal"), "augmentation.flip", "'diagonal'"),
        (lambda: AugmentationSpec(rotation=0.75), "augmentation.rotation", "0.75"),
        (lambda: _spec(augmentation={"flip": "horizontal"}), "augmentation", "{'flip': 'horizontal'}"),
        (lambda: _spec(heads=(HeadSpec(TaskSpec("pos", "regression", spatial=True)),),
                       augmentation=AugmentationSpec(zoom=0.1)), "augmentation.zoom", "0.1"),
        (lambda: TaskSpec("A", "regression", spatial=1), "tasks[A].spatial", "1"),
        (lambda: _spec(heads=(HeadSpec(TaskSpec("image_augment", "binary")),)), "heads.task.name", "'image_augment'"),
    ],
)
def test_invalid_spec_names_field_rule_and_value(make, field, value):
    with pytest.raises(SpecError) as info:
        make()
    message = str(info.value)
    assert info.value.field == field
    assert f"`{field}`" in message
    assert f"Received: {field}={value}" in message
    assert info.value.rule in message


def test_conv_and_application_fields_stay_valid_where_the_other_kind_leaves_them_unused():
    assert _app(blocks=6).backbone.blocks == 6  # a conv field: 32 is not divisible by 2**6, but no conv block runs
    conv = BackboneSpec(weights="imagenet", frozen_epochs=3, unfreeze_layers=None)
    assert not conv.pretrained and conv.unfreeze_layers == 0  # None reads as 0: all layers
    assert _app(weights="none").backbone.pretrained is False
    assert _app(shape=(32, 32, 1), weights="imagenet").backbone.pretrained  # gray: repeated to RGB in the model
    assert _app(shape=(64, 64, 2)).inputs[0].shape == (64, 64, 2)  # any channels without weights
    assert _app(weights="/models/mobilenet.weights.h5", name="EfficientNetB0").backbone.weights.endswith(".h5")
    assert _spec(augmentation=AugmentationSpec(flip="horizontal", contrast=0.5)).augmentation.active() == (
        "flip", "contrast")


def test_transfer_cycle_is_rejected():
    heads = (
        HeadSpec(TaskSpec("A", "binary"), units=8, transfer_from=("B",)),
        HeadSpec(TaskSpec("B", "binary"), units=8, transfer_from=("A",)),
    )
    with pytest.raises(SpecError, match="cycle"):
        _spec(heads=heads)


def test_transfer_from_a_head_without_hidden_layer_is_rejected():
    heads = (HeadSpec(TaskSpec("A", "binary"), units=0), HeadSpec(TaskSpec("B", "binary"), transfer_from=("A",)))
    with pytest.raises(SpecError, match=r"heads\[B\]\.transfer_from.*units > 0"):
        _spec(heads=heads)


def test_head_order_puts_sources_first():
    heads = (
        HeadSpec(TaskSpec("B", "binary"), transfer_from=("A",)),
        HeadSpec(TaskSpec("A", "binary"), units=8),
    )
    assert [h.name for h in _spec(heads=heads).head_order()] == ["A", "B"]


def test_dict_round_trip_through_json_gives_an_equal_spec():
    spec = _spec(
        heads=_heads(transfer_from=("A",), stop_gradient=True, loss_weight=0.3),
        loss_weighting="uncertainty",
        inputs=(InputSpec("image", (32, 32, 3), mean=(0.1, 0.2, 0.3), variance=(1.0, 2.0, 3.0)),),
        backbone=BackboneSpec(kind="keras_application", name="ResNet50", weights="w.weights.h5", frozen_epochs=2,
                              unfreeze_layers=20, fine_tune_lr_factor=0.1),
        augmentation=AugmentationSpec(flip="horizontal", contrast=0.25),
    )
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(colour="red"), "model.colour"),
        (lambda d: d["backbone"].update(filter=8), "model.backbone.filter"),
        (lambda d: d["heads"][1]["task"].update(clases=3), "model.heads[1].task.clases"),
        (lambda d: d.pop("inputs"), "model.inputs"),
        (lambda d: d.update(heads={"A": 1}), "model.heads"),
    ],
)
def test_from_dict_rejects_unknown_and_missing_keys(mutate, field):
    data = _spec().to_dict()
    mutate(data)
    with pytest.raises(SpecError) as info:
        ModelSpec.from_dict(data)
    assert info.value.field == field


def test_head_dropout_without_hidden_layer_says_to_set_units():
    with pytest.raises(SpecError, match=r"set units > 0"):
        HeadSpec(TaskSpec("A", "binary"), units=0, dropout=0.3)
    assert HeadSpec(TaskSpec("A", "binary"), units=0).dropout == 0.0


def test_loss_weight_is_accepted_under_uncertainty_weighting():
    # The search space samples the weighting mode, so a fixed weight may meet learned ones; it is ignored.
    spec = _spec(heads=_heads(loss_weight=2.0), loss_weighting="uncertainty")
    assert spec.head("B").loss_weight == 2.0
    assert "ignored" in HeadSpec.__doc__


def test_a_task_may_be_named_like_an_input_only_in_part():
    spec = _spec(heads=(HeadSpec(TaskSpec("image_kind", "binary")), HeadSpec(TaskSpec("norm", "binary"))))
    assert [h.name for h in spec.heads] == ["image_kind", "norm"]


def test_task_defaults_follow_kind():
    assert TaskSpec("r", "regression").loss == "mse"
    assert TaskSpec("r", "regression").score_metric == "mae"
    assert TaskSpec("s", "segmentation").score_metric == "iou"
    assert TaskSpec("c", "classification", num_classes=3).score_metric == "accuracy"
