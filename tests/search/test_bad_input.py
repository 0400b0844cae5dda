"""Bad experiment input stops before Ray starts: exit status 2, a message naming the field, no results dir."""

from pathlib import Path

import pytest

from search.cli import main


def _run(capsys, experiment, results):
    status = main(["run", str(experiment), "--results-dir", str(results)])
    err = capsys.readouterr().err
    return status, err


def _mutations():
    def unknown_top(d):
        d["epochs"] = 3

    def unknown_nested(d):
        d["budget"]["trails"] = 3

    def unknown_model(d):
        d["model"]["backbone"]["filter"] = 8

    def low_above_high(d):
        d["space"]["optimizer.learning_rate"] = {"float": [0.1, 0.01]}

    def no_spec_field(d):
        d["space"]["backbone.width"] = {"int": [1, 4]}

    def no_task(d):
        d["space"]["heads.size.units"] = {"int": [1, 4]}

    def objective_task(d):
        d["objective"] = {"metric": "size.accuracy"}

    def objective_metric(d):
        d["objective"] = {"metric": "shape.mae"}

    def multi_metric(d):
        d["objective"] = {"metrics": ["shape.accuracy", "position.mae"]}

    def bad_corner(d):
        d["space"]["backbone.blocks"] = {"int": [1, 6]}

    def bad_type(d):
        d["budget"]["trials"] = "many"

    def bad_dropout(d):
        d["space"]["backbone.dropout"] = {"float": [0.0, 1.5]}

    def task_override(d):
        d["model"]["heads"]["midpoint"] = {"task": {"loss": "hinge"}}

    def unknown_dataset(d):
        d["data"]["dataset"] = "cifar"

    def bad_when(d):
        d["space"]["heads.shape.units"] = {"int": [8, 16], "when": {"loss_weighting": "fixed"}}

    return [
        (unknown_top, "`epochs`", "is not a known key"),
        (unknown_nested, "`budget.trails`", "is not a known key"),
        (unknown_model, "`model.backbone.filter`", "is not a known key"),
        (low_above_high, "`space.optimizer.learning_rate.float`", "`low < high` must hold"),
        (no_spec_field, "`space.backbone.width`", "must name a field of the model spec"),
        (no_task, "`space.heads.size.units`", "must name a task"),
        (objective_task, "`objective.metric`", "must name a task"),
        (objective_metric, "`objective.metric`", "must name a metric task 'shape' reports"),
        (multi_metric, "`objective.metrics`", "must name a task"),
        (bad_corner, "`space.backbone.blocks`", "divisible by 2**blocks"),
        (bad_type, "`budget.trials`", "must be an integer"),
        (bad_dropout, "`space.backbone.dropout`", "must be a float in [0, 1)"),
        (task_override, "`model.heads.midpoint.task.loss`", "Received: model.heads.midpoint.task.loss='hinge'"),
        (unknown_dataset, "`data.dataset`", "cifar"),
        (bad_when, "`space.heads.shape.units.when`", "must name a parameter declared above it"),
    ]


@pytest.mark.parametrize(("mutate", "field", "rule"), _mutations(), ids=lambda v: getattr(v, "__name__", None))
def test_bad_experiment_exits_2_naming_the_field(capsys, tmp_path, tiny, write_experiment, no_ray, mutate, field, rule):
    mutate(tiny)
    results = tmp_path / "results"
    status, err = _run(capsys, write_experiment(tiny), results)
    assert status == 2, err
    assert field in err and rule in err, err
    assert not results.exists()


def test_gpu_request_where_ray_sees_none(capsys, tmp_path, tiny, write_experiment, monkeypatch, no_ray):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hide any GPU, so the test means the same everywhere
    tiny["resources"] = {"cpus": 1, "gpus": 0.25}
    results = tmp_path / "results"
    status, err = _run(capsys, write_experiment(tiny), results)
    assert status == 2
    assert "`resources.gpus`" in err and "Ray sees none" in err and "0.25" in err
    assert not results.exists()


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("sqlite:////nonexistent-dir/deeper/study.db", "connecting failed"),
        ("postgresql://search:s3cret@127.0.0.1:1/optuna", "`study_storage`"),
        ("postgresql:x:s3cret@127.0.0.1:1/db", "must be an RDB URL"),  # no //: SQLAlchemy cannot parse it
        (f"sqlite:///{Path(__file__).resolve()}", "file is not a database"),  # a file, but not SQLite
        ("postgresqls3cret@127.0.0.1:1/db", "must be an RDB URL"),  # no scheme at all
    ],
)
def test_study_storage_that_cannot_be_opened(capsys, tmp_path, tiny, write_experiment, no_ray, url, rule):
    tiny["study_storage"] = url
    results = tmp_path / "results"
    status, err = _run(capsys, write_experiment(tiny), results)
    assert status == 2, err
    assert "`study_storage`" in err and rule in err, err
    assert "s3cret" not in err  # a password in the URL is never printed
    assert not results.exists()


def test_unwritable_results_directory(capsys, tiny, write_experiment, no_ray):
    status, err = _run(capsys, write_experiment(tiny), "/proc/mtl-results")  # not writable, even for root
    assert status == 2
    assert "`results_dir`" in err and "must be writable" in err


def test_full_disk_stops_the_search_before_it_starts(capsys, tmp_path, tiny, write_experiment, monkeypatch):
    import shutil

    free_mb = shutil.disk_usage(tmp_path).free // 2**20
    monkeypatch.setenv("MTL_SEARCH_MIN_FREE_MB", str(free_mb + 1024))  # the disk holds less than the run needs
    results = tmp_path / "results"
    status, err = _run(capsys, write_experiment(tiny), results)
    assert status == 2
    assert "`results_dir`" in err and f"needs at least {free_mb + 1024} MiB free" in err
    assert not results.exists()


def test_results_directory_under_a_file(capsys, tmp_path, tiny, write_experiment):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, err = _run(capsys, write_experiment(tiny), blocker / "results")
    assert status == 2
    assert "`results_dir`" in err and "is a file" in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "must not be empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary", "binary"),
        (b"name: [unclosed", "must be valid YAML"),
        (b"- just\n- a list\n", "must be a YAML mapping"),
        (b"!!python/object/apply:os.system ['echo pwned']\n", "must be valid YAML"),
    ],
)
def test_unreadable_experiment_files(capsys, tmp_path, content, rule):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    status, err = _run(capsys, path, tmp_path / "results")
    assert status == 2
    assert rule in err, err
    assert not (tmp_path / "results").exists()


def test_missing_experiment_file(capsys, tmp_path):
    status, err = _run(capsys, tmp_path / "nope.yaml", tmp_path / "results")
    assert status == 2 and "`experiment`" in err and "nope.yaml" in err


def test_resume_of_a_directory_that_holds_no_search(capsys, tmp_path):
    status = main(["resume", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and "not a search run directory" in err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "resume", "results"):
        assert command in out


def test_results_of_a_run_with_a_damaged_trial_record_names_the_file(capsys, tmp_path):
    """A committed reference run, copied, one of its trial records overwritten with text that is not JSON."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(Path(__file__).parents[2] / "results" / "reference" / "shapes", run_dir,
                    ignore=shutil.ignore_patterns("retrain", "export*", "checkpoints", "tune"))
    damaged = sorted((run_dir / "trials").glob("*.json"))[0]
    damaged.write_text("{not json")
    assert main(["results", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtl-search: error: ") and err.count("\n") == 1, err
    assert f"{damaged} is not a trial record" in err and "move it out" in err
