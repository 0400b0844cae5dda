"""Each reference network (a)–(e) builds from its spec and trains one epoch on its data set."""

import numpy as np
import pytest

import mtl_models
from mtl_models.data import split


@pytest.mark.parametrize("name", ["a", "b", "c", "d", "e"])
def test_reference_network_builds_and_trains_one_epoch(name):
    info = mtl_models.reference_info(name)
    data = mtl_models.reference_data(name, n_samples=160, seed=1)
    splits = split(data, val_fraction=0.25, test_fraction=0.0, seed=0, stratify=info.stratify)
    spec = mtl_models.reference(name, train=splits.train)
    assert {t.name for t in spec.tasks} == {t.name for t in data.tasks}
    assert all(i.mean is not None for i in spec.inputs)  # normalisation from the training split
    model = mtl_models.build_model(spec)
    train, val = splits.train, splits.val
    history = model.fit(
        dict(train.inputs), dict(train.targets),
        validation_data=(dict(val.inputs), dict(val.targets)),
        epochs=1, batch_size=32, verbose=0,
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["val_loss"])
    for task in spec.tasks:
        assert f"val_{task.name}_{task.score_metric}" in logs
    predictions = model.predict(dict(val.inputs), verbose=0)
    for task in spec.tasks:
        assert predictions[task.name].shape[0] == len(val)


def test_reference_b_matches_the_published_design():
    spec = mtl_models.reference("b")
    assert spec.backbone.filters == (64, 64, 128) and spec.backbone.dropout == 0.3
    heads = {h.name: h for h in spec.heads}
    assert heads["B"].transfer_from == ("A",)
    assert heads["C"].stop_gradient
    assert [heads[t].loss_weight for t in "ABC"] == [1.0, 1.5, 0.3]
    assert spec.inputs[0].shape == (32, 32, 1)
    assert mtl_models.reference_info("b").select_by == "B"


def test_reference_e_hard_sharing_is_smaller_than_separate_branches():
    spec = mtl_models.reference("e")
    hard = mtl_models.build_model(spec).count_params()
    separate = mtl_models.build_model(spec.replace(sharing="separate")).count_params()
    assert hard < separate


def test_unknown_reference_names_the_valid_ones():
    with pytest.raises(mtl_models.SpecError, match=r"must be one of \['a', 'b', 'c', 'd', 'e'\]"):
        mtl_models.reference("z")
