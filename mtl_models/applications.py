"""A Keras Applications network as the trunk's image part: without its top, fed what its weights expect.

The application is one nested model named ``<prefix>__<name>`` (``backbone__mobilenetv3small``), so the
trunk's naming holds: :func:`~mtl_models.backbone.is_backbone_layer` finds it, ``freeze_backbone`` freezes
it, and with ``sharing="separate"`` each head gets its own. Its feature map (a stride of 32) is what a
segmentation head decodes; the trunk pools it as it pools the conv blocks'.

With weights (``imagenet`` or a file) the image is raw pixels, 0-255, and goes through the application's
own preprocessing: MobileNetV3's and EfficientNet's built-in rescaling layers, and for ResNet50 (whose
``preprocess_input`` is outside the model) :class:`CaffePreprocess`. A gray image is repeated to three
channels. Without weights the model's z-score has normalised the image, and no preprocessing follows.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers, ops

from mtl_models.errors import SpecError
from mtl_models.spec import BackboneSpec, InputSpec
from mtl_models.spec_rules import APPLICATION_DOWNSAMPLINGS

__all__ = ["CaffePreprocess", "application_feature_map", "load_application_weights"]

_IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"


@keras.saving.register_keras_serializable(package="mtl_models")
class CaffePreprocess(keras.layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` as a layer: RGB to BGR, less ImageNet's mean pixel.

    Takes raw pixels (0-255), channels last. A registered layer, not a Lambda, so the model loads in safe
    mode; :meth:`keras_equivalent` gives the same map with Keras' own layers, for an export that loads
    without this package.
    """

    def call(self, inputs):
        return ops.flip(inputs, axis=-1) - ops.convert_to_tensor(_IMAGENET_MEAN_BGR, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def keras_equivalent(self) -> keras.layers.Layer:
        """A fixed 1x1 convolution of the same name that computes the same: it swaps channels 0 and 2 (a
        kernel of 0s and 1s, exact in floating point) and adds minus the mean as its bias."""
        conv = layers.Conv2D(3, 1, name=self.name, trainable=False)
        conv.build((None, None, None, 3))
        conv.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3),
                          -np.asarray(_IMAGENET_MEAN_BGR, dtype="float32")])
        return conv


def application_feature_map(spec: BackboneSpec, image: InputSpec, x, prefix: str):
    """Apply the application ``spec`` names to the image tensor ``x``. Returns (feature map, downsamplings)."""
    height, width, channels = image.shape
    if spec.pretrained:
        if channels == 1:  # the weights were learnt on RGB; a gray image is the same value in all three
            x = layers.Concatenate(name=f"{prefix}__to_rgb")([x, x, x])
            channels = 3
        if spec.name == "ResNet50":
            x = CaffePreprocess(name=f"{prefix}__preprocess")(x)
    application = _application(spec, (height, width, channels), name=f"{prefix}__{spec.name.lower()}")
    # Pretrained, the application runs in inference mode even while it trains, so its batch-norm layers keep
    # the statistics its weights were learnt with (Keras' transfer-learning guide does the same).
    x = application(x, training=False) if spec.pretrained else application(x)
    return x, APPLICATION_DOWNSAMPLINGS


def _application(spec: BackboneSpec, shape: tuple[int, int, int], name: str) -> keras.Model:
    options = {}
    if spec.name == "MobileNetV3Small":  # its built-in rescaling takes raw pixels; without weights they are z-scored
        options["include_preprocessing"] = spec.pretrained
    weights = "imagenet" if spec.weights == "imagenet" else None
    application = getattr(keras.applications, spec.name)(
        include_top=False, weights=weights, input_shape=shape, pooling=None, name=name, **options)
    if spec.pretrained and weights is None:
        load_application_weights(application, spec.weights)
    return application


def load_application_weights(application: keras.Model, path: str) -> None:
    """Load a weights file into ``application``, skipping what does not match (Keras warns for each).

    A Keras 3 ``.weights.h5`` file (``application.save_weights``) is matched by structure, as Keras 3 matches
    it; a legacy ``.h5`` (what ``weights="imagenet"`` downloads) by layer name.
    """
    if not os.path.isfile(path):
        raise SpecError("backbone.weights", "must name an existing weights file", path)
    if path.endswith(".weights.h5"):
        application.load_weights(path, skip_mismatch=True)
    else:
        application.load_weights(path, skip_mismatch=True, by_name=True)
