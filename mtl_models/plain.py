"""The trained network as a plain Keras model: it loads where ``mtl_models`` is not installed.

A model the factory builds is a :class:`MultiTaskModel` with two custom layers, so loading
its ``.keras`` file needs ``import mtl_models`` first (Keras imports only its own packages
while loading). Both layers act only in training: :class:`StopGradient` and
:class:`TaskUncertainty` are identities in the forward pass. Replaced by Keras' own
``Identity`` layer of the same name, in a plain functional model, the network predicts
exactly the same and its file loads in any Python with Keras.
"""

from __future__ import annotations

import keras

from mtl_models.layers import StopGradient, TaskUncertainty

__all__ = ["plain_model"]

_TRAINING_ONLY = (StopGradient, TaskUncertainty)


def plain_model(model: keras.Model) -> keras.Model:
    """The same network and weights, built only from layers Keras ships; uncompiled.

    Layer names are kept, so code that finds a head or the backbone by name works on the
    plain model too; compile it with :func:`mtl_models.compile_model` to train or evaluate it.
    """

    def keras_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, _TRAINING_ONLY):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=keras_layer)
    plain = keras.Model(inputs=clone.input, outputs=clone.output, name=model.name)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return plain
