"""Where trials run: an embedded Ray on this machine, or a running cluster joined by address."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from search.engines import ray_session
from search.experiment.config import Resources
from search.errors import ConfigError, SearchError

__all__ = ["local_gpu_count", "check_local_resources", "start_ray", "stop_ray", "check_cluster", "check_shared_storage",
           "check_shared_files"]


def local_gpu_count() -> int:
    """NVIDIA GPUs on this machine that a local Ray would see (0 without a driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    count = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    if visible:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return count


def check_local_resources(resources: Resources, concurrency: int) -> None:
    """Before starting an embedded Ray: the trial's request must fit on this machine."""
    cpus = os.cpu_count() or 1
    if resources.cpus > cpus:
        raise ConfigError("resources.cpus", f"must be <= the {cpus} CPUs of this machine", resources.cpus)
    gpus = local_gpu_count()
    if resources.gpus > 0 and gpus == 0:
        raise ConfigError("resources.gpus", "asks for a GPU, but Ray sees none on this machine (nvidia-smi finds no "
                          "GPU); set resources.gpus: 0 or run on a GPU machine or cluster", resources.gpus)
    if resources.gpus > gpus:
        raise ConfigError("resources.gpus", f"must be <= the {gpus} GPU(s) of this machine", resources.gpus)


_session: dict | None = None  # the record of the local Ray this process started (search.engines.ray_session)


def start_ray(address: str | None) -> str:
    """Start an embedded Ray bound to 127.0.0.1, or join the cluster at ``address``. Returns a description."""
    import ray

    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            auth = "" if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") else (
                "\nA cluster with token authentication (as docker-compose.yml starts it) also needs "
                "RAY_AUTH_MODE=token and the cluster's RAY_AUTH_TOKEN in this shell.")
            raise SearchError(f"Could not join the Ray cluster at {address!r}: {exc}\n"
                              "Start it with `ray start --head` (see README, 'Run on a cluster') "
                              f"or drop --address to run on this machine.{auth}") from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return f"Ray cluster at {address}: {len(nodes)} node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _loopback_only()
    from search.engines.worker import TEST_ENV_PREFIX

    # Forward the test hooks explicitly: workers a local Ray pre-started need not share this environment.
    env = {k: v for k, v in os.environ.items() if k.startswith(TEST_ENV_PREFIX)} or None
    from ray._common.utils import get_default_ray_temp_dir

    ended = ray_session.end_leftovers(Path(get_default_ray_temp_dir()))
    # address="local": always a new Ray of our own, even where `ray start` left a cluster address behind.
    ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": env} if env else None, **quiet)
    global _session
    _session = ray_session.record_session(ray._private.worker._global_node)
    left = f"; ended {ended} process(es) an earlier, killed command had left running" if ended else ""
    return f"local Ray on 127.0.0.1 with {os.cpu_count()} CPUs{left}"


def stop_ray() -> None:
    """Shut down Ray if this process started or joined it, and end whatever the local Ray left running."""
    import ray

    global _session
    if ray.is_initialized():
        ray.shutdown()
    if _session:
        ray_session.end_session(_session)
        (Path(_session["session_dir"]) / ray_session.RECORD).unlink(missing_ok=True)
        _session = None


def _loopback_only() -> None:
    """Make the Ray this process starts listen on 127.0.0.1 alone.

    Ray 2.60 on Linux turns ``_node_ip_address="127.0.0.1"`` into the machine's outward address (services.
    ``resolve_ip_for_localhost``, unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is 0: ray-project/ray#26293), and
    its gRPC servers, agents and metrics exporter bind every interface unless the node's address is loopback.
    The flag is read when ``ray`` is imported, hence set in both places: this process's copy, and the environment
    the processes Ray starts inherit. tests/search/test_listening.py reads the sockets that result."""
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def check_cluster(resources: Resources) -> None:
    """On a joined cluster: some node must offer what one trial asks for."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if resources.gpus > 0 and not any(n.get("GPU", 0) > 0 for n in nodes):
        raise ConfigError("resources.gpus", "asks for a GPU, but no node of the cluster has one", resources.gpus)
    if not any(n.get("CPU", 0) >= resources.cpus and n.get("GPU", 0) >= resources.gpus for n in nodes):
        raise ConfigError("resources", "ask for more than any single node of the cluster offers",
                          {"cpus": resources.cpus, "gpus": resources.gpus})


def check_shared_storage(path: Path) -> None:
    """Every alive node must see ``path`` (checked with a marker file this driver writes)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = path / f".shared-check-{uuid.uuid4().hex}"
    marker.write_text("mtl-search")

    @ray.remote(num_cpus=0)
    def sees(p: str) -> bool:
        return Path(p).is_file()

    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {n["NodeManagerAddress"]: sees.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(str(marker))
            for n in nodes}
        missing = [addr for addr, ref in refs.items() if not ray.get(ref, timeout=60)]
    finally:
        marker.unlink(missing_ok=True)
    if missing:
        raise SearchError(f"The storage path {path} is not shared: node(s) {missing} cannot see it. On a cluster, "
                          "--storage must be a directory every node mounts at the same path (NFS, a shared volume).")


def check_shared_files(paths: list[str], what: str) -> None:
    """Every alive node must see each of ``paths`` with the size it has here (nothing is written: the files are
    the user's). For data read from disk by the trials: a folder only the driver's machine holds fails here,
    before any trial starts, not in every trial."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not paths:
        return
    here = [Path(p).stat().st_size for p in paths]

    @ray.remote(num_cpus=0)
    def sizes(ps: list[str]) -> list[int | None]:
        return [Path(p).stat().st_size if Path(p).is_file() else None for p in ps]

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {n["NodeManagerAddress"]: sizes.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(paths) for n in nodes}
    for address, ref in refs.items():
        seen = ray.get(ref, timeout=60)
        differ = [p for p, mine, theirs in zip(paths, here, seen) if mine != theirs]
        if differ:
            raise SearchError(f"The {what} is not shared: node {address} does not see {differ[0]} as this machine "
                              "does. On a cluster, the data must be on storage every node mounts at the same path "
                              "(NFS, a shared volume).")
