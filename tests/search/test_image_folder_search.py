"""A search on an image folder streamed from disk, end to end: run, retrain, export, predict on a folder of
images with class names; and an image that cannot be decoded fails its trials by name while the search goes on."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mtl_models.data import load_dataset
from mtl_models.data.folder import digits_with_centre, write_image_folder
from search.cli import main
from search.experiment.config import load_experiment
from search.experiment.prepared import prepare
from search.rundir.records import load_records


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    options = write_image_folder(digits_with_centre(n_samples=200), root / "digits")
    return root, options


def _experiment(root: Path, options: dict, name: str) -> Path:
    experiment = {
        "name": name, "seed": 0,
        "data": {"dataset": "images", "options": {**options, "cache": "disk"},
                 "split": {"val_fraction": 0.25, "test_fraction": 0.15, "stratify": "digit"}},
        "model": {"backbone": {"blocks": 1, "filters": 8, "global_pooling": "flatten"},
                  "heads": {"digit": {"units": 16}, "colour": {"units": 8}, "centre": {"units": 8}}},
        "space": {"optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}},
        "budget": {"trials": 2, "max_epochs": 2},
        "scheduler": {"grace_period": 2},
        "concurrency": 2, "batch_size": 32,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def test_run_retrain_export_and_predict_a_folder_with_class_names(digits, tmp_path, capsys):
    root, options = digits
    experiment = _experiment(root, options, "folder")
    results = tmp_path / "results"
    assert main(["run", str(experiment), "--results-dir", str(results)]) == 0
    run_dir = results / "folder"
    records = load_records(run_dir)
    assert len(records) == 2 and all(r.status == "completed" and r.epochs == 2 for r in records)
    assert main(["retrain", str(run_dir), "--top-k", "1", "--seeds", "0", "--epochs", "2"]) == 0
    assert main(["export", str(run_dir), "--out", str(tmp_path / "model")]) == 0
    card = yaml.safe_load((tmp_path / "model" / "model_card.json").read_text())
    assert card["tasks"][1]["class_names"] == ["red", "green", "blue", "yellow", "cyan"]

    images = root / "digits" / "images"
    out = tmp_path / "predictions.csv"
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "model"), str(images), "--out", str(out)]) == 0
    assert "Wrote 200 predictions" in capsys.readouterr().out
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["file", "digit", "digit_probability", "colour", "colour_probability",
                                       "centre_0", "centre_1"]
    assert len(predicted) == 200 and set(predicted["colour"]) <= set(card["tasks"][1]["class_names"])
    # The same model on the same images as arrays (decoded as training decodes them) predicts the same.
    import keras

    from search.winner.model_dir import load_model

    data = load_dataset("images", **{**options, "path": str(root / options["path"])})
    model = load_model(tmp_path / "model")
    assert isinstance(model, keras.Model)
    raw = model.predict({"image": np.asarray(data.inputs["image"])}, verbose=0)
    table = pd.read_csv(root / "digits" / "labels.csv")
    by_file = predicted.set_index("file").loc[[str(Path(f).relative_to("images")) for f in table["file"]]]
    np.testing.assert_array_equal(by_file["digit"].to_numpy(), raw["digit"].argmax(-1))
    np.testing.assert_allclose(by_file["centre_0"].to_numpy(), raw["centre"][:, 0], atol=1e-5)


def test_an_image_that_cannot_be_decoded_fails_each_trial_by_name_and_the_search_goes_on(digits, tmp_path):
    root, options = digits
    copy = tmp_path / "copy"
    shutil.copytree(root / "digits", copy / "digits")
    experiment = _experiment(copy, options, "damaged")
    val = prepare(load_experiment(experiment)).splits.val.inputs["image"]
    for path in val.paths[:3]:  # not read before the search: the statistics come from the training split
        _damage(Path(path))
    assert main(["run", str(experiment), "--results-dir", str(tmp_path / "results")]) == 0
    records = load_records(tmp_path / "results" / "damaged")
    assert len(records) == 2 and all(r.status == "failed" for r in records)
    for record in records:
        found = re.search(r"image file (\S+) \(row (\d+) of the label table\) cannot be decoded", record.failure)
        assert found, record.failure
        assert found[1] == val.paths[0] and int(found[2]) == val.rows[0]


def test_an_image_that_cannot_be_decoded_in_the_training_split_is_refused_before_the_search(digits, tmp_path,
                                                                                              capsys, no_ray):
    root, options = digits
    shutil.copytree(root / "digits", tmp_path / "digits")
    experiment = _experiment(tmp_path, options, "damaged")
    train = prepare(load_experiment(experiment)).splits.train.inputs["image"]
    _damage(Path(train.paths[5]))
    assert main(["run", str(experiment), "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert f"Image file {train.paths[5]} (row {train.rows[5]} of the label table) cannot be decoded" in err, err


def _damage(path: Path) -> None:
    """Garble the pixel data, keeping the header and the ending that the checks before a search read."""
    raw = bytearray(path.read_bytes())
    for i in range(60, len(raw) - 20):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_a_search_reads_segmentation_masks_and_vector_inputs_from_the_folder(tmp_path):
    from mtl_models.data import load_segmentation

    options = write_image_folder(load_segmentation(n_samples=120, image_size=16), tmp_path / "seg")
    experiment = {
        "name": "masks", "seed": 0,
        "data": {"dataset": "images", "options": options, "split": {"val_fraction": 0.25, "test_fraction": 0.2}},
        "model": {"backbone": {"blocks": 2, "filters": 8, "vector_units": 8, "dense_units": 16},
                  "heads": {"label": {"units": 8}, "mask": {"units": 8}, "value": {"units": 8}}},
        "space": {"optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}},
        "budget": {"trials": 1, "max_epochs": 2}, "batch_size": 16,
    }
    path = tmp_path / "masks.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    results = tmp_path / "results"
    assert main(["run", str(path), "--results-dir", str(results)]) == 0
    (record,) = load_records(results / "masks")
    assert record.status == "completed" and record.epochs == 2, record.failure
    assert 0.0 <= record.task_metrics["val_mask_iou"] <= 1.0, record.task_metrics
    assert main(["retrain", str(results / "masks"), "--top-k", "1", "--seeds", "0", "--epochs", "1"]) == 0
    assert (results / "masks" / "report.md").is_file()  # the report leaves masks out of its per-task pictures
