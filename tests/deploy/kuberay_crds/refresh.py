"""Re-vendor KubeRay's RayCluster and RayJob schemas (see SOURCE.md).

    git clone https://github.com/ray-project/kuberay /tmp/kuberay
    python tests/deploy/kuberay_crds/refresh.py /tmp/kuberay v1.7.0

Reads ray-operator/config/crd/bases/ray.io_<plural>.yaml at the tag (git show, no checkout),
keeps the v1 version's openAPIV3Schema alone, and writes it as JSON next to this file. Then
update SOURCE.md (tag, commit, blob ids) and the helm --version in README.md and the headers
of deploy/kuberay/*.yaml.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
KINDS = {"rayclusters": "RayCluster", "rayjobs": "RayJob"}


def main(repo: str, tag: str) -> None:
    commit = subprocess.run(["git", "-C", repo, "rev-parse", f"{tag}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    print(f"{tag} = {commit}")
    for plural, kind in KINDS.items():
        path = f"ray-operator/config/crd/bases/ray.io_{plural}.yaml"
        text = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        blob = subprocess.run(["git", "-C", repo, "rev-parse", f"{commit}:{path}"], check=True,
                              capture_output=True, text=True).stdout.strip()
        crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        assert crd["spec"]["names"]["kind"] == kind, crd["spec"]["names"]
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        out = HERE / f"{plural}.v1.schema.json"
        out.write_text(json.dumps(version["schema"]["openAPIV3Schema"], indent=0) + "\n")
        print(f"{path} (blob {blob}, {len(text):,} bytes) -> {out.name} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
