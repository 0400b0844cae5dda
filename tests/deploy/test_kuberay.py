"""deploy/kuberay/ is what KubeRay accepts and what this project runs (no Kubernetes needed).

The RayCluster and RayJob manifests are validated against the CRD schemas of the KubeRay
release the README installs (vendored in kuberay_crds/, see SOURCE.md), read as the API server
reads them; the rules KubeRay's operator adds on top (utils/validation.go, pod.go at v1.7.0)
are checked where these manifests meet them. The rest ties the manifests to the repository:
the commands parse with the CLI's own parser, the configs they name are in the image, the
images are the ones the Dockerfile and docker-compose.yml build, every Ray pod gets token
authentication from the Secret and the shared results volume at one path.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest
import yaml

from search.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kuberay"
CRDS = Path(__file__).resolve().parent / "kuberay_crds"

# KubeRay v1.7.0, ray-operator/controllers/ray/utils/constant.go
TOKEN_SECRET_KEY = "auth_token"  # RAY_AUTH_TOKEN_SECRET_KEY: the key authOptions.secretName's Secret must hold
CLUSTER_SELECTOR_KEY = "ray.io/cluster"  # RayJobClusterSelectorKey
MAX_CLUSTER_NAME = 53  # MaxRayClusterNameLength
MIN_RAY_FOR_TOKEN_AUTH = (2, 52, 0)  # utils/validation.go: authOptions.mode token


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def only(name: str, kind: str) -> dict:
    (doc,) = documents(name)
    api_version = "ray.io/v1" if kind in ("RayCluster", "RayJob") else "v1"
    assert (doc["apiVersion"], doc["kind"]) == (api_version, kind), name
    return doc


CLUSTER = only("raycluster.yaml", "RayCluster")
JOB = only("rayjob.yaml", "RayJob")
PVC = only("results-pvc.yaml", "PersistentVolumeClaim")
README = (ROOT / "README.md").read_text()
KUBERAY_README = README[README.index("### On Kubernetes (KubeRay)"):README.index("## Reliability")]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


# ---- the schemas, read as Kubernetes reads them ------------------------------------------------

def kube_schema(node):
    """A CRD's structural schema as a JSON Schema that refuses what the API server refuses.

    ``x-kubernetes-int-or-string``: integer or string; ``nullable``: also null; an object with
    ``properties`` accepts no other field (kubectl's default strict field validation; without
    it the server prunes them silently, a typo then simply vanishes). CEL rules cannot be
    evaluated here: a field that carries one (beyond the update-only ``self == oldSelf``) is refused.
    """
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if "properties" in out:
        out["properties"] = {name: kube_schema(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = kube_schema(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [kube_schema(sub) for sub in out[key]]
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if any(rule["rule"] != "self == oldSelf" for rule in out.get("x-kubernetes-validations", [])):
        return {"not": {}}  # refuses any value (a bare `false` schema loses the field's name in jsonschema's errors)
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def validator(kind: str) -> jsonschema.Draft7Validator:
    plural = {"RayCluster": "rayclusters", "RayJob": "rayjobs"}[kind]
    schema = kube_schema(json.loads((CRDS / f"{plural}.v1.schema.json").read_text()))
    return jsonschema.Draft7Validator(schema)


VALIDATORS = {kind: validator(kind) for kind in ("RayCluster", "RayJob")}


def schema_errors(doc: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in VALIDATORS[doc["kind"]].iter_errors(doc)]


@pytest.mark.parametrize("doc", [CLUSTER, JOB], ids=["raycluster.yaml", "rayjob.yaml"])
def test_manifest_is_valid_against_the_vendored_kuberay_crd_schema(doc):
    assert schema_errors(doc) == []


def test_the_vendored_schemas_are_kuberays_and_well_formed():
    source = (CRDS / "SOURCE.md").read_text()
    assert "v1.7.0" in source and "59d663aeec13760646da3db9c1cf8cfe883e30b7" in source
    assert "--version 1.7.0" in KUBERAY_README  # the operator the README installs is the one vendored
    for kind, check in VALIDATORS.items():
        jsonschema.Draft7Validator.check_schema(check.schema)
        assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(check.schema["properties"]), kind


def _set(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return doc


def _rename(doc: dict, path: str, new: str) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[new] = node.pop(last)
    return doc


HEAD_CONTAINER = "spec.headGroupSpec.template.spec.containers.0"
BROKEN = {
    "replicas is a string": (CLUSTER, lambda d: _set(d, "spec.workerGroupSpecs.0.replicas", "two"), "replicas"),
    "typo in a spec field": (CLUSTER, lambda d: _rename(d, "spec.workerGroupSpecs", "workerGroupSpec"),
                             "workerGroupSpec"),
    "typo in a container field": (CLUSTER, lambda d: _rename(d, f"{HEAD_CONTAINER}.imagePullPolicy",
                                                             "imagePullpolicy"), "imagePullpolicy"),
    "rayStartParams value not a string": (CLUSTER, lambda d: _set(d, "spec.headGroupSpec.rayStartParams.num-cpus", 0),
                                          "num-cpus"),
    "CPU limit not a quantity": (CLUSTER, lambda d: _set(d, f"{HEAD_CONTAINER}.resources.limits.cpu", "2 cores"),
                                 "cpu"),
    "unknown auth mode": (CLUSTER, lambda d: _set(d, "spec.authOptions.mode", "password"), "mode"),
    "entrypoint is a list": (JOB, lambda d: _set(d, "spec.entrypoint", ["mtl-search", "run"]), "entrypoint"),
    "typo in the RayJob spec": (JOB, lambda d: _rename(d, "spec.clusterSelector", "clusterSelecter"),
                                "clusterSelecter"),
    "a field with an unchecked CEL rule": (JOB, lambda d: _set(d, "spec.managedBy", "someone"), "managedBy"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_the_validator_catches_a_broken_manifest(case):
    doc, breaks, where = BROKEN[case]
    errors = schema_errors(breaks(doc))
    assert errors, case
    assert any(where in e for e in errors), errors


def test_int_or_string_reads_as_kubernetes_reads_it():
    check = jsonschema.Draft7Validator(kube_schema({
        "type": "object", "properties": {"q": {"x-kubernetes-int-or-string": True}, "n": {"type": "string",
                                                                                        "nullable": True}}}))
    for good in ({"q": 1}, {"q": "1"}, {"q": "500m"}, {"n": None}, {"n": "x"}):
        assert check.is_valid(good), good
    for bad in ({"q": [1]}, {"q": 1.5}, {"q": {"a": 1}}, {"n": 1}, {"other": 1}):
        assert not check.is_valid(bad), bad


# ---- what KubeRay's operator adds (utils/validation.go, common/pod.go at v1.7.0) -------------

def pod_groups() -> dict[str, dict]:
    """Every pod template of the RayCluster, by group ('head' and each worker group's name), with its params."""
    spec = CLUSTER["spec"]
    groups = {"head": spec["headGroupSpec"]}
    groups.update({g["groupName"]: g for g in spec["workerGroupSpecs"]})
    return groups


def effective_env(container: dict) -> dict[str, dict]:
    """The Ray container's env once the operator has added what authOptions asks for
    (SetContainerTokenAuthEnvVars: each variable only where the container does not set it)."""
    env = {e["name"]: e for e in container.get("env", [])}
    auth = CLUSTER["spec"].get("authOptions") or {}
    if auth.get("mode") == "token" and not auth.get("enableK8sTokenAuth"):
        env.setdefault("RAY_AUTH_MODE", {"name": "RAY_AUTH_MODE", "value": "token"})
        secret = auth.get("secretName") or CLUSTER["metadata"]["name"]
        env.setdefault("RAY_AUTH_TOKEN", {"name": "RAY_AUTH_TOKEN", "valueFrom": {
            "secretKeyRef": {"name": secret, "key": TOKEN_SECRET_KEY}}})
    return env


def test_every_ray_container_gets_token_authentication_from_the_secret():
    auth = CLUSTER["spec"]["authOptions"]
    assert auth == {"mode": "token", "secretName": "mtl-search-ray-token"}
    version = tuple(int(p) for p in CLUSTER["spec"]["rayVersion"].split("."))
    assert version >= MIN_RAY_FOR_TOKEN_AUTH  # or the operator refuses authOptions
    for group, spec in pod_groups().items():
        containers = spec["template"]["spec"]["containers"]
        assert len(containers) == 1, f"{group}: the operator sets the token on container 0 only"
        env = effective_env(containers[0])
        assert env["RAY_AUTH_MODE"] == {"name": "RAY_AUTH_MODE", "value": "token"}, group
        assert env["RAY_AUTH_TOKEN"] == {"name": "RAY_AUTH_TOKEN", "valueFrom": {
            "secretKeyRef": {"name": "mtl-search-ray-token", "key": TOKEN_SECRET_KEY}}}, group
    assert "ENV RAY_AUTH_MODE=token" in DOCKERFILE  # and the image asks for it too, as in compose


def test_the_readme_creates_the_secret_the_cluster_reads():
    (line,) = [x for x in KUBERAY_README.splitlines() if x.startswith("kubectl create secret")]
    match = re.match(r"kubectl create secret generic (\S+) --from-literal=(\w+)=", line)
    assert match and match.groups() == (CLUSTER["spec"]["authOptions"]["secretName"], TOKEN_SECRET_KEY), line
    assert "secrets.token_hex(32)" in line  # a fresh random token, never one written in the repository
    assert not any(d.get("kind") == "Secret" for f in DEPLOY.glob("*.yaml") for d in documents(f.name))


def quantity(value) -> Fraction:
    """A Kubernetes quantity (CPU or memory) as a number."""
    units = {"m": Fraction(1, 1000), "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20,
             "Gi": 2**30, "Ti": 2**40}
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    return Fraction(number) * units[unit]


def test_num_cpus_and_gpus_match_the_container_limits():
    for group, spec in pod_groups().items():
        (container,) = spec["template"]["spec"]["containers"]
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        for resource in ("cpu", "memory"):
            assert quantity(requests[resource]) <= quantity(limits[resource]), (group, resource)
        cpus = quantity(spec["rayStartParams"]["num-cpus"])
        if group == "head":
            assert cpus <= quantity(limits["cpu"]), group  # 0: the head keeps its CPUs for the GCS and the driver
        else:
            assert cpus == quantity(limits["cpu"]) >= 1, group
        gpus = limits.get("nvidia.com/gpu", 0)
        assert requests.get("nvidia.com/gpu", 0) == gpus, group  # extended resources: requests = limits
        assert int(spec["rayStartParams"].get("num-gpus", 0)) == gpus, group


def test_the_gpu_group_asks_for_a_gpu_and_the_others_do_not():
    groups = pod_groups()
    assert set(groups) == {"head", "cpu", "gpu"}
    (gpu,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == gpu["resources"]["requests"]["nvidia.com/gpu"] == 1
    for group in ("head", "cpu"):
        (container,) = groups[group]["template"]["spec"]["containers"]
        assert "nvidia.com/gpu" not in json.dumps(container["resources"]), group


def test_worker_groups_are_valid_without_the_autoscaler():
    assert CLUSTER["spec"]["enableInTreeAutoscaling"] is False
    for group in CLUSTER["spec"]["workerGroupSpecs"]:  # min and max must both be set, min <= replicas <= max
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        assert "resources" not in group  # not both rayStartParams num-cpus and group resources
    name = CLUSTER["metadata"]["name"]
    assert len(name) <= MAX_CLUSTER_NAME and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)


def test_every_pod_mounts_the_shared_results_claim_at_one_path():
    claim = PVC["metadata"]["name"]
    paths = set()
    for group, spec in pod_groups().items():
        pod = spec["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        mounts = [m for m in container["volumeMounts"]
                  if volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == claim]
        assert len(mounts) == 1 and not mounts[0].get("readOnly"), group
        paths.add(mounts[0]["mountPath"])
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 1000, group
    assert paths == {"/results"}
    assert "useradd --create-home --uid 1000 mtl" in DOCKERFILE and "chown mtl:mtl /results" in DOCKERFILE


def test_the_results_claim_is_shared_storage():
    assert PVC["metadata"]["name"] == "mtl-search-results"
    assert PVC["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on different machines write to it
    assert quantity(PVC["spec"]["resources"]["requests"]["storage"]) >= 2**30


def test_images_are_the_ones_the_dockerfile_and_compose_build():
    services = COMPOSE["services"]
    cpu_image, gpu_image = services["head"]["image"], services["gpu-worker"]["image"]
    assert (cpu_image, gpu_image) == ("mtl-search:latest", "mtl-search:gpu")
    assert services["gpu-worker"]["build"]["args"] == {"EXTRAS": "cuda"} and "ARG EXTRAS" in DOCKERFILE
    images = {group: spec["template"]["spec"]["containers"][0]["image"] for group, spec in pod_groups().items()}
    assert images == {"head": cpu_image, "cpu": cpu_image, "gpu": gpu_image}
    (submitter,) = JOB["spec"]["submitterPodTemplate"]["spec"]["containers"]
    assert submitter["image"] == cpu_image  # KubeRay's default: the head's image
    assert f"docker build -t {cpu_image} ." in KUBERAY_README
    assert f"docker build --build-arg EXTRAS=cuda -t {gpu_image} ." in KUBERAY_README


def test_nothing_is_exposed_outside_the_kubernetes_cluster():
    head = CLUSTER["spec"]["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress") and "headService" not in head
    for group, spec in pod_groups().items():
        pod = spec["template"]["spec"]
        assert not pod.get("hostNetwork"), group
        assert not any("hostPort" in p for c in pod["containers"] for p in c.get("ports", [])), group
    kinds = {d["kind"] for f in DEPLOY.glob("*.yaml") for d in documents(f.name)}
    assert kinds == {"RayCluster", "RayJob", "PersistentVolumeClaim"}  # no Service, Ingress, Route
    assert "kubectl port-forward svc/mtl-search-head-svc 8265:8265" in KUBERAY_README  # <name>-head-svc


def test_the_rayjob_submits_to_this_cluster():
    spec = JOB["spec"]
    assert spec["clusterSelector"] == {CLUSTER_SELECTOR_KEY: CLUSTER["metadata"]["name"]}
    assert "rayClusterSpec" not in spec and not spec.get("shutdownAfterJobFinishes")
    # ValidateRayJobSpec: clusterSelector mode takes no suspend, no backoffLimit > 0, no SidecarMode
    assert not spec.get("suspend") and not spec.get("backoffLimit")
    assert spec["submissionMode"] == "K8sJobMode"
    template = spec["submitterPodTemplate"]["spec"]
    assert template["restartPolicy"] == "Never" and "command" not in template["containers"][0]


# ---- the commands: the CLI accepts them, and what they name exists ---------------------------

(SUBCOMMANDS,) = [sorted(a.choices, key=len, reverse=True) for a in build_parser()._actions
                  if isinstance(a, argparse._SubParsersAction)]
COMMAND = re.compile(r"(?<![\w/.:-])mtl-search[ \t]+(?:" + "|".join(map(re.escape, SUBCOMMANDS)) +
                     r")\b[^\n#`\"]*")
PROSE = re.compile(r"`[^`\n]+`")  # `mtl-search run` named in a sentence is not a command line


def commands() -> dict[str, list[str]]:
    """Every `mtl-search SUBCOMMAND ...` line written in deploy/kuberay/ (entrypoints, examples in
    comments) and in the README's KubeRay part, by where it was found."""
    found = {f"deploy/kuberay/{f.name}": f.read_text() for f in sorted(DEPLOY.glob("*.yaml"))}
    found["README.md (On Kubernetes)"] = KUBERAY_README
    return {where: [m.group(0).strip() for m in COMMAND.finditer(PROSE.sub("", text))]
            for where, text in found.items()}


def parse(command: str):
    try:
        return build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        raise AssertionError(f"the CLI refuses {command!r} (exit {exc.code})") from None


WORKDIR = re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE, flags=re.M)[-1]


def in_repo(path: Path) -> Path:
    """A path in the image (WORKDIR /app holds configs/, copied from the repository) as a repository path."""
    assert "COPY configs ./configs" in DOCKERFILE
    relative = path.relative_to(WORKDIR) if path.is_absolute() else path
    return ROOT / relative


def test_the_entrypoint_is_a_search_the_cli_accepts_on_the_shared_volume():
    args = parse(JOB["spec"]["entrypoint"])
    assert args.command == "run"
    assert args.address is None  # Ray's job supervisor sets RAY_ADDRESS for the entrypoint
    assert str(args.results_dir) == "/results"
    assert args.experiment.is_absolute() and in_repo(args.experiment).is_file(), args.experiment


def test_every_command_written_parses_and_names_what_exists():
    found = commands()
    assert found["deploy/kuberay/rayjob.yaml"] and found["README.md (On Kubernetes)"], found
    names = {}
    for where, lines in found.items():
        for line in lines:
            args = parse(line)
            if args.command == "run":
                experiment = in_repo(args.experiment)
                assert experiment.is_file(), (where, line)
                names[yaml.safe_load(experiment.read_text())["name"]] = args.results_dir
    assert names == {"shapes": Path("/results")}
    for where, lines in found.items():  # the later steps read the run directory the search writes
        for line in lines:
            args = parse(line)
            if getattr(args, "run_dir", None) is not None:
                assert args.run_dir == Path("/results/shapes"), (where, line)
            if getattr(args, "out", None) is not None:
                assert args.out.is_relative_to("/results"), (where, line)


@pytest.mark.parametrize("command", ["mtl-search run --results-dir /results",
                                     "mtl-search run /app/configs/shapes.yaml --result-dir /results",
                                     "mtl-search export /results/shapes"])
def test_the_command_check_refuses_what_the_cli_refuses(command, capsys):
    with pytest.raises(AssertionError, match="the CLI refuses"):
        parse(command)
