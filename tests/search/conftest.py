"""Helpers for search tests: tiny experiment files written to a temporary directory."""

import copy

import pytest
import yaml

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {
        "dataset": "shapes",
        "options": {"n_samples": 240, "image_size": 16},
        "split": {"val_fraction": 0.25, "test_fraction": 0.1, "stratify": "shape"},
    },
    "model": {
        "backbone": {"blocks": 2, "filters": 8},
        "heads": {"shape": {"units": 16}, "colour": {"units": 8}, "midpoint": {"units": 16}},
    },
    "space": {
        "backbone.filters": {"choice": [4, 8]},
        "optimizer.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True},
    },
    "budget": {"trials": 6, "max_epochs": 4},
    "scheduler": {"grace_period": 1, "reduction_factor": 2},
    "concurrency": 2,
    "batch_size": 32,
}


@pytest.fixture
def tiny():
    """A fresh copy of the tiny experiment, as plain data to edit."""
    return copy.deepcopy(TINY)


@pytest.fixture
def write_experiment(tmp_path):
    """Write experiment data to a YAML file under tmp_path; returns its path."""

    def write(data, name="experiment.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_template():
    """The tiny experiment for module-scoped fixtures (copy before editing)."""
    return copy.deepcopy(TINY)


@pytest.fixture
def no_ray(monkeypatch):
    """Bad input must stop before Ray starts: starting it fails the test."""
    import search.api

    def start(*args, **kwargs):
        raise AssertionError("Ray was started for an input that should have been refused first")

    monkeypatch.setattr(search.api, "_start", start)
