"""Data sets, splits, normalisation and NPZ loading: conventions hold, bad input is named."""

import ast
import pathlib
import pickle
import time

import numpy as np
import pytest

from mtl_models.data import (
    COLOUR_NAMES,
    DATASETS,
    N_GLYPHS,
    SHAPE_NAMES,
    Dataset,
    NpzSource,
    NpzTask,
    dataset_options,
    example_b_source,
    glyph_set,
    load_dataset,
    load_digits,
    load_glyphs,
    load_npz,
    load_segmentation,
    load_shapes,
    normalization_stats,
    normalized_inputs,
    split,
    write_example_b,
)
from mtl_models.data.shapes import COLOURS
from mtl_models.data.split import MIN_VARIANCE
from mtl_models.errors import DataError
from mtl_models.spec import TaskSpec

DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "mtl_models" / "data"


def check_conventions(ds: Dataset) -> None:
    """Every target follows the convention its task kind promises the model factory."""
    n = len(ds)
    images = [a for a in ds.inputs.values() if a.ndim == 4]
    for array in ds.inputs.values():
        assert array.dtype == np.float32 and array.ndim in (2, 4) and len(array) == n
        assert np.isfinite(array).all()
    assert set(ds.targets) == {t.name for t in ds.tasks}
    for task in ds.tasks:
        y = ds.targets[task.name]
        if task.kind == "classification":
            assert y.dtype == np.int32 and y.shape == (n,)
            assert 0 <= y.min() and y.max() < task.num_classes
        elif task.kind == "binary":
            assert y.dtype == np.float32 and y.shape == (n, 1) and set(np.unique(y)) <= {0.0, 1.0}
        elif task.kind == "multilabel":
            assert y.dtype == np.float32 and y.shape == (n, task.num_classes) and set(np.unique(y)) <= {0.0, 1.0}
        elif task.kind == "regression":
            assert y.dtype == np.float32 and y.shape == (n, task.output_dim)
            if task.activation == "sigmoid":
                assert 0.0 <= y.min() and y.max() <= 1.0
        else:
            height, width = images[0].shape[1:3]
            if task.num_classes == 1:
                assert y.dtype == np.float32 and y.shape == (n, height, width, 1)
                assert set(np.unique(y)) <= {0.0, 1.0}
            else:
                assert y.dtype == np.int32 and y.shape == (n, height, width)


def _same(a: Dataset, b: Dataset) -> bool:
    arrays = lambda d: [*d.inputs.values(), *d.targets.values()]
    return all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b), strict=True))


@pytest.fixture(scope="module")
def example_b(tmp_path_factory):
    return write_example_b(tmp_path_factory.mktemp("b") / "b.npz", n_samples=320, seed=3)


# -- every data set -------------------------------------------------------------------------------


