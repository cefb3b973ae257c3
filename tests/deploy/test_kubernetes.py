"""deploy/k8s: every manifest of the base, and every overlay built with kustomize (or,
without a kustomize binary, the overlay's JSON patches applied to the base here), is
validated strictly against the Kubernetes schemas bundled in kubernetes-validate
(offline) — KEDA's kinds against the CRDs kept in tests/deploy/keda/ — and the security
properties the design asks for hold."""

import copy
import shutil
import socket
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.crds import KUBE_VERSION, is_custom, validate_custom

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
BASES = ("control-plane", "runners")
ENVS = ("dev", "staging", "prod")
CONTROL_PLANE = ("web", "worker", "beat", "migrate")


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base_resources(name: str) -> list[dict]:
    kust = yaml.safe_load((K8S / "base" / name / "kustomization.yaml").read_text())
    return [doc for f in kust["resources"] for doc in load(K8S / "base" / name / f)]


def validate(doc: dict) -> None:
    if is_custom(doc):
        validate_custom(doc)
    else:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# --- a small kustomize for the fallback: what our overlays use, nothing more ------------


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc: dict, ops: list[dict]) -> None:
    for op in ops:
        *parents, last = _pointer(op["path"])
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if op["op"] == "add":
                node.insert(index, op["value"])
            elif op["op"] == "replace":
                assert index < len(node), op
                node[index] = op["value"]
            else:
                del node[index]
        else:
            if op["op"] == "replace":
                assert last in node, f"replace of a missing path {op['path']}"
            if op["op"] in ("add", "replace"):
                node[last] = op["value"]
            else:
                del node[last]


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in ("Deployment", "Job"):
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "ScaledJob":
        return doc["spec"]["jobTargetRef"]["template"]["spec"]
    return None


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def overlay_by_hand(env: str) -> list[dict]:
    docs = []
    for part in BASES:
        kust = yaml.safe_load((K8S / "overlays" / env / part / "kustomization.yaml").read_text())
        resources = copy.deepcopy(base_resources(part))
        resources += load(K8S / "overlays" / env / part / "namespace.yaml")
        for patch in kust.get("patches", []):
            target = patch["target"]
            hits = [
                d
                for d in resources
                if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
            ]
            assert len(hits) == 1, f"{env}/{part}: patch target {target} not in the base"
            json_patch(hits[0], yaml.safe_load(patch["patch"]))
        counts = {r["name"]: r["count"] for r in kust.get("replicas", [])}
        images = {i["name"]: i for i in kust.get("images", [])}
        for doc in resources:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = kust["namespace"]
            if doc["metadata"]["name"] in counts:
                doc["spec"]["replicas"] = counts.pop(doc["metadata"]["name"])
            spec = pod_spec(doc)
            for c in containers(spec) if spec else []:
                img = images.get(c["image"])
                assert img, f"{env}: no image override for {c['image']}"
                c["image"] = f"{img.get('newName', c['image'])}:{img['newTag']}"
        assert not counts, f"{env}: replicas for unknown {counts}"
        docs += resources
    return docs


def overlay(env: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return overlay_by_hand(env)
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / env)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Schemas ship with kubernetes-validate: validation must not need the network."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access during validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- schema validation -------------------------------------------------------------------


