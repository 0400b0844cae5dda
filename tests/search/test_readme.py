"""The README's examples are real: its conditional-space snippet validates and samples as it says."""

import re
from pathlib import Path

import optuna
import yaml

from search.experiment.config import load_experiment
from search.experiment.prepared import prepare

ROOT = Path(__file__).resolve().parents[2]


def _readme_space_snippet() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    spaces = [yaml.safe_load(b)["space"] for b in blocks if b.startswith("space:") and "transfer_from" in b]
    assert len(spaces) == 1, "the README should show one transfer-edge space example"
    return spaces[0]


def test_readme_transfer_edge_condition_validates_and_samples_units_only_with_the_edge(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "b.yaml").read_text())
    raw["space"] = _readme_space_snippet()
    options = raw["data"]["options"]
    options["path"] = str(ROOT / "configs" / options["path"])  # the copy lives elsewhere
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    prepared = prepare(load_experiment(path))  # every corner of the space builds a model

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(20):
        trial = study.ask()
        sampled = prepared.experiment.space.sample_optuna(trial)
        seen.append(sampled)
        assert ("heads.B.units" in sampled) == (sampled["heads.B.transfer_from"] == ["A"]), sampled
        assert set(trial.params) == set(sampled)  # the study holds exactly the parameters the trial used
        study.tell(trial, 0.0)
    assert {tuple(s["heads.B.transfer_from"]) for s in seen} == {(), ("A",)}
