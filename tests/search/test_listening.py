"""The sockets say where a search listens: every listening socket of `mtl-search run` on the embedded Ray, and of
every process it starts (Ray's GCS, raylet, agents, workers), is bound to 127.0.0.1.

Read from /proc (the sockets each process holds, and the kernel's table of TCP sockets), while the search trains.
"""

import ipaddress
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

LISTEN = "0A"  # TCP state in /proc/net/tcp


def _descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in family} - family
        grown, family = bool(more), family | more
    return family


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``(ip, port)`` of an address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    ip = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
    return ip, int(port, 16)


def _loopback(ip) -> bool:
    return ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
                              and ip.ipv4_mapped.is_loopback)


def _listening(pids: set[int]) -> dict[tuple, list[int]]:
    """(ip, port) -> the pids (of ``pids``) that hold a listening TCP socket on it."""
    owner = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found: dict[tuple, list[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == LISTEN and cols[9] in owner:
                found.setdefault(_address(cols[1]), []).append(owner[cols[9]])
    return found


def test_a_search_on_the_embedded_ray_listens_on_loopback_only(tmp_path, tiny):
    tiny["budget"] = {"trials": 2, "max_epochs": 30}
    tiny["scheduler"] = {"grace_period": 30}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    run_dir = tmp_path / "results" / "tiny"
    command = subprocess.Popen([sys.executable, "-m", "search.cli", "run", str(path), "--results-dir",
                                str(tmp_path / "results")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, sockets = time.time() + 240, {}
        # Sampled while trials train (their first epoch is recorded), when workers, agents and servers are all up.
        while time.time() < deadline and command.poll() is None:
            if any(run_dir.glob("trials/*.json")) and '"epoch"' in "".join(
                    p.read_text() for p in run_dir.glob("trials/*.json")):
                for _ in range(3):
                    for address, pids in _listening(_descendants(command.pid)).items():
                        sockets.setdefault(address, set()).update(pids)
                    time.sleep(1)
                break
            time.sleep(0.5)
    finally:
        command.send_signal(signal.SIGINT)  # Ctrl-C: the search stops and shuts its Ray down
        try:
            output = command.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            command.kill()
            output = command.communicate()[0]
    assert sockets, f"no listening socket seen while the search trained:\n{output[-2000:]}"
    outside = {f"{ip}:{port}": pids for (ip, port), pids in sockets.items() if not _loopback(ip)}
    assert not outside, f"listening beyond loopback: {outside} (all: {sorted(map(str, sockets))})"
    assert len(sockets) >= 5  # GCS, raylet, object manager, the agents, the driver and workers: all were seen
