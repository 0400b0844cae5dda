"""Images on disk with a label table: reading, checking, splitting and streaming them as ``tf.data``."""

import gc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mtl_models.data import load_dataset, load_shapes, normalization_stats, split
from mtl_models.data.folder import digits_with_centre, write_image_folder
from mtl_models.data.image_files import ImageFiles
from mtl_models.streaming import decode_failure, feed, pipeline
from mtl_models.errors import DataError


@pytest.fixture(scope="module")
def shapes():
    return load_shapes(n_samples=60, image_size=16, seed=0)


@pytest.fixture
def folder(tmp_path, shapes):
    options = write_image_folder(shapes, tmp_path / "shapes")
    options["path"] = str(tmp_path / options["path"])
    return options


def test_a_written_folder_reads_back_as_the_same_data(folder, shapes):
    data = load_dataset("images", **folder)
    files = data.inputs["image"]
    assert isinstance(files, ImageFiles) and files.shape == (60, 16, 16, 3)
    assert [t.name for t in data.tasks] == ["shape", "colour", "midpoint"]
    for name in ("shape", "colour"):
        np.testing.assert_array_equal(data.targets[name], shapes.targets[name])
    np.testing.assert_allclose(data.targets["midpoint"], shapes.targets["midpoint"], atol=1e-6)
    pixels = np.asarray(files[np.arange(5)])  # PNG is lossless: the pixels are those written, in 0-255
    np.testing.assert_array_equal(pixels, np.round(shapes.inputs["image"][:5] * 255))


def test_class_names_in_the_table_become_indices_in_the_declared_order(tmp_path, shapes):
    data = digits_with_centre(n_samples=30)
    options = write_image_folder(data, tmp_path / "digits")
    table = pd.read_csv(tmp_path / "digits" / "labels.csv")
    assert set(table["colour"]) <= {"red", "green", "blue", "yellow", "cyan"}  # names, not indices
    options["path"] = str(tmp_path / options["path"])
    options["tasks"][1]["classes"] = ["cyan", "yellow", "blue", "green", "red"]  # another order: other indices
    read = load_dataset("images", **options)
    assert read.task("colour").class_names == ("cyan", "yellow", "blue", "green", "red")
    np.testing.assert_array_equal(read.targets["colour"], 4 - data.targets["colour"])
    centre = read.targets["centre"]
    assert centre.shape == (30, 2) and 0.2 < centre.min() and centre.max() < 0.8  # the ink is near the middle


def test_a_split_column_assigns_rows_and_the_stratified_split_works_on_files(tmp_path, folder):
    data = load_dataset("images", **folder)
    splits = split(data, val_fraction=0.25, test_fraction=0.1, seed=0, stratify="shape")
    assert splits.sizes() == {"train": 39, "val": 15, "test": 6}
    table = pd.read_csv(folder["path"])
    table["part"] = ["train"] * 40 + ["val"] * 15 + ["test"] * 5
    table.to_parquet(Path(folder["path"]).with_suffix(".parquet"))
    assigned = load_dataset("images", **{**folder, "path": str(Path(folder["path"]).with_suffix(".parquet")),
                                         "split_column": "part"})
    parts = split(assigned, seed=0)
    assert parts.sizes() == {"train": 40, "val": 15, "test": 5}
    assert list(parts.val.inputs["image"].rows) == list(range(41, 56))


