"""Every shipped experiment file validates in full against its data (no Ray, no training),
and the experiments for networks (a)-(e) fix the model that ``mtl_models.reference`` builds."""

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

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


FOLDER_SAMPLES = "300"  # enough images for a stratified split; the folder's layout, not its size, is checked here


def _with_its_folder(path: Path, tmp: Path) -> Path:
    """A copy of an ``images`` experiment file beside the folder that its comment's ``write-folder`` line writes.

    The folders are not committed (configs/data/ is ignored): running the line the file tells users to run
    checks that line too.
    """
    from search.cli import main

    text = path.read_text().splitlines()
    lines = [shlex.split(line.lstrip("# ")) for line in text if "mtl-search write-folder" in line]
    assert len(lines) == 1, f"{path.name} must say, in one comment line, the write-folder command that writes its data"
    args = lines[0][2:]
    out = Path(args[1])
    assert out.parts[0] == "configs", f"{path.name}: write-folder should write under configs/, not {out}"
    args[1] = str(tmp / out.relative_to("configs"))
    args = [a for i, a in enumerate(args) if a != "--n-samples" and (i == 0 or args[i - 1] != "--n-samples")]
    assert main(["write-folder", *args, "--n-samples", FOLDER_SAMPLES]) == 0
    return Path(shutil.copy(path, tmp / path.name))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``prepare(load_experiment(path))`` once per file for this module's tests."""
    cache = {}

    def get(path):
        if path not in cache:
            images = yaml.safe_load(path.read_text())["data"]["dataset"] == "images"
            source = _with_its_folder(path, tmp_path_factory.mktemp(path.stem)) if images else path
            cache[path] = prepare(load_experiment(source))
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