# Each loader as the registry names it, small, with what it declares: inputs in order as (name, per-sample
# shape), tasks as (name, kind, classes or output_dim), each target's dtype, per-sample shape and values
# (an int k: labels 0..k-1, each present; "01": only 0 and 1; (low, high): bounds; None: finite), and the
# task its reference network stratifies the split by.
DECLARED = {
    "shapes": {
        "options": {"n_samples": 120, "image_size": 24},
        "inputs": [("image", (24, 24, 3))],
        "tasks": [("shape", "classification", 4), ("colour", "classification", 5), ("midpoint", "regression", 2)],
        "targets": {"shape": (np.int32, (), 4), "colour": (np.int32, (), 5), "midpoint": (np.float32, (2,), (0, 1))},
        "stratify": "shape",
    },
    "digits": {
        "options": {"n_samples": 200},
        "inputs": [("image", (28, 28, 3))],
        "tasks": [("digit", "classification", 10), ("colour", "classification", 5)],
        "targets": {"digit": (np.int32, (), 10), "colour": (np.int32, (), 5)},
        "stratify": "digit",
    },
    "digits_binary": {
        "options": {"n_samples": 200, "colour_task": "binary"},
        "inputs": [("image", (28, 28, 3))],
        "tasks": [("digit", "classification", 10), ("colour", "binary", 1)],
        "targets": {"digit": (np.int32, (), 10), "colour": (np.float32, (1,), "01")},
        "stratify": "digit",
    },
    "segmentation": {
        "options": {"n_samples": 80},
        "inputs": [("tabular_a", (10,)), ("image", (32, 32, 3)), ("tabular_b", (5,))],
        "tasks": [("label", "binary", 1), ("mask", "segmentation", 1), ("value", "regression", 1)],
        "targets": {"label": (np.float32, (1,), "01"), "mask": (np.float32, (32, 32, 1), "01"),
                    "value": (np.float32, (1,), None)},
        "stratify": "label",
    },
    "glyphs": {
        "options": {"n_samples": 160},
        "inputs": [("image", (32, 32, 3))],
        "tasks": [("left", "classification", 8), ("sum", "classification", 8), ("gap", "regression", 1)],
        "targets": {"left": (np.int32, (), 8), "sum": (np.int32, (), 8), "gap": (np.float32, (1,), (0, 1))},
        "stratify": "left",
    },
    "npz": {  # network (b)'s format, in a file written with these options (see the `load` fixture)
        "options": {"n_samples": 160},
        "inputs": [("image", (32, 32, 1))],
        "tasks": [("A", "classification", 10), ("B", "classification", 32), ("C", "regression", 1)],
        "targets": {"A": (np.int32, (), 10), "B": (np.int32, (), 32), "C": (np.float32, (1,), (0, 1))},
        "stratify": "A",
    },
}


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    """``load(which, seed)``: the data set ``which`` names in DECLARED, through the registry."""
    directory = tmp_path_factory.mktemp("npz")

    def load_one(which, seed):
        options = DECLARED[which]["options"]
        if which == "npz":
            path = write_example_b(directory / f"b_{seed}.npz", seed=seed, **options)
            return load_dataset("npz", source=example_b_source(path))
        return load_dataset(which.split("_")[0], seed=seed, **options)

    return load_one


def _rows(ds: Dataset) -> list[bytes]:
    """One key per row: the bytes of all its inputs and targets."""
    arrays = [*ds.inputs.values(), *ds.targets.values()]
    return [b"".join(a[i].tobytes() for a in arrays) for i in range(len(ds))]


def test_every_registered_loader_is_declared_here():
    # images: a folder and label table of the user's, in 0-255 units, read and checked in test_images.py
    assert {which.split("_")[0] for which in DECLARED} == set(DATASETS) - {"images"}


@pytest.mark.parametrize("which", sorted(DECLARED))
def test_loader_declares_its_inputs_tasks_and_targets(which, load):
    declared = DECLARED[which]
    ds = load(which, 0)
    n = declared["options"]["n_samples"]
    assert len(ds) == n
    assert [(s.name, s.shape) for s in ds.input_specs()] == declared["inputs"]
    for name, shape in declared["inputs"]:
        array = ds.inputs[name]
        assert array.dtype == np.float32 and array.shape == (n, *shape) and np.isfinite(array).all()
        if len(shape) == 3:
            assert 0.0 <= array.min() and array.max() <= 1.0
    sizes = [(t.name, t.kind, t.output_dim if t.kind == "regression" else t.num_classes) for t in ds.tasks]
    assert sizes == declared["tasks"]
    assert list(ds.targets) == [t.name for t in ds.tasks]
    for name, (dtype, shape, values) in declared["targets"].items():
        y = ds.targets[name]
        assert y.dtype == dtype and y.shape == (n, *shape), name
        if isinstance(values, int):
            assert set(np.unique(y)) == set(range(values)), name  # in range, and every class present
        elif values == "01":
            assert set(np.unique(y)) == {0.0, 1.0}, name
        elif values is not None:
            assert values[0] <= y.min() and y.max() <= values[1], name
        assert np.isfinite(y).all(), name
    check_conventions(ds)


@pytest.mark.parametrize("which", sorted(DECLARED))
def test_loader_gives_the_same_data_for_the_same_seed(which, load):
    first = load(which, 0)
    assert _same(first, load(which, 0))
    assert not _same(first, load(which, 1))


