"""Segmentation masks as files beside the images: read back as the target arrays, fed by the pipeline as the
loss takes them, resized by nearest neighbour, and refused (naming the row and column) when they break a rule."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

import mtl_models
from mtl_models.data import Dataset, load_dataset, load_segmentation
from mtl_models.data.folder import write_image_folder
from mtl_models.data.image_files import MaskFiles
from mtl_models.errors import DataError
from mtl_models.spec import TaskSpec
from mtl_models.streaming import decode_failure, feed, pipeline


@pytest.fixture(scope="module")
def segmentation():
    return load_segmentation(n_samples=48, image_size=16, seed=0)


def _written(data, folder: Path) -> dict:
    options = write_image_folder(data, folder)
    return {**options, "path": str(folder.parent / options["path"])}


@pytest.fixture
def parts(tmp_path):
    """Three classes a pixel: background, the object's left half, its right half."""
    source = load_segmentation(n_samples=32, image_size=16, seed=1)
    mask = source.targets["mask"][..., 0].astype(np.int32)
    mask = (mask * np.where(np.arange(16) < 8, 1, 2)[None, None, :]).astype(np.int32)
    task = TaskSpec(name="parts", kind="segmentation", num_classes=3)
    data = Dataset(name="parts", inputs={"image": source.inputs["image"]}, targets={"parts": mask}, tasks=(task,))
    return data, _written(data, tmp_path / "parts")


def test_a_segmentation_folder_reads_back_as_the_same_data(segmentation, tmp_path):
    options = _written(segmentation, tmp_path / "seg")
    assert options["tasks"][1] == {"name": "mask", "kind": "segmentation", "classes": 1}
    with Image.open(tmp_path / "seg" / "masks" / "mask" / "00.png") as first:
        assert first.mode == "L" and set(np.unique(np.asarray(first))) <= {0, 255}  # visible: 0 and 255
    data = load_dataset("images", **options)
    masks = data.targets["mask"]
    assert isinstance(masks, MaskFiles) and masks.shape == (48, 16, 16, 1) and masks.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(masks), segmentation.targets["mask"])
    np.testing.assert_array_equal(data.targets["label"], segmentation.targets["label"])
    np.testing.assert_allclose(data.targets["value"], segmentation.targets["value"], rtol=1e-6)
    for name in ("tabular_a", "tabular_b"):
        np.testing.assert_allclose(data.inputs[name], segmentation.inputs[name], rtol=1e-6)


def test_a_model_scores_the_same_on_masks_from_files_as_on_the_arrays(segmentation, tmp_path):
    files = load_dataset("images", **_written(segmentation, tmp_path / "seg"))
    arrays = Dataset(name="arrays", inputs={k: np.asarray(v, np.float32) for k, v in files.inputs.items()},
                     targets={**segmentation.targets}, tasks=files.tasks)
    model = mtl_models.build_model(mtl_models.reference("c", train=arrays))
    from_files = model.evaluate(**feed(files, 16), return_dict=True, verbose=0)
    from_arrays = model.evaluate(**feed(arrays, 16), return_dict=True, verbose=0)
    assert {k for k in from_files if k.startswith("mask_")} >= {"mask_loss"}
    assert from_files == pytest.approx(from_arrays, rel=1e-5, abs=1e-6)
    history = model.fit(**feed(files.subset(np.arange(32)), 16, shuffle=True, seed=0), epochs=1, verbose=0)
    assert np.isfinite(history.history["mask_loss"][0])


@pytest.mark.parametrize("cache", ["memory", "disk", "none"])
def test_masks_of_several_classes_are_fed_as_class_indices(parts, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_IMAGE_CACHE_DIR", str(tmp_path))
    data, options = parts
    read = load_dataset("images", **{**options, "cache": cache})
    assert read.targets["parts"].shape == (32, 16, 16) and read.targets["parts"].dtype == np.int32
    np.testing.assert_array_equal(np.asarray(read.targets["parts"]), data.targets["parts"])
    for _ in range(2):  # the second epoch comes from the cache, where there is one
        fed = [y["parts"] for _, y in feed(read, 8)["x"]]
        assert all(y.dtype == tf.int32 for y in fed)
        np.testing.assert_array_equal(np.concatenate([y.numpy() for y in fed]), data.targets["parts"])


def test_masks_of_another_size_are_resized_by_nearest_neighbour(parts, tmp_path):
    data, options = parts
    folder = Path(options["path"]).parent
    for path in sorted((folder / "masks" / "parts").iterdir()):  # each stored at twice the size
        with Image.open(path) as small:
            values = np.asarray(small)
        Image.fromarray(values.repeat(2, axis=0).repeat(2, axis=1)).save(path)
    read = load_dataset("images", **options)
    np.testing.assert_array_equal(np.asarray(read.targets["parts"]), data.targets["parts"])
    fed = np.concatenate([y["parts"].numpy() for _, y in feed(read, 8)["x"]])
    np.testing.assert_array_equal(fed, data.targets["parts"])  # no value between classes


def _break(folder: Path, row: int, how) -> Path:
    path = folder / "masks" / "parts" / f"{row - 1:02d}.png"
    how(path)
    return path


BAD_MASKS = {
    "missing": (lambda p: p.unlink(), "the file does not exist"),
    "rgb": (lambda p: Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p), "one 8-bit channel"),
    "palette": (lambda p: Image.fromarray(np.zeros((16, 16), np.uint8)).convert("P").save(p), "palette image"),
    "jpeg": (lambda p: Image.fromarray(np.zeros((16, 16), np.uint8)).save(p, format="JPEG"), "must be a PNG or BMP"),
    "not a class": (lambda p: Image.fromarray(np.full((16, 16), 3, np.uint8)).save(p),
                    "holds the value 3, but its values must be class indices below the task's 3 classes"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_a_bad_mask_is_refused_naming_its_row_and_column(parts, case, tmp_path):
    _, options = parts
    how, reason = BAD_MASKS[case]
    path = _break(Path(options["path"]).parent, 5, how)
    with pytest.raises(DataError) as error:
        load_dataset("images", **options)
    assert "row 5, column 'parts'" in str(error.value) and reason in str(error.value), error.value
    assert str(path) in str(error.value)


def test_a_mask_column_that_leaves_the_folder_is_refused(parts):
    _, options = parts
    table = pd.read_csv(options["path"])
    table.loc[2, "parts"] = "../elsewhere.png"
    table.to_csv(options["path"], index=False)
    with pytest.raises(DataError, match=r"row 3, column 'parts': the path '../elsewhere.png' leaves the table's"):
        load_dataset("images", **options)


def test_a_mask_value_found_wrong_only_while_training_names_its_file(parts):
    _, options = parts
    data = load_dataset("images", **options)
    path = _break(Path(options["path"]).parent, 9, lambda p: Image.fromarray(np.full((16, 16), 7, np.uint8)).save(p))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a class index below 3"):
        for _ in pipeline(data.inputs, data.targets, 8):
            pass
    assert decode_failure(data).startswith(f"mask file {path} (row 9 of the label table) cannot be decoded: "
                                           "a mask value is not a class index below 3")
