"""Multi-task Keras models from typed specs: the factory, reference networks and data sets.

Pure Keras 3 and NumPy: this package never imports the search stack, so an exported
model and everything needed to rebuild it live without Ray or Optuna. Importing it
registers the custom layers, so ``keras.models.load_model(path, safe_mode=True)``
loads a saved model with no ``custom_objects``.
"""

from mtl_models import data
from mtl_models.errors import DataError, MtlError, SpecError
from mtl_models.factory import build_model, compile_model, freeze_for_finetune
from mtl_models.layers import StopGradient, TaskUncertainty
from mtl_models.metrics import WithinDistance
from mtl_models.model import MultiTaskModel
from mtl_models.reference import REFERENCES, reference, reference_data, reference_info
from mtl_models.spec import BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, TaskSpec

__all__ = [
    "REFERENCES",
    "BackboneSpec",
    "DataError",
    "HeadSpec",
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
    "build_model",
    "compile_model",
    "data",
    "freeze_for_finetune",
    "reference",
    "reference_data",
    "reference_info",
]
