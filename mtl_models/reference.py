"""The five reference networks (a)–(e) this project grew out of, by name.

``reference(name, train=...)`` returns the network's :class:`ModelSpec`; with a training
split, its inputs carry that split's normalisation statistics. ``reference_data(name)``
loads the data set the network was made for.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl_models.data import Dataset, example_b_source, load_dataset, normalized_inputs, write_example_b
from mtl_models.errors import DataError, SpecError
from mtl_models.spec import BackboneSpec, HeadSpec, InputSpec, ModelSpec, OptimizerSpec, TaskSpec

__all__ = ["REFERENCES", "Reference", "reference", "reference_data", "reference_info"]


@dataclass(frozen=True)
class Reference:
    """A reference network: its data set and tasks, how it is split and judged, and how it is built."""

    name: str
    title: str
    dataset: str
    tasks: tuple[str, ...]  # the task names its heads are built for, in head order
    stratify: str | None  # the classification task the split is stratified by
    select_by: str  # the task whose score picks the best model
    build: Callable[[tuple[InputSpec, ...], dict[str, TaskSpec]], ModelSpec] = field(repr=False)
    dataset_options: dict[str, Any] = field(default_factory=dict)


def _a(inputs, tasks) -> ModelSpec:
    # Digit + colour from one image; conv layers with a ResNet-style Add skip, two softmax heads.
    return ModelSpec(
        name="reference_a",
        inputs=inputs,
        backbone=BackboneSpec(blocks=2, filters=(32, 64), residual=True, dropout=0.1),
        heads=(HeadSpec(tasks["digit"], units=64, dropout=0.2), HeadSpec(tasks["colour"], units=16)),
    )


def _b(inputs, tasks) -> ModelSpec:
    # Three Conv-BN-ReLU-MaxPool-Dropout(0.3) blocks; B reads A's hidden layer; C behind a stop-gradient.
    return ModelSpec(
        name="reference_b",
        inputs=inputs,
        backbone=BackboneSpec(blocks=3, filters=(64, 64, 128), dropout=0.3, global_pooling="flatten"),
        heads=(
            HeadSpec(tasks["A"], units=128, dropout=0.5, loss_weight=1.0),
            HeadSpec(tasks["B"], units=256, dropout=0.5, transfer_from=("A",), loss_weight=1.5),
            HeadSpec(tasks["C"], units=64, dropout=0.3, stop_gradient=True, loss_weight=0.3),
        ),
        optimizer=OptimizerSpec("adam", 1e-3),
    )


def _c(inputs, tasks) -> ModelSpec:
    # Three inputs (two tabular, one image) -> binary class, per-pixel mask, linear regression.
    return ModelSpec(
        name="reference_c",
        inputs=inputs,
        backbone=BackboneSpec(blocks=2, filters=(16, 32), vector_units=32, dense_units=64),
        heads=(
            HeadSpec(tasks["label"], units=32),
            HeadSpec(tasks["mask"], units=16),
            HeadSpec(tasks["value"], units=32),
        ),
    )


def _d(inputs, tasks) -> ModelSpec:
    # Coloured digits: digit (softmax, sparse CE) and colour (sigmoid, binary CE).
    return ModelSpec(
        name="reference_d",
        inputs=inputs,
        backbone=BackboneSpec(blocks=2, filters=(32, 64), dropout=0.25),
        heads=(HeadSpec(tasks["digit"], units=64, dropout=0.3), HeadSpec(tasks["colour"], units=16)),
    )


def _e(inputs, tasks) -> ModelSpec:
    # Shapes: type, colour and midpoint from hard-shared conv layers (separate branches as the baseline).
    return ModelSpec(
        name="reference_e",
        inputs=inputs,
        backbone=BackboneSpec(blocks=3, filters=(16, 32, 32), global_pooling="flatten"),
        heads=(
            HeadSpec(tasks["shape"], units=64),
            HeadSpec(tasks["colour"], units=32),
            HeadSpec(tasks["midpoint"], units=64),
        ),
    )


REFERENCES: dict[str, Reference] = {
    "a": Reference("a", "digit + synthetic colour, residual backbone", "digits", ("digit", "colour"), "digit",
                   "digit", _a, {"colour_task": "softmax"}),
    "b": Reference("b", "A 10-class, B 32-class, C in [0,1]; transfer A->B, stop-gradient on C", "npz",
                   ("A", "B", "C"), "A", "B", _b),
    "c": Reference("c", "three inputs -> binary class, segmentation mask, regression", "segmentation",
                   ("label", "mask", "value"), "label", "mask", _c),
    "d": Reference("d", "coloured digits: digit (softmax) and colour (sigmoid)", "digits", ("digit", "colour"),
                   "digit", "digit", _d, {"colour_task": "binary"}),
    "e": Reference("e", "shapes: type, colour, midpoint", "shapes", ("shape", "colour", "midpoint"), "shape",
                   "midpoint", _e),
}


def reference_info(name: str) -> Reference:
    """The :class:`Reference` record for network ``name`` (``"a"`` to ``"e"``)."""
    try:
        return REFERENCES[name]
    except KeyError:
        raise SpecError("reference", f"must be one of {sorted(REFERENCES)}", name) from None


def reference_data(name: str, *, n_samples: int | None = None, seed: int = 0, path: str | Path | None = None) -> Dataset:
    """Load the data set network ``name`` was made for.

    Network (b) reads an NPZ file (X (N,32,32), y (N,3)); without ``path`` a generated
    example file in that format is written to a temporary directory, loaded into memory,
    and deleted with its directory.
    """
    ref = reference_info(name)
    options = dict(ref.dataset_options)
    if n_samples is not None:
        options["n_samples"] = n_samples
    if ref.dataset != "npz":
        return load_dataset(ref.dataset, seed=seed, **options)
    if path is not None:
        return load_dataset("npz", source=example_b_source(str(path)))
    with tempfile.TemporaryDirectory(prefix="mtl_b_") as directory:
        generated = write_example_b(Path(directory) / "example_b.npz", n_samples=n_samples or 1000, seed=seed)
        return load_dataset("npz", source=example_b_source(generated))


def reference(name: str, *, train: Dataset | None = None) -> ModelSpec:
    """The spec of reference network ``name``.

    With ``train`` (the training split), inputs and tasks come from it and the inputs
    carry its normalisation statistics; without, a few samples of the reference data
    set give the shapes and tasks (no normalisation). Raises :class:`DataError` when
    ``train`` lacks a task the network has a head for.
    """
    ref = reference_info(name)
    data = train if train is not None else reference_data(name, n_samples=32)
    tasks = {t.name: t for t in data.tasks}
    missing = [t for t in ref.tasks if t not in tasks]
    if missing:
        raise DataError(f"`train` must hold the tasks of reference network {name!r} {list(ref.tasks)}, but data "
                        f"set {data.name!r} has the tasks {list(tasks)} (missing {missing}).")
    inputs = normalized_inputs(data) if train is not None else data.input_specs()
    return ref.build(tuple(inputs), tasks)
