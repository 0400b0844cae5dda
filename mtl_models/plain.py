"""The trained network as a plain Keras model: it loads where ``mtl_models`` is not installed.

A model the factory builds is a :class:`MultiTaskModel` with custom layers, so loading
its ``.keras`` file needs ``import mtl_models`` first (Keras imports only its own packages
while loading). Three of them act only in training: :class:`StopGradient` and
:class:`TaskUncertainty` are identities in the forward pass, and :class:`ImageAugmentation`
leaves the image as it is at inference. Replaced by Keras' own ``Identity`` layer of the same
name, and :class:`CaffePreprocess` by the Keras layers that compute the same, in a plain
functional model, the network predicts exactly the same and its file loads in any Python with Keras.
"""

from __future__ import annotations

import keras

from mtl_models.applications import CaffePreprocess
from mtl_models.augmentation import ImageAugmentation
from mtl_models.layers import StopGradient, TaskUncertainty

__all__ = ["plain_model"]

_TRAINING_ONLY = (StopGradient, TaskUncertainty, ImageAugmentation)


def plain_model(model: keras.Model) -> keras.Model:
    """The same network and weights, built only from layers Keras ships; uncompiled.

    Layer names are kept, so code that finds a head or the backbone by name works on the
    plain model too; compile it with :func:`mtl_models.compile_model` to train or evaluate it.
    """

    def keras_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, _TRAINING_ONLY):
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, CaffePreprocess):
            return layer.keras_equivalent()  # its weights are set already
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=keras_layer)
    plain = keras.Model(inputs=clone.input, outputs=clone.output, name=model.name)
    for layer in plain.layers:
        source = model.get_layer(layer.name)
        if layer.weights and not isinstance(source, CaffePreprocess):
            layer.set_weights(source.get_weights())
    return plain
