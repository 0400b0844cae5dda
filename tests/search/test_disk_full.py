"""A disk that fills during a search: the search stops cleanly and says why; resume finishes it once there is room.

The results directory is on a small tmpfs that the test mounts (and unmounts), filled by a ballast file while the
first trials train.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml

from search.rundir.records import FINISHED, load_records

MIN_FREE_MB = 8  # what a run needs to start here; a search stops below a quarter of it (2 MiB)


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MiB tmpfs at tmp_path/disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); this test needs root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(path, leave_bytes: int) -> None:
    """Write a ballast file at ``path`` until the disk has ``leave_bytes`` free, or none (another program's way)."""
    with path.open("wb") as f:
        while (free := shutil.disk_usage(path.parent).free) > leave_bytes:
            try:
                f.write(b"\0" * min(2**20, free - leave_bytes))
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return


# Below the reserve, as a search's own checkpoints fill a disk; and full at once, as another program may fill it.
@pytest.mark.parametrize("leave_bytes", [3 * 2**19, 0], ids=["below-the-reserve", "full"])
def test_a_full_disk_stops_the_search_cleanly_and_resume_finishes_it_once_space_is_freed(small_disk, tiny,
                                                                                          leave_bytes):
    tiny["name"] = "full"
    tiny["budget"] = {"trials": 3, "max_epochs": 5}
    tiny["scheduler"] = {"grace_period": 5}  # nobody stops early: trials are still training when the disk fills
    experiment = small_disk.parent / "full.yaml"
    experiment.write_text(yaml.safe_dump(tiny))
    results = small_disk / "results"
    run_dir = results / "full"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MTL_SEARCH_MIN_FREE_MB": str(MIN_FREE_MB)}
    log = small_disk.parent / "run.txt"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "search.cli", "run", str(experiment), "--results-dir",
                                    str(results)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not any(r.epochs >= 1 for r in load_records(run_dir)):
            time.sleep(0.5)
        assert any(r.epochs >= 1 for r in load_records(run_dir)), log.read_text()[-3000:]
        ballast = small_disk / "ballast"
        _fill(ballast, leave_bytes)
        assert process.wait(timeout=240) == 130, log.read_text()[-3000:]
        output = log.read_text()
        assert "Stopping the search: " in output and "Free some space, then resume it." in output, output[-3000:]
        assert f"mtl-search resume {run_dir}" in output
        if leave_bytes:  # stopped in time: nothing failed to write
            assert "MiB a search keeps in reserve" in output and "Traceback" not in output, output[-3000:]
        before = {r.trial_id: r for r in load_records(run_dir)}
        assert not any(r.status == "failed" for r in before.values()), [r.failure for r in before.values()]
        assert sum(r.status in FINISHED for r in before.values()) < 3

        # Still full: resume refuses before Ray starts and says how much room it needs.
        refused = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(run_dir)], capture_output=True,
                                 text=True, env=env, timeout=120)
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        assert f"needs at least {MIN_FREE_MB} MiB free" in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1

        ballast.unlink()
        resumed = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(run_dir)], capture_output=True,
                                 text=True, env=env, timeout=400)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        after = {r.trial_id: r for r in load_records(run_dir)}
        assert len(after) == 3 and all(r.status in FINISHED and r.status != "failed" for r in after.values())
        for trial_id, record in before.items():
            if record.status in FINISHED:  # kept, not re-run
                assert after[trial_id].history == record.history
            elif record.epochs:  # continued from its checkpoint
                assert [h["epoch"] for h in after[trial_id].history] == list(range(1, after[trial_id].epochs + 1))
                # Ray Tune takes an epoch's checkpoint after recording its result, and the stop can fall between
                # the two (or, full at once, the checkpoint found no room): the last epoch may be trained again.
                kept = record.epochs - 1
                assert after[trial_id].history[:kept] == record.history[:kept]
        study = optuna.load_study(study_name="full", storage=f"sqlite:///{run_dir / 'study.db'}")
        assert len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]) == 3
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
