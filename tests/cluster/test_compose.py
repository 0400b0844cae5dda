"""docker-compose.yml keeps to the security rules the README states (no Docker engine needed to check)."""

import yaml

from tests.cluster.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_only_the_dashboard_is_published_and_only_on_localhost():
    published = {name: s.get("ports", []) for name, s in SERVICES.items() if s.get("ports")}
    assert published == {"head": ["127.0.0.1:8265:8265"]}


def test_every_node_uses_token_authentication_and_the_shared_results_volume():
    for name, service in SERVICES.items():
        assert service["environment"]["RAY_AUTH_MODE"] == "token", name
        assert service["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name
        assert "results:/results" in service["volumes"], name
    assert "results" in COMPOSE["volumes"]


def test_workers_join_the_head_and_the_gpu_worker_reserves_a_gpu():
    assert SERVICES["head"]["command"].startswith("ray start --head --port=6379")
    for name in ("cpu-worker", "gpu-worker"):
        assert SERVICES[name]["command"].startswith("ray start --address=head:6379"), name
    devices = SERVICES["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert SERVICES["gpu-worker"]["profiles"] == ["gpu"]
    assert "ports" not in SERVICES["cpu-worker"] and "ports" not in SERVICES["gpu-worker"]
