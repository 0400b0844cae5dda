"""Augmentation inside the model: Keras' random preprocessing layers on the image, in training only.

One registered layer per image input, named ``<input>_augment``, holds the layers the spec turns on
(:class:`~mtl_models.augmentation_spec.AugmentationSpec`) and sits between the input and its normalisation.
It is a layer of its own rather than Keras' layers in the graph because Keras' random layers augment
whenever they are not told otherwise: a plain ``model(x)`` call or an exported SavedModel's ``serve``
would change the image. This one augments only when training is asked for (``fit``, ``training=True``).
"""

from __future__ import annotations

import dataclasses

import keras

from mtl_models.augmentation_spec import AugmentationSpec
from mtl_models.spec import InputSpec

__all__ = ["ImageAugmentation", "augment_inputs"]


@keras.saving.register_keras_serializable(package="mtl_models")
class ImageAugmentation(keras.layers.Layer):
    """Random flips, rotations, zooms, translations and contrast changes of a batch of images, in training only.

    The arguments are :class:`AugmentationSpec`'s fields, checked as it checks them. Contrast is not clipped to
    a pixel range (Keras clips to 0-255 by default), so it suits raw pixels of any scale.
    """

    def __init__(self, flip="none", rotation=0.0, zoom=0.0, translation=0.0, contrast=0.0, **kwargs):
        super().__init__(**kwargs)
        spec = AugmentationSpec(flip=flip, rotation=rotation, zoom=zoom, translation=translation, contrast=contrast)
        self.spec = spec
        self.steps = []
        if spec.flip != "none":
            self.steps.append(keras.layers.RandomFlip(spec.flip))
        if spec.rotation:
            self.steps.append(keras.layers.RandomRotation(spec.rotation))
        if spec.zoom:
            self.steps.append(keras.layers.RandomZoom(spec.zoom))
        if spec.translation:
            self.steps.append(keras.layers.RandomTranslation(spec.translation, spec.translation))
        if spec.contrast:
            self.steps.append(keras.layers.RandomContrast(spec.contrast, value_range=(float("-inf"), float("inf"))))

    def build(self, input_shape):
        for step in self.steps:
            step.build(input_shape)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        for step in self.steps:
            inputs = step(inputs, training=True)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = dataclasses.asdict(self.spec)
        return {**base_config, **config}


def augment_inputs(spec: AugmentationSpec, inputs: tuple[InputSpec, ...], tensors: dict) -> dict:
    """``tensors`` with each image input augmented as ``spec`` says (unchanged when it turns nothing on)."""
    out = dict(tensors)
    if spec.active():
        for image in (i for i in inputs if i.kind == "image"):
            layer = ImageAugmentation(**dataclasses.asdict(spec), name=f"{image.name}_augment")
            out[image.name] = layer(out[image.name])
    return out
