"""An image folder and its label table that break a rule: exit 2 before Ray starts, one line naming the table's
file, row and column (or the image file), and nothing of the user's changed."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mtl_models.data import SHAPE_NAMES, load_shapes
from mtl_models.data.folder import write_image_folder
from search.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid folder of 24 shapes (16x16 RGB) and the experiment that reads it."""
    root = tmp_path_factory.mktemp("good")
    options = write_image_folder(load_shapes(n_samples=24, image_size=16, seed=0), root / "shapes")
    return root, options


def _experiment(tmp_path, good, edit_table=None, edit_files=None, indices=False, **options):
    root, written = good
    if indices:
        written = {**written, "tasks": [{**written["tasks"][0], "classes": 4}, *written["tasks"][1:]]}
    shutil.copytree(root / "shapes", tmp_path / "shapes")
    folder = tmp_path / "shapes"
    table = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    if edit_table:
        table = edit_table(table)
    table.to_csv(folder / "labels.csv", index=False)
    if edit_files:
        edit_files(folder)
    data_options = {**written, **options}
    experiment = {"name": "bad", "data": {"dataset": "images", "options": data_options},
                  "budget": {"trials": 1, "max_epochs": 1}}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def _set(row, column, value):
    def edit(table):
        table.loc[row - 1, column] = value
        return table
    return edit


def _damage(name, how):
    def edit(folder):
        path = folder / "images" / name
        raw = path.read_bytes()
        path.write_bytes(how(raw))
    return edit


def _indices_then(row, value):
    """The shape column as class indices (the task declared with a count), one cell then broken."""
    def edit(table):
        table["shape"] = [str(SHAPE_NAMES.index(name)) for name in table["shape"]]
        return _set(row, "shape", value)(table)
    return edit


def _grey(folder):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "images" / "05.png")


CASES = {
    "missing file": (dict(edit_files=lambda f: (f / "images" / "03.png").unlink()),
                     ["row 4", "column 'file'", "does not exist", "03.png"]),
    "not an image": (dict(edit_files=lambda f: (f / "images" / "03.png").write_text("hello")),
                     ["row 4", "column 'file'", "is not an image", "03.png"]),
    "truncated": (dict(edit_files=_damage("03.png", lambda raw: raw[: len(raw) // 2])),
                  ["row 4", "column 'file'", "truncated", "03.png"]),
    "no task column": (dict(edit_table=lambda t: t.drop(columns=["colour"])), ["has no column 'colour'"]),
    "unknown class": (dict(edit_table=_set(6, "shape", "hexagon")),
                      ["row 6", "column 'shape'", "'hexagon'", "not among the declared classes"]),
    "class index out of range": (dict(edit_table=_indices_then(2, "7"), indices=True),
                                 ["row 2", "column 'shape'", "[0, 4)", "'7'"]),
    "NaN in regression": (dict(edit_table=_set(3, "midpoint_0", "nan")),
                          ["row 3", "column 'midpoint_0'", "finite number", "'nan'"]),
    "text in regression": (dict(edit_table=_set(9, "midpoint_1", "left")),
                           ["row 9", "column 'midpoint_1'", "must be a number", "'left'"]),
    "duplicate row": (dict(edit_table=lambda t: pd.concat([t, t.iloc[[4]]], ignore_index=True)),
                      ["row 25", "column 'file'", "repeats the file of row 5"]),
    "empty table": (dict(edit_table=lambda t: t.iloc[:0]), ["has no rows"]),
    "empty folder": (dict(edit_files=lambda f: [p.unlink() for p in (f / "images").iterdir()]),
                     ["row 1", "does not exist"]),
    "wrong channels": (dict(edit_files=_grey), ["row 6", "has 1 channel(s)", "declares 3", "05.png"]),
    "path leaves the folder": (dict(edit_table=_set(2, "file", "../../etc/passwd")),
                               ["row 2", "column 'file'", "leaves the table's folder", "'../../etc/passwd'"]),
    "absolute path": (dict(edit_table=_set(2, "file", "/etc/hostname")), ["row 2", "leaves the table's folder"]),
    "no table": (dict(path="missing/labels.csv"), ["labels.csv", "does not exist"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_folder_exits_2_naming_the_row_and_column(case, tmp_path, good, capsys, no_ray):
    edits, fragments = CASES[case]
    path = _experiment(tmp_path, good, **edits)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()}
    status = main(["run", str(path), "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("mtl-search: error: ") and err.count("\n") == 1, err
    assert all(fragment in err for fragment in fragments), err
    assert "labels.csv" in err
    assert not (tmp_path / "results").exists()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_geometric_augmentation_on_a_position_target_is_refused(tmp_path, good, capsys, no_ray):
    path = _experiment(tmp_path, good)
    experiment = yaml.safe_load(path.read_text())
    experiment["data"]["options"]["tasks"][2]["spatial"] = True
    experiment["model"] = {"augmentation": {"flip": "horizontal"}}
    path.write_text(yaml.safe_dump(experiment))
    assert main(["run", str(path), "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "augmentation.flip" in err and "midpoint" in err, err
