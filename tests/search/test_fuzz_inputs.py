"""Property-based: valid experiment and NPZ files, mutated (types, ranges, keys, encodings, sizes, aliases), are
either accepted or refused with exit status 2 and one short line naming a field; never a traceback, never a
results directory left behind, never Ray started for a refused input.

An accepted input stops where Ray would start (nothing is trained). Examples per property: 150 here, or
MTL_FUZZ_EXAMPLES for a longer run by hand.
"""

import contextlib
import copy
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import search.api
from search.cli import main

EXAMPLES = int(os.environ.get("MTL_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 150, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BASE = {
    "name": "fuzz", "seed": 0,
    "data": {"dataset": "shapes", "options": {"n_samples": 120, "image_size": 16},
             "split": {"val_fraction": 0.25, "test_fraction": 0.1, "stratify": "shape"}},
    "model": {"backbone": {"blocks": 2, "filters": 8}, "heads": {"shape": {"units": 8}}},
    "space": {"backbone.filters": {"choice": [4, 8]},
              "optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True}},
    "budget": {"trials": 2, "max_epochs": 2}, "scheduler": {"grace_period": 1, "reduction_factor": 2},
    "searcher": {"sampler": "tpe"}, "concurrency": 1, "batch_size": 16,
}
NPZ_DATA = {"dataset": "npz", "options": {
    "path": "data.npz", "inputs": {"image": "X"}, "image_shape": [8, 8, 1],
    "tasks": [{"task": {"name": "A", "kind": "classification", "num_classes": 3}, "array": "y", "column": 0},
              {"task": {"name": "C", "kind": "regression", "activation": "sigmoid"}, "array": "y", "column": 1}]},
    "split": {"val_fraction": 0.25, "test_fraction": 0.1}}

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, 1e-12, 1e300, 1.00000001]),
    st.text(max_size=40), st.sampled_from(["", "tiny\n", "a" * 500, "../../etc", "ünïcödé", "\x00", "tpe", "shapes"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


class ReachedRay(Exception):
    """The input was accepted: the command got as far as starting Ray."""


def _paths(data, prefix=()):
    """Every key path of the nested mappings in ``data`` (the places a mutation can act on)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated(draw, base):
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
    return data


def _text(data, draw) -> bytes:
    """The experiment as a file, sometimes written oddly: aliases, a repeated key, another encoding, a BOM."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    form = draw(st.sampled_from(["plain", "plain", "alias", "repeat", "latin-1", "bom", "truncate"]))
    if form == "alias":
        text = "anchors:\n  a: &a [1, 2, 3]\n  b: &b [*a, *a, *a]\n" + text + f"extra: [*b, *b]\n"
    elif form == "repeat":
        first = text.splitlines()[0]
        text = text + first + "\n"
    elif form == "latin-1":
        return text.encode("latin-1", errors="replace") + b"\xe9\xff"
    elif form == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    elif form == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


def _run(path: Path, results: Path) -> tuple[int | str, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["run", str(path), "--results-dir", str(results)])
        except ReachedRay:
            status = "accepted"
    return status, err.getvalue()


def _check(status, err: str, results: Path) -> None:
    assert not results.exists(), f"left {results} behind (status {status}, {err!r})"
    if status == "accepted":
        return
    assert status == 2, (status, err)
    assert err.startswith("mtl-search: error: ") and err.count("\n") == 1, err
    assert len(err) < 500, err
    assert re.search(r"`[^`]+`", err), f"names no field: {err!r}"


@pytest.fixture
def stop_at_ray(monkeypatch):
    def start(*args, **kwargs):
        raise ReachedRay

    monkeypatch.setattr(search.api, "_start", start)


@SETTINGS
@given(data=st.data())
def test_mutated_experiment_files_are_accepted_or_refused_in_one_line(tmp_path, stop_at_ray, data):
    experiment = data.draw(mutated(BASE))
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(_text(experiment, data.draw))
    results = tmp_path / "results"
    _check(*_run(path, results), results)


ARRAYS = st.sampled_from(["ok", "nan", "inf", "float64", "int", "bool", "strings", "objects", "short", "empty",
                          "3d", "huge label", "negative label", "missing"])


def _array(kind: str, rng: np.random.Generator, name: str) -> np.ndarray | None:
    n = 40
    if name == "X":
        ok = rng.uniform(0, 1, (n, 8, 8)).astype(np.float32)
    else:
        ok = np.stack([np.arange(n) % 3, rng.uniform(0, 1, n)], axis=1).astype(np.float32)
    changed = {"ok": ok, "float64": ok.astype(np.float64), "int": ok.astype(np.int64), "bool": ok > 0.5,
               "strings": np.array(["x"] * n), "objects": np.array([{}] * n, dtype=object), "short": ok[: n // 2],
               "empty": ok[:0], "3d": ok.reshape(n, -1)[:, :, None] if name == "y" else ok[:, :, :, None, None],
               "missing": None}
    if kind in ("nan", "inf"):
        bad = ok.copy()
        bad.flat[7] = np.nan if kind == "nan" else np.inf
        return bad
    if kind in ("huge label", "negative label"):
        bad = ok.copy()
        bad.flat[0] = 1e12 if kind == "huge label" else -5
        return bad
    return changed[kind]


@SETTINGS
@given(data=st.data(), x=ARRAYS, y=ARRAYS)
def test_mutated_npz_files_are_accepted_or_refused_in_one_line(tmp_path, stop_at_ray, data, x, y):
    rng = np.random.default_rng(0)
    arrays = {name: a for name, kind in (("X", x), ("y", y)) if (a := _array(kind, rng, name)) is not None}
    with open(tmp_path / "data.npz", "wb") as f:
        np.savez(f, **arrays, allow_pickle=True) if any(a.dtype == object for a in arrays.values()) else np.savez(
            f, **arrays)
    experiment = data.draw(mutated({**BASE, "data": NPZ_DATA, "model": {"backbone": {"blocks": 1, "filters": 4}}}))
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True))
    results = tmp_path / "results"
    _check(*_run(path, results), results)
