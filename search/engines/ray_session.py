"""The processes of the local Ray a command starts: recorded when it starts, ended when the command ends, and
ended by the next command where a killed one left them behind.

Ray's own processes (GCS, raylet, dashboard, monitors) die with the driver that started them, but the ones the
raylet starts (the dashboard and runtime-env agents, idle workers) can outlive a SIGKILLed driver. A record in
the Ray session's directory names the session's processes by process id and start time (so a reused id is never
mistaken for them); the processes the raylet started carry its id in their environment (``RAY_RAYLET_PID``) and
are found by it. Linux /proc only; elsewhere nothing is recorded and nothing is ended.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

__all__ = ["RECORD", "end_leftovers", "end_session", "record_session", "session_processes"]

RECORD = "mtl-search-driver.json"  # in the Ray session directory
_PROC = Path("/proc")


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is no such process."""
    try:
        return int((_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, started: int) -> bool:
    return _started(pid) == started


def record_session(node) -> dict | None:
    """Write (and return) the record of the local Ray ``node`` (``ray._private.worker._global_node``) this process
    started."""
    if not _PROC.is_dir():
        return None
    processes = [[info.process.pid, _started(info.process.pid)] for infos in node.all_processes.values()
                 for info in infos]
    raylet = [info.process.pid for info in node.all_processes.get("raylet", [])]
    record = {"driver": [os.getpid(), _started(os.getpid())], "session_dir": node.get_session_dir_path(),
              "raylet": raylet[0] if raylet else None, "processes": [p for p in processes if p[1] is not None]}
    (Path(node.get_session_dir_path()) / RECORD).write_text(json.dumps(record))
    return record


def session_processes(record: dict) -> list[tuple[int, int]]:
    """``(pid, start time)`` of the live processes of the recorded session (the driver itself left out)."""
    recorded = {pid: started for pid, started in record["processes"]}
    raylet_env = f"RAY_RAYLET_PID={record['raylet']}".encode() if record.get("raylet") else None
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), record["driver"][0]):
            continue
        pid = int(entry.name)
        started = _started(pid)
        if started is None:
            continue
        member = recorded.get(pid) == started
        if not member and raylet_env is not None:
            try:
                member = raylet_env in (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
        if member:
            found.append((pid, started))
    return found


def end_session(record: dict, *, grace_s: float = 5.0) -> int:
    """SIGTERM the recorded session's processes, SIGKILL those left after ``grace_s``; how many there were."""
    processes = session_processes(record)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in processes:
            if _alive(pid, started):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.time() + grace_s
        while sig == signal.SIGTERM and time.time() < deadline and any(_alive(p, s) for p, s in processes):
            time.sleep(0.1)
    return len(processes)


def end_leftovers(temp_dir: Path) -> int:
    """End the processes of every recorded session under ``temp_dir`` (Ray's, e.g. /tmp/ray) whose driver is gone:
    a command that was killed. Returns how many processes were ended."""
    ended = 0
    for path in temp_dir.glob(f"session_*/{RECORD}"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(*record["driver"]):
            continue  # a command still running: its Ray is its own
        ended += end_session(record, grace_s=2.0)
        path.unlink(missing_ok=True)
    return ended