def test_normalisation_statistics_are_streamed_from_the_files(folder, shapes):
    data = load_dataset("images", **folder)
    mean, variance = normalization_stats(data)["image"]
    arrays = np.round(shapes.inputs["image"] * 255).astype(np.float64)
    np.testing.assert_allclose(mean, arrays.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(variance, arrays.var(axis=(0, 1, 2)), rtol=1e-9)


@pytest.mark.parametrize("cache", ["none", "memory", "disk"])
def test_the_pipeline_yields_every_image_with_its_labels_once_an_epoch(folder, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_IMAGE_CACHE_DIR", str(tmp_path))
    data = load_dataset("images", **{**folder, "cache": cache})
    pixels = np.asarray(data.inputs["image"])
    ds = feed(data, 16, shuffle=True, seed=3)["x"]
    orders = []
    for _ in range(2):
        seen_x, seen_shape = [], []
        for x, y in ds:
            assert x["image"].dtype.name == "float32" and x["image"].shape[1:] == (16, 16, 3)
            seen_x.append(x["image"].numpy())
            seen_shape.append(y["shape"].numpy())
        images, labels = np.concatenate(seen_x), np.concatenate(seen_shape)
        order = [int(np.flatnonzero((pixels == image).all(axis=(1, 2, 3)))[0]) for image in images]
        assert sorted(order) == list(range(60))  # every image, once
        np.testing.assert_array_equal(labels, data.targets["shape"][order])  # with its own labels
        orders.append(order)
    assert orders[0] != orders[1]  # shuffled anew each epoch
    if cache == "disk":
        assert list(tmp_path.glob("mtl-image-cache-*/images*"))
        del ds, data
        gc.collect()
        assert not list(tmp_path.glob("mtl-image-cache-*"))  # gone with its data set


def test_images_of_another_size_are_resized_and_jpeg_is_read(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    for i in range(4):
        Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(tmp_path / "img" / f"{i}.jpg")
    pd.DataFrame({"file": [f"img/{i}.jpg" for i in range(4)], "y": [0, 1, 0, 1]}).to_csv(tmp_path / "t.csv")
    data = load_dataset("images", path=str(tmp_path / "t.csv"), image_shape=[16, 16, 3],
                        tasks=[{"name": "y", "kind": "binary"}])
    batch = next(iter(pipeline(data.inputs, None, 4)))
    assert batch["image"].shape == (4, 16, 16, 3)
    assert data.targets["y"].tolist() == [[0.0], [1.0], [0.0], [1.0]]


def test_a_file_that_fails_to_decode_is_named_with_its_row(folder):
    data = load_dataset("images", **folder)
    target = data.inputs["image"].paths[7]
    raw = bytearray(Path(target).read_bytes())
    for i in range(60, len(raw) - 20):  # damage the pixels, keep the header and the ending the checks read
        raw[i] ^= 0x5A
    Path(target).write_bytes(bytes(raw))
    assert load_dataset("images", **folder) is not None  # the up-front checks do not decode pixels
    assert decode_failure(data) == f"image file {target} (row 8 of the label table) cannot be decoded: " \
                                   "Invalid PNG data, size " + str(len(raw))


def test_bad_options_are_refused_with_the_rule(folder):
    with pytest.raises(DataError, match=r"`image_shape` must be \[height, width, channels\]"):
        load_dataset("images", **{**folder, "image_shape": [16, 16]})
    with pytest.raises(DataError, match="`cache` must be one of"):
        load_dataset("images", **{**folder, "cache": "ram"})
    with pytest.raises(DataError, match="unknown key"):
        load_dataset("images", **{**folder, "tasks": [{"name": "shape", "kind": "classification", "classes": 4,
                                                       "colum": "shape"}]})


def test_arrays_fed_once_an_epoch_come_as_one_pipeline_without_autotuning(shapes):
    """A search trial calls fit once an epoch: its arrays come as a pipeline built once (per data set), every row
    once an epoch with its own labels, in a new order each epoch, and with tf.data's autotuning off (its model
    thread, stopped as each fit call ended, held one call in five up by ~1 s: bench/throughput.py)."""
    ds = feed(shapes, 16, shuffle=True, seed=3, per_epoch=True)["x"]
    assert feed(shapes, 16, shuffle=True, seed=3, per_epoch=True)["x"] is ds
    assert ds.options().autotune.enabled is False
    pixels = shapes.inputs["image"]
    orders = []
    for _ in range(2):
        xs, ys = zip(*[(x["image"].numpy(), y["shape"].numpy()) for x, y in ds])
        images, labels = np.concatenate(xs), np.concatenate(ys)
        order = [int(np.flatnonzero((pixels == image).all(axis=(1, 2, 3)))[0]) for image in images]
        assert sorted(order) == list(range(len(pixels)))
        np.testing.assert_array_equal(labels, shapes.targets["shape"][order])
        orders.append(order)
    assert orders[0] != orders[1]
    assert feed(shapes, 8, shuffle=True, seed=3, per_epoch=True)["x"] is not ds  # another batch size: rebuilt