@pytest.mark.parametrize("name", BASES)
def test_every_base_manifest_validates_strictly(name):
    docs = base_resources(name)
    assert docs
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("env", ENVS)
def test_every_overlay_patch_applies_to_the_base_and_validates(env):
    docs = overlay_by_hand(env)
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("env", ENVS)
def test_every_built_overlay_validates_strictly(env):
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl (kustomize): the patch-by-patch test covers the overlays")
    docs = overlay(env)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Job", "ScaledJob", "TriggerAuthentication"} <= kinds
    assert {"Service", "Ingress"} <= kinds and "CronJob" not in kinds
    assert {"NetworkPolicy", "ConfigMap", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    for doc in docs:
        validate(doc)


def test_the_validator_rejects_what_the_api_server_would():
    doc = copy.deepcopy(base_resources("control-plane")[1])
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(doc)


# --- what the manifests must say -----------------------------------------------------------


def by_component(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for d in docs:
        component = d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        if pod_spec(d) is not None:
            out[component] = d
    return out


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_own_namespaces_and_pod_security(env):
    docs = overlay(env)
    namespaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    assert set(namespaces) == {f"deltaci-{env}", f"deltaci-{env}-runners"}
    control = namespaces[f"deltaci-{env}"]["metadata"]["labels"]
    assert control["pod-security.kubernetes.io/enforce"] == "restricted"
    runners = namespaces[f"deltaci-{env}-runners"]["metadata"]["labels"]
    assert runners["pod-security.kubernetes.io/audit"] == "restricted"
    workloads = by_component(docs)
    for component in CONTROL_PLANE:
        assert workloads[component]["metadata"]["namespace"] == f"deltaci-{env}"
    assert workloads["runner"]["metadata"]["namespace"] == f"deltaci-{env}-runners"
    config = next(
        d for d in docs if d["kind"] == "ConfigMap" and "runner" not in d["metadata"]["name"]
    )
    assert config["data"]["DELTACI_ENV"] == env


@pytest.mark.parametrize("env", ENVS)
def test_control_plane_pods_meet_the_restricted_standard(env):
    workloads = by_component(overlay(env))
    for component in CONTROL_PLANE:
        spec = pod_spec(workloads[component])
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for c in containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "add" not in sc["capabilities"] and not sc.get("privileged")
            assert {"cpu", "memory"} <= set(c["resources"]["requests"])
            assert {"cpu", "memory"} <= set(c["resources"]["limits"])
            assert "envFrom" in c and c["image"].startswith("registry.example.com/")


@pytest.mark.parametrize("env", ENVS)
def test_web_has_probes_and_beat_is_single(env):
    workloads = by_component(overlay(env))
    web = pod_spec(workloads["web"])["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod_spec(workloads["worker"])["containers"][0]["livenessProbe"]["exec"]
    beat = workloads["beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert pod_spec(workloads["migrate"])["containers"][0]["args"] == ["migrate"]


@pytest.mark.parametrize("env", ENVS)
def test_new_control_plane_pods_wait_for_the_migration_job(env):
    """Upgrade ordering: the Job migrates; web, worker and beat pods of the new image wait
    in an init container until the schema is current (never migrate themselves)."""
    workloads = by_component(overlay(env))
    image = pod_spec(workloads["migrate"])["containers"][0]["image"]
    for component in ("web", "worker", "beat"):
        spec = pod_spec(workloads[component])
        (init,) = spec["initContainers"]
        assert init["args"][:2] == ["manage", "wait_for_migrations"]
        assert init["image"] == spec["containers"][0]["image"] == image
        assert init["envFrom"] == spec["containers"][0]["envFrom"]
        assert "migrate" not in spec["containers"][0]["args"]


@pytest.mark.parametrize("env", ENVS)
def test_runners_are_single_use_pods_without_privileges(env):
    docs = overlay(env)
    pool = by_component(docs)["runner"]
    assert pool["kind"] == "ScaledJob"
    job = pool["spec"]["jobTargetRef"]
    assert job["parallelism"] == job["completions"] == 1 and job["backoffLimit"] == 0
    spec = job["template"]["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["hostUsers"] is False and spec["securityContext"]["runAsNonRoot"] is True
    (c,) = spec["containers"]
    assert c["args"][0] == "--once" and "--max-idle-seconds" in c["args"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert not c["securityContext"].get("privileged")
    token = next(e for e in c["env"] if e["name"] == "DELTACI_REGISTRATION_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == "deltaci-runner-registration"
    runner_config = next(
        d for d in docs if d["kind"] == "ConfigMap" and "runner" in d["metadata"]["name"]
    )
    assert runner_config["data"]["DELTACI_URL"] == (
        f"http://deltaci-web.deltaci-{env}.svc.cluster.local:8000"
    )


@pytest.mark.parametrize("env", ENVS)
def test_runners_reach_only_dns_the_control_plane_and_s3(env):
    docs = overlay(env)
    (policy,) = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "deltaci-runner"
    ]
    assert policy["metadata"]["namespace"] == f"deltaci-{env}-runners"
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "runner"}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["ingress"] == []
    dns, control, s3 = policy["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    (peer,) = control["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": f"deltaci-{env}"
    }
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"
    assert [p["port"] for p in control["ports"]] == [8000]
    (block,) = s3["to"]
    cidr = block["ipBlock"]["cidr"]
    assert not cidr.startswith("0.0.0.0") and not cidr.startswith("::/")
    assert [p["port"] for p in s3["ports"]] == [443]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert not ports & {5432, 6379}, "runners must never reach PostgreSQL or Redis"
    assert all(rule.get("ports") for rule in policy["spec"]["egress"])


@pytest.mark.parametrize("env", ENVS)
def test_every_config_map_and_secret_reference_resolves(env):
    """Generated ConfigMaps get a hash suffix: kustomize must rewrite every reference,
    the ScaledJob's included (base/runners/kustomizeconfig.yaml)."""
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl (kustomize): names are hashed only by a real build")
    docs = overlay(env)
    maps = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for d in docs
        if d["kind"] == "ConfigMap"
    }
    for doc in docs:
        spec = pod_spec(doc)
        for c in containers(spec) if spec else []:
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    ref = (doc["metadata"]["namespace"], source["configMapRef"]["name"])
                    assert ref in maps, f"{env}: {doc['kind']} refers to a missing ConfigMap {ref}"


def test_no_secret_material_is_committed():
    for path in K8S.rglob("*.yaml"):
        for doc in load(path):
            assert doc.get("kind") != "Secret", path
            text = yaml.safe_dump(doc)
            for word in ("SECRET_KEY=", "PASSWORD=", "DATABASE_URL=", "REDIS_URL="):
                assert word not in text, (path, word)
