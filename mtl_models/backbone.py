"""The shared trunk: normalisation, conv blocks (or a Keras application) on the image, embeddings of vectors."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from mtl_models.applications import application_feature_map
from mtl_models.spec import BackboneSpec, InputSpec

__all__ = ["Trunk", "build_trunk", "normalize_inputs", "is_backbone_layer"]


@dataclass(frozen=True)
class Trunk:
    """What heads read from a trunk: pooled features, and the image feature map (or None)."""

    features: keras.KerasTensor
    feature_map: keras.KerasTensor | None
    downsamplings: int  # how many times the feature map was halved


def is_backbone_layer(layer: keras.layers.Layer) -> bool:
    """True for the layers that make up a trunk (named ``backbone__*`` or ``backbone_<task>__*``)."""
    return layer.name.startswith("backbone") and "__" in layer.name


def normalize_inputs(specs: tuple[InputSpec, ...], tensors: dict, *, raw_images: bool = False) -> dict:
    """Z-score each input that carries training statistics, inside the model; with ``raw_images`` an image
    input is left as it is (a pretrained application preprocesses it its own way)."""
    out = {}
    for spec in specs:
        x = tensors[spec.name]
        if spec.mean is not None and not (raw_images and spec.kind == "image"):
            x = layers.Normalization(mean=list(spec.mean), variance=list(spec.variance), name=f"{spec.name}_norm")(x)
        out[spec.name] = x
    return out


def build_trunk(spec: BackboneSpec, inputs: tuple[InputSpec, ...], tensors: dict, *, prefix: str) -> Trunk:
    """Apply the backbone to the (normalised) input tensors; layer names start with ``prefix``."""
    image = next((i for i in inputs if i.kind == "image"), None)
    parts = []
    feature_map, downsamplings = None, 0
    if image is not None:
        if spec.kind == "keras_application":
            feature_map, downsamplings = application_feature_map(spec, image, tensors[image.name], prefix)
        else:
            feature_map, downsamplings = _conv_blocks(spec, tensors[image.name], prefix)
        pool = layers.GlobalAveragePooling2D if spec.global_pooling == "avg" else layers.Flatten
        parts.append(pool(name=f"{prefix}__pool")(feature_map))
    for vector in (i for i in inputs if i.kind == "vector"):
        parts.append(
            layers.Dense(spec.vector_units, activation="relu", name=f"{prefix}__{vector.name}_embed")(tensors[vector.name])
        )
    features = parts[0] if len(parts) == 1 else layers.Concatenate(name=f"{prefix}__fuse")(parts)
    if spec.dense_units:
        features = layers.Dense(spec.dense_units, activation="relu", name=f"{prefix}__dense")(features)
        if spec.dropout:
            features = layers.Dropout(spec.dropout, name=f"{prefix}__dense_dropout")(features)
    return Trunk(features=features, feature_map=feature_map, downsamplings=downsamplings)


def _conv_blocks(spec: BackboneSpec, x, prefix: str):
    downsamplings = 0
    for b, filters in enumerate(spec.filters, start=1):
        name = f"{prefix}__block{b}"
        if spec.residual:
            y = _conv_bn(spec, x, filters, f"{name}_conv_a", activate=True)
            y = _conv_bn(spec, y, filters, f"{name}_conv_b", activate=False)
            shortcut = x
            if x.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_project")(x)
            x = layers.Add(name=f"{name}_add")([y, shortcut])
            x = layers.ReLU(name=f"{name}_relu")(x)
        else:
            x = _conv_bn(spec, x, filters, f"{name}_conv", activate=True)
        if spec.pooling != "none":
            pool = layers.MaxPooling2D if spec.pooling == "max" else layers.AveragePooling2D
            x = pool(2, name=f"{name}_pool")(x)
            downsamplings += 1
        if spec.dropout:
            x = layers.Dropout(spec.dropout, name=f"{name}_dropout")(x)
    return x, downsamplings


def _conv_bn(spec: BackboneSpec, x, filters: int, name: str, *, activate: bool):
    x = layers.Conv2D(filters, spec.kernel_size, padding="same", use_bias=not spec.batch_norm, name=name)(x)
    if spec.batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if activate:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x
