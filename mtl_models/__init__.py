"""Multi-task Keras models from typed specs: the factory, reference networks and data sets.

Pure Keras 3 and NumPy: this package never imports the search stack, so an exported
model and everything needed to rebuild it live without Ray or Optuna. Importing it
registers the custom layers, so ``keras.models.load_model(path, safe_mode=True)``
loads a saved model with no ``custom_objects``; ``plain_model`` gives the same network
with Keras' own layers only, which loads without this package (what ``export`` writes).

The specs, data sets and reference networks import without Keras; the Keras parts
(``build_model``, the layers, ...) are imported on first use, and the custom layers are
registered as soon as Keras is imported, before or after this package. So a program that
only reads specs and data (the search's driver) never pays for importing TensorFlow.
"""

import importlib

import wrapt

from mtl_models import data
from mtl_models.errors import DataError, MtlError, SpecError
from mtl_models.reference import REFERENCES, reference, reference_data, reference_info
from mtl_models.spec import AugmentationSpec, BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, TaskSpec

# The parts that import Keras, each from its module, imported when first asked for.
_KERAS_PARTS = {
    "apply_fine_tune": "mtl_models.fine_tune",
    "FineTuneSchedule": "mtl_models.fine_tune",
    "build_model": "mtl_models.factory",
    "compile_model": "mtl_models.factory",
    "freeze_for_finetune": "mtl_models.factory",
    "StopGradient": "mtl_models.layers",
    "TaskUncertainty": "mtl_models.layers",
    "ImageAugmentation": "mtl_models.augmentation",
    "CaffePreprocess": "mtl_models.applications",
    "WithinDistance": "mtl_models.metrics",
    "MultiTaskModel": "mtl_models.model",
    "plain_model": "mtl_models.plain",
}
_REGISTERING = ("mtl_models.layers", "mtl_models.metrics", "mtl_models.model", "mtl_models.augmentation",
                "mtl_models.applications")  # their classes are serializable

__all__ = [
    "REFERENCES",
    "AugmentationSpec",
    "BackboneSpec",
    "CaffePreprocess",
    "DataError",
    "FineTuneSchedule",
    "HeadSpec",
    "ImageAugmentation",
    "InputSpec",
    "ModelSpec",
    "MtlError",
    "MultiTaskModel",
    "OptimizerSpec",
    "SpecError",
    "StopGradient",
    "TaskSpec",
    "TaskUncertainty",
    "WithinDistance",
    "apply_fine_tune",
    "build_model",
    "compile_model",
    "data",
    "freeze_for_finetune",
    "plain_model",
    "reference",
    "reference_data",
    "reference_info",
]


def __getattr__(name: str):
    if name not in _KERAS_PARTS:
        raise AttributeError(f"module 'mtl_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_KERAS_PARTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_KERAS_PARTS))


def _register_layers(_keras: object) -> None:
    for module in _REGISTERING:
        importlib.import_module(module)


# Runs now if Keras is already imported, else right after Keras is.
wrapt.register_post_import_hook(_register_layers, "keras")