@pytest.mark.parametrize("which", sorted(DECLARED))
def test_seeded_split_of_each_loader_is_disjoint_and_stratified(which, load):
    ds, stratify = load(which, 0), DECLARED[which]["stratify"]
    parts = split(ds, val_fraction=0.25, test_fraction=0.25, seed=3, stratify=stratify)
    rows = _rows(ds)
    assert len(set(rows)) == len(ds)  # distinct rows, so a row's bytes say which row it is
    train, val, test = (set(_rows(p)) for p in (parts.train, parts.val, parts.test))
    assert not (train & val or train & test or val & test) and train | val | test == set(rows)
    assert sum(parts.sizes().values()) == len(ds)
    labels = ds.targets[stratify].reshape(-1).astype(int)
    classes = labels.max() + 1
    for part, fraction in ((parts.train, 0.5), (parts.val, 0.25), (parts.test, 0.25)):
        counts = np.bincount(part.targets[stratify].reshape(-1).astype(int), minlength=classes)
        # Two stratified draws each give every class its share rounded up or down: within 2 of the exact share.
        assert np.abs(counts - fraction * np.bincount(labels, minlength=classes)).max() < 2, part
    again = split(ds, val_fraction=0.25, test_fraction=0.25, seed=3, stratify=stratify)
    assert all(_same(a, b) for a, b in zip((again.train, again.val, again.test), (parts.train, parts.val, parts.test)))


def test_npz_example_b_round_trip(example_b):
    ds = load_npz(example_b_source(example_b))
    check_conventions(ds)
    assert ds.name == "b" and len(ds) == 320
    assert ds.inputs["image"].shape == (320, 32, 32, 1)
    assert [t.name for t in ds.tasks] == ["A", "B", "C"]
    with np.load(example_b) as raw:
        np.testing.assert_array_equal(raw["X"], ds.inputs["image"][..., 0])
        np.testing.assert_array_equal(raw["y"][:, 1], ds.targets["B"])
    assert np.bincount(ds.targets["B"], minlength=32).tolist() == [10] * 32
    # C is the brightness scale: the brightest pixel tracks it.
    brightest = ds.inputs["image"].reshape(320, -1).max(axis=1)
    assert np.corrcoef(brightest, ds.targets["C"][:, 0])[0, 1] > 0.95
    assert _same(ds, load_npz(example_b_source(write_example_b(example_b.with_name("again.npz"), n_samples=320,
                                                                  seed=3))))


def test_data_modules_never_import_keras_or_the_search_stack():
    forbidden = {"tensorflow", "keras", "ray", "optuna", "keras_tuner", "search"}
    for path in DATA_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{path.name} imports {roots & forbidden}"


# -- the generators say what they promise -------------------------------------------------------


