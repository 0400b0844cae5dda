"""Writes the files of this folder: malformed experiments and data files, and expected.yaml.

Run it again (python tests/search/bad_inputs/make.py) after changing a case; the test reads the files.
"""
import copy
import io
import pickle
import sys
import zipfile

from pathlib import Path
import numpy as np
import yaml

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent; (out / "data").mkdir(parents=True, exist_ok=True)
BASE = {
    "name": "bad", "seed": 0,
    "data": {"dataset": "shapes", "options": {"n_samples": 120, "image_size": 16},
             "split": {"val_fraction": 0.25, "test_fraction": 0.1, "stratify": "shape"}},
    "model": {"backbone": {"blocks": 2, "filters": 8}, "heads": {"shape": {"units": 8}}},
    "space": {"backbone.filters": {"choice": [4, 8]}, "optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}},
    "budget": {"trials": 2, "max_epochs": 2}, "concurrency": 1, "batch_size": 16,
}
NPZ = {
    "name": "bad_npz", "seed": 0,
    "data": {"dataset": "npz", "options": {"path": "data/ok.npz", "inputs": {"image": "X"}, "image_shape": [16, 16, 1],
             "tasks": [{"task": {"name": "A", "kind": "classification", "num_classes": 4}, "array": "y", "column": 0},
                       {"task": {"name": "C", "kind": "regression", "activation": "sigmoid", "metrics": ["mae"]}, "array": "y", "column": 1}]},
             "split": {"val_fraction": 0.25, "test_fraction": 0.1, "stratify": "A"}},
    "model": {"backbone": {"blocks": 2, "filters": 8}},
    "space": {"backbone.filters": {"choice": [4, 8]}},
    "budget": {"trials": 2, "max_epochs": 2}, "concurrency": 1, "batch_size": 16,
}
expected = {}

def exp(name, fragment, change=None, base=BASE):
    data = copy.deepcopy(base)
    if change: change(data)
    (out / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    expected[f"{name}.yaml"] = fragment

def raw(name, content, fragment):
    (out / name).write_bytes(content); expected[name] = fragment

def setp(path, value):
    def change(d):
        node = d
        for key in path[:-1]: node = node.setdefault(key, {})
        node[path[-1]] = value
    return change

# Experiment files: wrong types
exp("type_trials_string", "`budget.trials`", setp(["budget", "trials"], "many"))
exp("type_concurrency_negative", "`concurrency`", setp(["concurrency"], -1))
exp("type_seed_float", "`seed`", setp(["seed"], 1.5))
exp("type_batch_size_string", "`batch_size`", setp(["batch_size"], "big"))
exp("type_cpus_zero", "`resources.cpus`", setp(["resources"], {"cpus": 0}))
exp("type_gpus_negative", "`resources.gpus`", setp(["resources"], {"cpus": 1, "gpus": -1}))
exp("type_time_limit_negative", "`budget.time_limit_s`", setp(["budget", "time_limit_s"], -5))
exp("type_space_not_mapping", "`space`", setp(["space"], ["backbone.filters"]))
exp("type_dropout_string", "`model.backbone.dropout`: must be a float in [0, 1)", setp(["model", "backbone", "dropout"], "lots"))
# Unknown keys
exp("unknown_top_key", "`epochs`", setp(["epochs"], 3))
exp("unknown_split_key", "`data.split.train_fraction`", setp(["data", "split", "train_fraction"], 0.5))
exp("unknown_head_key", ["`model.heads.shape.unit`: is not a known key", "Received: model.heads.shape.unit=8"], setp(["model", "heads", "shape", "unit"], 8))
exp("unknown_dataset", ["`data.dataset`", "must be one of", "'cifar'"], setp(["data", "dataset"], "cifar"))
exp("unknown_sampler", "`searcher.sampler`", setp(["searcher"], {"sampler": "grid-ish"}))
exp("name_final_newline", "`name`: must be 1 to 100 letters", setp(["name"], "tiny\n"))
exp("name_too_long", "`name`: must be 1 to 100 letters", setp(["name"], "n" * 300))
exp("seed_past_32_bits", "`seed`: must be an integer >= 0 and <= 4294967295", setp(["seed"], 2**32))
exp("reduction_factor_near_1", "`scheduler.reduction_factor`: must be a number >= 1.5", setp(["scheduler"], {"reduction_factor": 1.00000001}))
exp("units_huge", "`model.heads.shape.units`: must be an integer in [0, 16384]", setp(["model", "heads", "shape", "units"], 10**12))
exp("n_samples_huge", ["`n_samples` must be at most", "n_samples=100000000000"], setp(["data", "options", "n_samples"], 10**11))
exp("sampler_option_unknown", "`searcher.options.startup_trials`", setp(["searcher"], {"options": {"startup_trials": 3}}))
exp("sampler_option_refused", ["`searcher.options`", "refused by Optuna's TPESampler"],
    setp(["searcher"], {"options": {"n_ei_candidates": 0}}))
# Impossible ranges and values
exp("range_int_reversed", "`space.backbone.blocks.int`: `low < high` must hold", setp(["space", "backbone.blocks"], {"int": [5, 3]}))
exp("range_float_empty", "`space.backbone.dropout.float`: `low < high` must hold", setp(["space", "backbone.dropout"], {"float": [0.1, 0.1]}))
exp("range_log_zero", "`space.optimizer.learning_rate", setp(["space", "optimizer.learning_rate"], {"float": [0.0, 0.1], "log": True}))
exp("range_empty_choice", "`space.backbone.filters", setp(["space", "backbone.filters"], {"choice": []}))
exp("range_dropout_one", "`space.backbone.dropout`", setp(["space", "backbone.dropout"], {"float": [0.0, 1.0]}))
exp("range_fractions_sum", "`data.split.test_fraction`: plus val_fraction (0.6) must be < 1", setp(["data", "split"], {"val_fraction": 0.6, "test_fraction": 0.5}))
exp("range_blocks_too_deep", "`space.backbone.blocks`", setp(["space", "backbone.blocks"], {"int": [1, 6]}))
exp("range_filters_zero", ["`model.backbone.filters`: must be an integer in [1, 16384]", "Received: model.backbone.filters=0"], setp(["model", "backbone", "filters"], 0))
# References to things that do not exist
exp("ref_space_field", "`space.backbone.width`", setp(["space", "backbone.width"], {"int": [1, 4]}))
exp("ref_space_task", "`space.heads.size.units`", setp(["space", "heads.size.units"], {"int": [1, 4]}))
exp("ref_objective_task", "`objective.metric`", setp(["objective"], {"metric": "size.accuracy"}))
exp("ref_objective_metric", "`objective.metric`", setp(["objective"], {"metric": "shape.mae"}))
exp("ref_multi_metric", "`objective.metrics`", setp(["objective"], {"metrics": ["shape.accuracy", "position.mae"]}))
exp("ref_when_later", "`space.heads.shape.units.when`", setp(["space", "heads.shape.units"], {"int": [8, 16], "when": {"loss_weighting": "fixed"}}))
exp("ref_transfer_missing", ["`model.heads.shape.transfer_from`: must name existing tasks", "'position'"], setp(["model", "heads", "shape", "transfer_from"], ["position"]))
exp("ref_stratify_missing", ["`data.split`", "`stratify` must name a task", "'position'"], setp(["data", "split", "stratify"], "position"))
exp("name_path_escape", "`name`", setp(["name"], "../escape"))
# Unreadable experiment files
raw("empty.yaml", b"", "must not be empty")
raw("binary_garbage.yaml", bytes(range(256)) * 4, "`experiment`: must be a UTF-8 text file (this one is binary)")
raw("yaml_syntax.yaml", b"name: [unclosed\nseed: 0\n", "must be valid YAML")
raw("yaml_list.yaml", b"- just\n- a list\n", "`experiment`: must be a YAML mapping")
BOMB = "name: bomb\nlaughs:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))  # 10^9 values from 1 KB
raw("yaml_alias_bomb.yaml", BOMB.encode(), "`experiment`: must not expand past 100,000 values")
raw("yaml_duplicate_key.yaml", b"name: dup\nseed: 1\nseed: 2\n", "`seed`: must be given once in its mapping (again at line 3")
raw("yaml_python_tag.yaml", b"!!python/object/apply:os.system ['touch /tmp/pwned']\n", "must be valid YAML")
# Data files (NPZ) behind a valid experiment
rng = np.random.default_rng(0)
def npz(name, fragment, arrays, raw_bytes=None, options=None):
    path = out / "data" / f"{name}.npz"
    if raw_bytes is not None:
        path.write_bytes(raw_bytes)
    else:
        np.savez_compressed(path, **arrays)
    def change(d):
        d["data"]["options"]["path"] = f"data/{name}.npz"
        d["data"]["options"].update(options or {})
    exp(f"npz_{name}", fragment, change, base=NPZ)
X = rng.uniform(0, 1, (40, 16, 16)).astype(np.float32)
y = np.stack([np.arange(40) % 4, rng.uniform(0, 1, 40)], axis=1).astype(np.float32)
npz("missing_array", ["`data.options`", "Array 'y' in", "missing_array.npz' is missing; the file holds the arrays ['X']"], {"X": X})
npz("mismatched_lengths", ["`data.options`", "must have the same length", "{'X': 40, 'y': 30}"], {"X": X, "y": y[:30]})
bad = X.copy(); bad[3, 4, 5] = np.nan
npz("nan_input", ["`data.options`", "Array 'X' in", "must hold finite numbers, but holds 1 NaN"], {"X": bad, "y": y})
bad = y.copy(); bad[7, 1] = np.inf
npz("inf_target", ["`data.options`", "Array 'y' in", "must hold finite numbers, but holds 0 NaN and 1 inf"], {"X": X, "y": bad})
bad = y.copy(); bad[2, 0] = 9
npz("label_outside_classes", ["`data.options`", "Array 'y' column 0", "class labels must lie in [0, 4)", "got 9.0"], {"X": X, "y": bad})
bad = y.copy(); bad[2, 0] = 1.5
npz("label_not_integer", ["`data.options`", "Array 'y' column 0", "class labels must be whole numbers, but got 1.5"], {"X": X, "y": bad})
npz("wrong_image_shape", ["`data.options`", "Array 'X' in", "must hold images of shape (16, 16, 1), but holds (12, 12, 1)"], {"X": rng.uniform(0, 1, (40, 12, 12)).astype(np.float32), "y": y})
npz("column_out_of_range", ["`data.options`", "Array 'y' in", "`column` for task 'C' must be in [0, 1)"], {"X": X, "y": y[:, :1]})
npz("object_array_pickle", ["`data.options`", "Array 'X' in", "holds a pickled object array"], {"X": np.array([{"a": 1}] * 40, dtype=object), "y": y})
npz("empty_file", ["`data.options`", "empty_file.npz' is not a readable NPZ file"], {}, raw_bytes=b"")
npz("garbage_bytes", ["`data.options`", "garbage_bytes.npz' is not a readable NPZ file"], {}, raw_bytes=b"PK\x03\x04 this is not really a zip" + bytes(range(200)))
npz("pickle_file_renamed", ["`data.options`", "pickle_file_renamed.npz' is not a readable NPZ file"], {}, raw_bytes=pickle.dumps({"X": [1, 2, 3]}))
npz("string_array", ["`data.options`", "Array 'X' in", "must hold numbers (bool, int or float)"], {"X": np.array(["a"] * 40), "y": y})
bad = y.copy(); bad[5, 1] = 1.7
npz("sigmoid_target_above_one", ["`data.options`", "Array 'y' column 1", "a sigmoid regression target must lie in [0, 1], but got 1.7"], {"X": X, "y": bad})
def lying_npz() -> bytes:
    """An NPZ whose X header claims (2^36, 16, 16) float32, 64 TiB, over 40 images' worth of bytes."""
    def member(array, shape=None):
        buf = io.BytesIO()
        header = np.lib.format.header_data_from_array_1_0(array)
        header["shape"] = shape or array.shape
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(array.tobytes())
        return buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo("X.npy", (2026, 1, 1, 0, 0, 0)), member(X, (1 << 36, 16, 16)))
        archive.writestr(zipfile.ZipInfo("y.npy", (2026, 1, 1, 0, 0, 0)), member(y))
    return buf.getvalue()
npz("header_claims_64_tib", ["`data.options`", "Array 'X' in", "its header claims shape (68719476736, 16, 16) of float32",
                             "the file is damaged"], {}, raw_bytes=lying_npz())
np.savez_compressed(out / "data" / "ok.npz", X=X, y=y)
exp("npz_missing_file", ["`data.options`", "nope.npz' does not exist"], setp(["data", "options", "path"], "data/nope.npz"), base=NPZ)
(out / "expected.yaml").write_text("# File -> the fragment(s) the error message must contain (exit status 2, no results dir).\n"
                                   + yaml.safe_dump(expected, sort_keys=True, allow_unicode=True))
print(len(expected))
