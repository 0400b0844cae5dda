"""The malformed-input suite: every file under bad_inputs/ gives exit status 2, names its problem, leaves nothing.

bad_inputs/expected.yaml maps each experiment file to the fragment(s) its error message must hold: the
field, the rule and the value.
The experiment files cover wrong types, unknown keys, impossible ranges, references to
nothing, unreadable files; the npz_*.yaml ones point at malformed data files in bad_inputs/data/
(missing arrays, mismatched lengths, NaN/inf, bad labels, wrong shapes, pickles, garbage bytes).
"""

import hashlib
from pathlib import Path

import pytest
import yaml

from search.cli import main

HERE = Path(__file__).parent / "bad_inputs"
EXPECTED = yaml.safe_load((HERE / "expected.yaml").read_text())


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_the_suite_is_complete_and_large_enough():
    files = {p.name for p in HERE.glob("*.yaml")} - {"expected.yaml"}
    assert files == set(EXPECTED)
    data_files = list((HERE / "data").glob("*.npz"))
    assert len(EXPECTED) >= 30 and len(data_files) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_file_exits_2_and_names_the_problem(name, tmp_path, capsys, no_ray):
    before = _digest(HERE)
    results = tmp_path / "results"
    status = main(["run", str(HERE / name), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert status == 2, err
    fragments = EXPECTED[name] if isinstance(EXPECTED[name], list) else [EXPECTED[name]]
    assert all(fragment in err for fragment in fragments), err
    assert err.startswith("mtl-search: error: ") and err.count("\n") == 1  # one line, no traceback
    assert len(err) < 500, len(err)  # a value it echoes is cut short
    assert not results.exists()
    assert _digest(HERE) == before