def test_shapes_midpoint_and_colour_are_right():
    ds = load_shapes(n_samples=400, image_size=32, seed=5)
    image, midpoint = ds.inputs["image"], ds.targets["midpoint"]
    assert ds.tasks[0].num_classes == len(SHAPE_NAMES) and ds.tasks[1].num_classes == len(COLOUR_NAMES)
    assert np.bincount(ds.targets["shape"]).tolist() == [100] * 4
    rows = np.minimum((midpoint * 32).astype(int), 31)  # (x, y) -> the pixel at the shape's centre
    centre = image[np.arange(400), rows[:, 1], rows[:, 0]]
    assert (centre.max(axis=1) > 0.5).all()  # every shape covers its midpoint; the background is dark
    nearest = np.argmin(((centre[:, None, :] - np.asarray(COLOURS)[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, ds.targets["colour"])


def test_glyphs_draw_the_left_glyph_and_sum_says_nothing_about_one_glyph_alone():
    ds = load_glyphs(n_samples=400, image_size=32, seed=5)
    glyphs, image = glyph_set(), ds.inputs["image"]
    assert len(glyphs) == N_GLYPHS and len({g.tobytes() for g in glyphs}) == N_GLYPHS
    # Glyph colours are >= 0.5 per channel, the background <= 0.1, noise 0.03: 0.3 parts them at over 6 sigma.
    ink = image.max(axis=-1) > 0.3
    left_ink = ink[:, :, :16].reshape(400, -1).sum(axis=1)
    np.testing.assert_array_equal(left_ink, glyphs.sum(axis=(1, 2))[ds.targets["left"]] * 4)  # 2x2 px per cell
    for row in range(5):  # the ink's shape, cropped to its box, is the labelled glyph's
        box = ink[row, :, :16]
        ys, xs = np.nonzero(box)
        cells = box[ys.min():ys.max() + 1:2, xs.min():xs.max() + 1:2]
        glyph = glyphs[ds.targets["left"][row]]
        gy, gx = np.nonzero(glyph)
        np.testing.assert_array_equal(cells, glyph[gy.min():gy.max() + 1, gx.min():gx.max() + 1])
    gap = ds.targets["gap"][:, 0]
    assert 0.0 < gap.min() and gap.max() < 1.0
    # sum = (left + right) mod 8 with the right glyph uniform: for every left glyph, every sum is about as likely.
    many = load_glyphs(n_samples=8000, image_size=16, seed=1)
    table = np.zeros((N_GLYPHS, N_GLYPHS), dtype=int)
    np.add.at(table, (many.targets["left"], many.targets["sum"]), 1)
    expected = 8000 / N_GLYPHS**2
    assert np.abs(table - expected).max() < 5 * np.sqrt(expected), table


def test_shapes_are_fast():
    start = time.perf_counter()
    ds = load_shapes(n_samples=10_000)
    assert len(ds) == 10_000 and time.perf_counter() - start < 5.0


def test_digits_colours_and_limits():
    ds = load_digits(n_samples=100, colour_task="binary", seed=2)
    red = ds.targets["colour"][:, 0] == 0
    assert ds.inputs["image"][red][..., 1:].max() == 0.0 and ds.inputs["image"][~red][..., [0, 2]].max() == 0.0
    assert ds.tasks[1].kind == "binary"
    assert load_digits(n_samples=30, seed=2).tasks[1].num_classes >= 3
    with pytest.raises(DataError, match="n_samples"):
        load_digits(n_samples=5001)
    with pytest.raises(DataError, match="colour_task"):
        load_digits(n_samples=10, colour_task="rainbow")


def test_segmentation_tasks_follow_their_rules():
    ds = load_segmentation(n_samples=300, seed=4)
    image, mask = ds.inputs["image"].mean(-1, keepdims=True), ds.targets["mask"] == 1
    assert image[mask].mean() > image[~mask].mean() + 0.4
    assert 0.3 < ds.targets["label"].mean() < 0.7
    area = ds.targets["mask"].reshape(300, -1).mean(1, keepdims=True)
    design = np.hstack([ds.inputs["tabular_b"], area, np.ones((300, 1), np.float32)])
    coef, *_ = np.linalg.lstsq(design, ds.targets["value"], rcond=None)
    assert np.std(design @ coef - ds.targets["value"]) < 0.08  # linear in tabular_b and area, plus small noise


# -- Dataset validation -----------------------------------------------------------------------------


def _vector_dataset(n=1000, seed=0):
    """Input ``id`` is 0..n-1 (a unique id per row); ``cls`` has 3 unbalanced classes."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(3, size=n, p=[0.6, 0.3, 0.1]).astype(np.int32)
    tasks = (TaskSpec("cls", "classification", num_classes=3), TaskSpec("flag", "binary"), TaskSpec("r", "regression"))
    return Dataset(
        name="ids",
        inputs={"id": np.arange(n, dtype=np.float32)[:, None], "x": rng.normal(3, 2, (n, 4)).astype(np.float32)},
        targets={"cls": cls, "flag": (cls == 0).astype(np.float32)[:, None], "r": rng.random((n, 1), np.float32)},
        tasks=tasks,
    )


def test_dataset_rejects_broken_arrays():
    good = _vector_dataset(10)
    inputs, targets, tasks = dict(good.inputs), dict(good.targets), good.tasks
    with pytest.raises(DataError, match=r"same length.*targets\['cls'\]: 9"):
        Dataset("d", inputs, {**targets, "cls": targets["cls"][:9]}, tasks)
    with pytest.raises(DataError, match=r"missing for \['r'\]"):
        Dataset("d", inputs, {k: v for k, v in targets.items() if k != "r"}, tasks)
    with pytest.raises(DataError, match=r"without a task for \['extra'\]"):
        Dataset("d", inputs, {**targets, "extra": targets["r"]}, tasks)
    with pytest.raises(DataError, match="'cls'.*int32"):
        Dataset("d", inputs, {**targets, "cls": targets["cls"].astype(np.int64)}, tasks)
    with pytest.raises(DataError, match=r"'cls'.*\[0, 3\), but got 3"):
        Dataset("d", inputs, {**targets, "cls": np.full(10, 3, np.int32)}, tasks)
    with pytest.raises(DataError, match="'x'.*float32"):
        Dataset("d", {**inputs, "x": inputs["x"].astype(np.float64)}, targets, tasks)
    mask_task = TaskSpec("m", "segmentation")
    image = {"image": np.zeros((10, 8, 8, 3), np.float32)}
    with pytest.raises(DataError, match=r"'m'.*\(N, 8, 8, 1\)"):
        Dataset("d", image, {"m": np.zeros((10, 6, 6, 1), np.float32)}, (mask_task,))


def test_dataset_subset_and_pickle():
    ds = _vector_dataset(20)
    part = ds.subset([3, 1])
    assert part.inputs["id"][:, 0].tolist() == [3.0, 1.0] and part.targets["cls"].tolist() == ds.targets["cls"][[3, 1]].tolist()
    assert len(ds.subset([])) == 0 and ds.subset([]).inputs["x"].shape == (0, 4)
    assert _same(pickle.loads(pickle.dumps(ds)), ds)
    assert repr(ds).startswith("Dataset(name='ids', n=20, inputs={id: float32[20, 1]")
    with pytest.raises(DataError, match="indices"):
        ds.subset([20])


# -- split and normalisation ------------------------------------------------------------------------


def test_split_is_disjoint_sized_and_stratified():
    ds = _vector_dataset(1000)
    parts = split(ds, val_fraction=0.2, test_fraction=0.1, seed=7, stratify="cls")
    assert parts.sizes() == {"train": 700, "val": 200, "test": 100}
    ids = [set(p.inputs["id"][:, 0].astype(int)) for p in (parts.train, parts.val, parts.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and set().union(*ids) == set(range(1000))
    whole = np.bincount(ds.targets["cls"]) / 1000
    for part in (parts.train, parts.val, parts.test):
        np.testing.assert_allclose(np.bincount(part.targets["cls"], minlength=3) / len(part), whole, atol=0.02)
    again, other = split(ds, seed=7, stratify="cls"), split(ds, seed=8, stratify="cls")
    assert _same(again.train, parts.train) and not _same(other.train, parts.train)
    assert split(ds, stratify="flag").stratify == "flag"


def test_split_without_test_gives_empty_test_with_shapes():
    parts = split(_vector_dataset(50), val_fraction=0.2, test_fraction=0.0, seed=1)
    assert parts.sizes() == {"train": 40, "val": 10, "test": 0}
    assert parts.test.inputs["x"].shape == (0, 4) and parts.test.targets["flag"].shape == (0, 1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": float("nan")}, "val_fraction"),
        ({"val_fraction": "0.2"}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction"),
        ({"stratify": "nope"}, "stratify='nope'"),
        ({"stratify": "r"}, "stratify='r'.*regression"),
        ({"seed": -1}, "seed"),
    ],
)
def test_split_rejects_bad_arguments(options, named):
    with pytest.raises(DataError, match=named):
        split(_vector_dataset(50), **options)


def test_normalisation_uses_the_training_split_only():
    shapes = load_shapes(n_samples=200, image_size=16, seed=0)
    for ds in (shapes, _vector_dataset(300)):
        parts = split(ds, seed=3)
        stats = normalization_stats(parts.train)
        for name, array in parts.train.inputs.items():
            axes = tuple(range(array.ndim - 1))
            np.testing.assert_allclose(stats[name][0], array.astype(np.float64).mean(axes), rtol=1e-6, atol=1e-9)
            expected_var = np.maximum(array.astype(np.float64).var(axes), MIN_VARIANCE)
            np.testing.assert_allclose(stats[name][1], expected_var, rtol=1e-6)
            assert stats[name][0] != tuple(ds.inputs[name].astype(np.float64).mean(axes))
        specs = normalized_inputs(parts.train)
        assert [s.shape for s in specs] == [s.shape for s in ds.input_specs()]
        assert all(s.mean == stats[s.name][0] and s.variance == stats[s.name][1] for s in specs)
    assert len(stats["image" if "image" in stats else "x"][0]) in (3, 4)


def test_constant_feature_variance_is_floored():
    ds = _vector_dataset(20)
    flat = Dataset("c", {"k": np.ones((20, 2), np.float32)}, {"r": ds.targets["r"]}, (ds.tasks[2],))
    assert normalization_stats(flat)["k"] == ((1.0, 1.0), (MIN_VARIANCE, MIN_VARIANCE))
    assert normalized_inputs(flat)[0].variance == (MIN_VARIANCE, MIN_VARIANCE)


# -- bad NPZ files ----------------------------------------------------------------------------------

TASK_A = NpzTask(TaskSpec("A", "classification", num_classes=3), array="y", column=0)
TASK_C = NpzTask(TaskSpec("C", "regression", activation="sigmoid"), array="y", column=1)


def _write(path, **arrays):
    np.savez(path, **arrays)
    return NpzSource(path=str(path), tasks=(TASK_A, TASK_C))


def _good(n=6):
    y = np.stack([np.arange(n) % 3, np.linspace(0, 1, n)], axis=1).astype(np.float32)
    return {"X": np.zeros((n, 8, 8), np.float32), "y": y}


def test_good_npz_loads_with_vectors_and_float_labels(tmp_path):
    source = _write(tmp_path / "ok.npz", **_good(), T=np.ones((6, 2)))
    ds = load_npz(NpzSource(path=source.path, tasks=source.tasks, inputs={"image": "X", "extra": "T"}))
    check_conventions(ds)
    assert ds.inputs["image"].shape == (6, 8, 8, 1) and ds.inputs["extra"].shape == (6, 2)
    assert ds.targets["A"].tolist() == [0, 1, 2, 0, 1, 2]


def _bad(arrays_change):
    def make(tmp_path):
        arrays = _good()
        arrays_change(arrays)
        return _write(tmp_path / "bad.npz", **arrays)

    return make


def _set(name, column, value, row=2):
    def change(arrays):
        arrays[name][row, column] = value

    return change


TASK_M = NpzTask(TaskSpec("m", "segmentation"), array="M")


def _mask(mask_shape, task=TASK_M, inputs=None):
    """A file with images ``X`` (6, 8, 8) and masks ``M`` (6, *mask_shape)."""
    def make(tmp_path):
        np.savez(tmp_path / "bad.npz", **_good(), M=np.zeros((6, *mask_shape), np.float32))
        return NpzSource(path=str(tmp_path / "bad.npz"), tasks=(task,), inputs=inputs or {"image": "X"})

    return make


def _raw_file(content):
    def make(tmp_path):
        (tmp_path / "bad.npz").write_bytes(content)
        return NpzSource(path=str(tmp_path / "bad.npz"), tasks=(TASK_A,))

    return make


BAD_NPZ = {
    "missing file": (lambda tmp_path: NpzSource(path=str(tmp_path / "none.npz"), tasks=(TASK_A,)),
                     "none.npz.*does not exist"),
    "empty file": (_raw_file(b""), "bad.npz.*is not a readable NPZ file"),
    "garbage": (_raw_file(bytes(range(256)) * 4), "bad.npz.*is not a readable NPZ file"),
    "zip garbage": (_raw_file(b"PK\x03\x04" + b"\x00" * 64), "bad.npz.*is not a readable NPZ file"),
    "pickled": (_bad(lambda a: a.update(X=np.array([{"a": 1}] * 6, dtype=object))),
                "'X'.*pickled object array, which is refused for safety"),
    "missing array": (_bad(lambda a: a.pop("y")), r"'y'.*missing.*\['X'\]"),
    "length mismatch": (_bad(lambda a: a.update(X=a["X"][:5])), r"same length.*'X': 5, 'y': 6"),
    "nan": (_bad(_set("y", 1, np.nan)), "'y'.*1 NaN.*row 2"),
    "inf": (_bad(_set("y", 1, np.inf)), "'y'.*1 inf.*row 2"),
    "label out of range": (_bad(_set("y", 0, 7)), r"'y' column 0.*\[0, 3\).*got 7"),
    "negative label": (_bad(_set("y", 0, -1)), r"'y' column 0.*\[0, 3\).*got -1"),
    "non-integer label": (_bad(_set("y", 0, 1.5)), "'y' column 0.*whole numbers.*1.5"),
    "wrong image ndim": (_bad(lambda a: a.update(X=np.zeros((6, 8, 8, 1, 1), np.float32))), "'X'.*shape"),
    "column out of range": (_bad(lambda a: a.update(y=a["y"][:, :1])), r"'y'.*\[0, 1\).*column=1"),
    "column of a 1-D array": (_bad(lambda a: a.update(y=a["y"][:, 0])), "'y'.*2-D.*column=0"),
    "sigmoid target out of range": (_bad(_set("y", 1, 1.25)), r"'y' column 1.*\[0, 1\].*1.25"),
    "text array": (_bad(lambda a: a.update(X=np.array(["a"] * 6))), "'X'.*numbers"),
    "mask smaller than its image": (_mask((6, 6)), (r"'M' in '.*bad\.npz' \(task 'm'\): a segmentation mask must "
                                    r"have the height and width of image input 'image'.*\(N, 8, 8\).*\(6, 6, 6\)")),
    "mask taller than its image": (_mask((9, 8, 1)), r"'M' in '.*bad\.npz' \(task 'm'\).*\(N, 8, 8, 1\).*\(6, 9, 8, 1\)"),
    "mask without an image": (_mask((8, 8), inputs={"features": "y"}),
                              r"'M' in '.*bad\.npz' \(task 'm'\).*exactly one image input.*\[\]"),
    "mask naming a missing input": (_mask((8, 8), task=NpzTask(TaskSpec("m", "segmentation", input="photo"), "M")),
                                    r"'M' in '.*bad\.npz' \(task 'm'\).*\['image'\].*input='photo'"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_refused_naming_the_array(tmp_path, case):
    make, message = BAD_NPZ[case]
    with pytest.raises(DataError, match=message):
        load_npz(make(tmp_path))


@pytest.mark.parametrize("mask_shape", [(8, 8), (8, 8, 1)])
def test_npz_mask_that_fits_its_image_loads(tmp_path, mask_shape):
    ds = load_npz(_mask(mask_shape)(tmp_path))
    check_conventions(ds)
    assert ds.targets["m"].shape == (6, 8, 8, 1)


def test_npz_image_shape_is_checked(tmp_path):
    source = _write(tmp_path / "img.npz", **_good())
    assert load_npz(NpzSource(path=source.path, tasks=source.tasks, image_shape=(8, 8, 1))).name == "img"
    with pytest.raises(DataError, match=r"'X'.*\(32, 32, 1\).*\(8, 8, 1\)"):
        load_npz(NpzSource(path=source.path, tasks=source.tasks, image_shape=(32, 32, 1)))
    with pytest.raises(DataError, match="bare array"):
        np.save(tmp_path / "one.npy", np.zeros(3))
        load_npz(NpzSource(path=str(tmp_path / "one.npy"), tasks=source.tasks))


def test_npz_descriptions_are_validated():
    with pytest.raises(DataError, match="column"):
        NpzTask(TaskSpec("A", "binary"), column=-1)
    with pytest.raises(DataError, match="unique"):
        NpzSource(path="f.npz", tasks=(TASK_A, TASK_A))
    with pytest.raises(DataError, match="image_shape"):
        NpzSource(path="f.npz", tasks=(TASK_A,), image_shape=(0, 3))
    with pytest.raises(DataError, match=r"unknown key\(s\) \['colum'\]"):
        NpzTask.from_dict({"task": {"name": "A", "kind": "binary"}, "colum": 0})


# -- registry -------------------------------------------------------------------------------------


def test_registry_loads_by_name_and_names_bad_options(example_b):
    assert DATASETS == ("shapes", "digits", "segmentation", "glyphs", "npz", "images")
    assert _same(load_dataset("shapes", n_samples=20, seed=4), load_shapes(n_samples=20, seed=4))
    assert dataset_options("digits") == ("n_samples", "colour_task", "seed")
    by_source = load_dataset("npz", source=example_b_source(example_b))
    plain = load_dataset("npz", path=str(example_b), tasks=[
        {"task": {"name": "A", "kind": "classification", "num_classes": 10}, "column": 0},
        {"task": {"name": "B", "kind": "classification", "num_classes": 32}, "column": 1},
        {"task": {"name": "C", "kind": "regression", "activation": "sigmoid", "metrics": ["mae"]}, "column": 2},
    ])
    assert _same(by_source, plain)
    with pytest.raises(DataError, match=r"'glyphs', 'npz', 'images'\], but got 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DataError, match=r"'image_size'.*unknown option\(s\) \['size'\]"):
        load_dataset("shapes", size=10)
    with pytest.raises(DataError, match="either `source`"):
        load_dataset("npz", source=example_b_source(example_b), path="x.npz")
    with pytest.raises(DataError, match="missing"):
        load_dataset("npz", path="x.npz")
