"""Every shipped experiment file validates in full against its data (no Ray, no training),
and the experiments for networks (a)-(e) fix the model that ``mtl_models.reference`` builds."""

from pathlib import Path

import pytest

import mtl_models
from search.experiment.config import load_experiment
from search.experiment.prepared import prepare

CONFIGS = sorted(Path(__file__).resolve().parents[3].joinpath("configs").glob("*.yaml"))
REFERENCE_CONFIGS = [p for p in CONFIGS if p.stem in mtl_models.REFERENCES]

# Where a config's fixed model deliberately differs from reference(x), as (config value, reference value);
# each one carries a comment in the file naming the field and saying why.
DELIBERATE = {
    "a": {"backbone.filters": ([32, 32], [32, 64])},  # the space varies backbone.blocks
}
# Never compared: the config names no model (trials are "mtl_model"), and its inputs carry z-score statistics
# from its training split where reference(x) without `train=` has none.
NOT_COMPARED = ("name",)
STATISTICS = ("mean", "variance")


@pytest.fixture(scope="module")
def prepared():
    """``prepare(load_experiment(path))`` once per file for this module's tests."""
    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = prepare(load_experiment(path))
        return cache[path]

    return get


def test_there_is_one_config_per_reference_network_and_the_main_job():
    assert {p.stem for p in CONFIGS} >= {"a", "b", "c", "d", "e", "shapes", "glyphs"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_every_corner_of_its_space_builds(path, prepared):
    prepared = prepared(path)
    assert len(prepared.experiment.space) >= 5
    spec, batch_size = prepared.spec_for({})
    assert {t.name for t in spec.tasks} == {t.name for t in prepared.tasks}
    assert batch_size >= 1
    budget = prepared.experiment.budget
    assert 0 < budget.trials <= 50 if budget.time_limit_s is None else budget.time_limit_s <= 900


def _flat(spec_dict):
    """A spec's ``to_dict()`` as ``{"backbone.filters": [...], "heads.B.loss_weight": 1.5, ...}``.

    Inputs are keyed by input name and heads by task name, so that an extra, missing or
    reordered one shows up as a difference by name; ``inputs.order`` and ``heads.order`` keep the order.
    """
    flat = {}
    for key, value in spec_dict.items():
        if key == "inputs":
            flat["inputs.order"] = [i["name"] for i in value]
            for item in value:
                flat.update({f"inputs.{item['name']}.{k}": v for k, v in item.items() if k != "name"})
        elif key == "heads":
            flat["heads.order"] = [h["task"]["name"] for h in value]
            for head in value:
                name = head["task"]["name"]
                for k, v in head.items():
                    if k == "task":
                        flat.update({f"heads.{name}.task.{tk}": tv for tk, tv in v.items() if tk != "name"})
                    else:
                        flat[f"heads.{name}.{k}"] = v
        elif isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _compared(flat):
    return {k: v for k, v in flat.items()
            if k not in NOT_COMPARED and not (k.startswith("inputs.") and k.rsplit(".", 1)[1] in STATISTICS)}


@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=lambda p: p.stem)
def test_config_fixes_the_reference_network_field_by_field(path, prepared):
    name = path.stem
    config_spec, _ = prepared(path).spec_for({})
    config, reference = (_compared(_flat(s.to_dict())) for s in (config_spec, mtl_models.reference(name)))
    differences = {k: (config.get(k, "<unset>"), reference.get(k, "<unset>"))
                   for k in sorted(set(config) | set(reference)) if config.get(k) != reference.get(k)}
    assert differences == DELIBERATE.get(name, {}), (
        f"configs/{name}.yaml's fixed model and reference({name!r}) differ as (config, reference) on {differences}")
    text = path.read_text(encoding="utf-8").splitlines()
    for field in differences:
        leaf = field.rsplit(".", 1)[1]
        assert any(line.lstrip().startswith("#") and leaf in line and f'reference("{name}")' in line
                   for line in text), f"configs/{name}.yaml must say in a comment why {field} differs"
    assert config_spec.inputs[0].mean is not None  # the statistics left out above do exist on the config's side


@pytest.mark.parametrize("path", REFERENCE_CONFIGS, ids=lambda p: p.stem)
def test_config_data_is_the_reference_networks_data(path, prepared):
    name = path.stem
    info, experiment = mtl_models.reference_info(name), prepared(path).experiment
    assert experiment.data.dataset == info.dataset
    assert experiment.data.stratify == info.stratify
    assert {k: experiment.data.options.get(k) for k in info.dataset_options} == info.dataset_options
    assert [t.name for t in prepared(path).tasks] == list(info.tasks)
    judged = experiment.objective.metric or ""
    assert judged.split(".")[0] == info.select_by or experiment.objective.weights.get(info.select_by, 0) > 0
