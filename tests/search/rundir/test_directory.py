"""The run directory: chosen without overwriting, described by run.json, checked before use, and refused with
the command that converts it when an earlier version wrote it."""

import json
import os
import time

import pytest

from search.errors import ConfigError, SearchError, redact
from search.rundir.directory import (FORMAT, check_writable, choose_run_dir, create_run_dir, default_study_storage,
                                     needs_migration, read_run_info, record_session)


def _create(run_dir, **changes):
    """A run directory at exactly ``run_dir`` (which must be free)."""
    options = dict(storage_path=None, study_storage=None, address=None)
    created, info = create_run_dir(run_dir.parent, run_dir.name, "name: toy\n", **{**options, **changes})
    assert created == run_dir
    return info


def test_a_new_search_never_reuses_a_directory_that_holds_one(tmp_path):
    assert choose_run_dir(tmp_path, "toy") == tmp_path / "toy"
    (tmp_path / "toy").mkdir()
    assert choose_run_dir(tmp_path, "toy") == tmp_path / "toy"  # empty: nothing to overwrite
    (tmp_path / "toy").rmdir()
    _create(tmp_path / "toy")
    assert choose_run_dir(tmp_path, "toy") == tmp_path / "toy-2"
    (tmp_path / "toy-2" / "trials").mkdir(parents=True)
    assert choose_run_dir(tmp_path, "toy") == tmp_path / "toy-3"


def test_commands_started_at_the_same_moment_each_claim_their_own_directory(tmp_path):
    """Eight processes create a run directory for the same name at once: eight directories, each with its own
    experiment copy, none shared."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("spawn")) as pool:
        at = time.time() + 3  # every process asks at this moment (a spawned process takes about a second to start)
        made = list(pool.map(_claim, [(tmp_path, i, at) for i in range(8)]))
    assert sorted(made) == sorted(str(tmp_path / n) for n in ["toy", *(f"toy-{k}" for k in range(2, 9))])
    for i, run_dir in enumerate(made):
        assert (tmp_path / run_dir / "experiment.yaml").read_text() == f"name: toy\n# {i}\n"
        assert json.loads((tmp_path / run_dir / "run.json").read_text())["name"] == "toy"


def _claim(args):
    root, i, at = args
    time.sleep(max(0.0, at - time.time()))
    return str(create_run_dir(root, "toy", f"name: toy\n# {i}\n", storage_path=None, study_storage=None,
                              address=None)[0])


def test_run_json_stores_its_own_paths_relatively_so_a_moved_run_still_reads(tmp_path):
    _create(tmp_path / "toy")
    stored = json.loads((tmp_path / "toy" / "run.json").read_text())
    assert stored["storage_path"] == "." and stored["study_storage"] == "sqlite:///study.db"
    assert stored["format"] == FORMAT
    (tmp_path / "toy").rename(tmp_path / "moved")
    info = read_run_info(tmp_path / "moved")
    assert info.storage_path == str(tmp_path / "moved" / ".")
    assert info.study_storage == default_study_storage(tmp_path / "moved")
    assert (tmp_path / "moved" / "experiment.yaml").read_text() == "name: toy\n"


def test_run_json_keeps_no_password_and_resume_reads_it_from_the_experiment_copy(tmp_path):
    url = "postgresql://search:S3cret@db.example:5432/optuna"
    create_run_dir(tmp_path, "toy", f"name: toy\nstudy_storage: {url}\n", storage_path=None, study_storage=url,
                   address=None)
    text = (tmp_path / "toy" / "run.json").read_text()
    assert "S3cret" not in text and json.loads(text)["study_storage"] == "postgresql://search:***@db.example:5432/optuna"
    assert read_run_info(tmp_path / "toy").study_storage == url
    (tmp_path / "toy" / "experiment.yaml").write_text("name: toy\n")  # the copy lost it: the redacted URL stays
    assert read_run_info(tmp_path / "toy").study_storage == "postgresql://search:***@db.example:5432/optuna"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://search:S3cret@h:5432/db", "postgresql://search:***@h:5432/db"),
    ("postgresql:x:S3cret@127.0.0.1:1/db", "postgresql:x:***@127.0.0.1:1/db"),  # no // : still a password
    ("postgresql:S3cret@127.0.0.1/db", "postgresql:***@127.0.0.1/db"),
    ("mysql+pymysql://root:S3c:ret@h/db", "mysql+pymysql://root:***@h/db"),
    ("postgresql://search@h/db", "postgresql://search@h/db"),  # a user alone is no secret
    ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
])
def test_a_storage_url_is_shown_without_its_password(url, shown):
    assert redact(url) == shown


def test_each_session_is_appended_to_run_json(tmp_path):
    _create(tmp_path / "toy")
    first = record_session(tmp_path / "toy", command="run", started=1.0, statuses={"completed": 2},
                           best_objective=0.5)
    record_session(tmp_path / "toy", command="resume", started=2.0, statuses={"completed": 3}, best_objective=0.6)
    sessions = read_run_info(tmp_path / "toy").sessions
    assert [s["command"] for s in sessions] == ["run", "resume"] and sessions[0] == first
    assert sessions[1]["trials"] == {"completed": 3} and sessions[1]["best_objective"] == 0.6


def test_a_directory_that_is_no_run_or_is_damaged_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(SearchError, match="has no run.json.*mtl-search run"):
        read_run_info(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(SearchError, match="is damaged"):
        read_run_info(tmp_path)


def test_results_of_an_earlier_format_ask_for_the_migrate_command(tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    stored = {"name": "toy", "experiment_file": "experiment.yaml", "storage_path": ".",
              "study_storage": "sqlite:///study.db", "address": None, "created": 0.0}
    (run_dir / "run.json").write_text(json.dumps(stored))
    assert not needs_migration(run_dir) and read_run_info(run_dir).format == 1  # nothing written in it yet
    (run_dir / "trials").mkdir()
    (run_dir / "trials" / "a.json").write_text("{}")
    assert needs_migration(run_dir)
    with pytest.raises(SearchError, match=f"format 1; this one reads format {FORMAT}") as error:
        read_run_info(run_dir)
    assert f"mtl-search migrate {run_dir}" in str(error.value)


def test_an_unwritable_or_full_place_is_refused_before_anything_starts(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="must be a directory, but .* is a file"):
        check_writable(tmp_path / "file" / "run")
    with pytest.raises(ConfigError, match="needs at least"):
        check_writable(tmp_path / "run", min_free=2**62)
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="must be writable"):
            check_writable(tmp_path / "locked" / "run")
    check_writable(tmp_path / "run")  # a place that can be created and written
