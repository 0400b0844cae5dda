"""A Ray cluster on loopback, started with the same `ray start` lines as docker-compose.yml.

No Docker engine here, so the compose topology is reproduced with processes: the head and
each worker are `ray start ... --block` in their own process group, bound to 127.0.0.1 on
free ports, with Ray's token authentication on as in the compose file. Everything started
is stopped by process group id at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_command(service: str) -> list[str]:
    """The service's `command` from docker-compose.yml, as an argument list."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return shlex.split(compose["services"][service]["command"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback(args: list[str], head_port: int, *extra: str) -> list[str]:
    """The compose command on 127.0.0.1: service names become 127.0.0.1, ports become free ones."""
    out = []
    for arg in args:
        if arg.startswith("--port="):
            arg = f"--port={head_port}"
        elif arg.startswith("--address="):
            arg = f"--address=127.0.0.1:{head_port}"
        elif arg.startswith("--dashboard-host="):
            arg = "--dashboard-host=127.0.0.1"
        elif arg.startswith("--dashboard-port="):
            arg = f"--dashboard-port={_free_port()}"
        elif arg.startswith("--num-cpus="):
            continue
        out.append(arg)
    return [*out, "--node-ip-address=127.0.0.1", f"--dashboard-agent-listen-port={_free_port()}",
            f"--metrics-export-port={_free_port()}", *extra]


class LoopbackCluster:
    """A head and workers as separate process groups; ``env`` holds what a driver needs to join."""

    def __init__(self, tmp_path: Path):
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
        self.env.pop("RAY_ADDRESS", None)
        self.logs = tmp_path
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, service: str, cpus: int) -> None:
        command = _loopback(compose_command(service), self.port, f"--num-cpus={cpus}")
        log = open(self.logs / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def node_ids(self, expected: int, timeout: float = 90) -> dict[str, str]:
        """{"head": id, "worker": id, ...} once ``expected`` nodes are alive (worker ids in start order)."""
        code = ("import json, ray; ray.init(address=%r, logging_level='ERROR', log_to_driver=False); "
                "print(json.dumps([(n['NodeID'], 'node:__internal_head__' in n['Resources']) "
                "for n in ray.nodes() if n['Alive']]))") % self.address
        deadline = time.time() + timeout
        while True:
            result = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                                    timeout=120)
            nodes = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else []
            if len(nodes) >= expected:
                heads = [n for n, head in nodes if head]
                workers = [n for n, head in nodes if not head]
                return {"head": heads[0], **{f"worker{i}": n for i, n in enumerate(workers)}}
            if time.time() > deadline:
                raise TimeoutError(f"{len(nodes)} of {expected} Ray nodes came up: {result.stderr[-2000:]}")
            time.sleep(2)

    def kill(self, name: str) -> None:
        """SIGKILL every process of the node, as a lost machine: its raylet, agents and trial workers.

        They share the session the node's `ray start` began (trial workers get process groups of
        their own, so killing the group alone would leave them running).
        """
        process = self.nodes.pop(name)
        for pid in _session_members(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill(name)


def _session_members(sid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[3]) == sid:  # fields after "pid (comm)": state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def loopback_cluster(tmp_path):
    cluster = LoopbackCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
