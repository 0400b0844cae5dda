"""The leftovers of a killed command are found by the record of its Ray session and ended; nothing else is."""

import json
import os
import signal
import subprocess
import sys
import time

from search.engines import ray_session


def _sleeper(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={**os.environ, **env})


def _started(pid: int) -> int:
    return ray_session._started(pid)


def test_a_dead_drivers_processes_are_ended_and_a_live_drivers_are_kept(tmp_path):
    dead_driver = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_driver.wait()
    session = tmp_path / "session_2026-01-01_00-00-00_000000_1"
    session.mkdir()
    recorded = _sleeper({})  # a process the record names (as Ray's GCS or raylet would be)
    agent = _sleeper({"RAY_RAYLET_PID": str(recorded.pid)})  # started by that raylet: found by its environment
    stranger = _sleeper({"RAY_RAYLET_PID": "1"})  # another Ray's
    kept_session = tmp_path / "session_2026-01-01_00-00-00_000000_2"
    kept_session.mkdir()
    kept = _sleeper({})
    try:
        (session / ray_session.RECORD).write_text(json.dumps({
            "driver": [dead_driver.pid, 1], "session_dir": str(session), "raylet": recorded.pid,
            "processes": [[recorded.pid, _started(recorded.pid)]]}))
        (kept_session / ray_session.RECORD).write_text(json.dumps({  # its driver (this test) is alive
            "driver": [os.getpid(), _started(os.getpid())], "session_dir": str(kept_session), "raylet": None,
            "processes": [[kept.pid, _started(kept.pid)]]}))
        assert ray_session.end_leftovers(tmp_path) == 2
        for process in (recorded, agent):
            assert process.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
        time.sleep(0.5)
        assert stranger.poll() is None and kept.poll() is None
        assert not (session / ray_session.RECORD).exists() and (kept_session / ray_session.RECORD).exists()
    finally:
        for process in (recorded, agent, stranger, kept):
            process.kill()
            process.wait()


def test_a_reused_process_id_is_not_mistaken_for_the_recorded_process(tmp_path):
    other = _sleeper({})
    try:
        record = {"driver": [1, 0], "session_dir": str(tmp_path / "x"), "raylet": None,
                  "processes": [[other.pid, _started(other.pid) + 1]]}  # same id, another start time
        assert ray_session.session_processes(record) == []
    finally:
        other.kill()
        other.wait()
