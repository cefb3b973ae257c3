"""The runner pool's KEDA resources: valid against the KEDA CRDs kept in this repository
(never a copy elsewhere on the machine), strictly; and wired to the real queue-depth
endpoint — the URL each environment's scaler polls is one this control plane answers,
for that environment, with the token the TriggerAuthentication supplies."""

import copy
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from django.http import QueryDict
from django.urls import resolve

from apps.runners.api.queue import QueueDepthView, _params
from tests.deploy import crds
from tests.deploy.test_kubernetes import ENVS, base_resources, overlay

ROOT = Path(__file__).resolve().parents[2]


def keda(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs if crds.is_custom(d)}


def test_the_crds_are_the_repository_copy_with_its_license():
    assert crds.KEDA.is_relative_to(ROOT)
    assert "Apache License" in (crds.KEDA / "LICENSE").read_text()
    assert set(crds.schemas()) == {
        ("keda.sh/v1alpha1", "ScaledJob"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }


def test_the_base_resources_validate_against_the_crds():
    found = keda(base_resources("runners"))
    assert set(found) == {"ScaledJob", "TriggerAuthentication"}
    for doc in found.values():
        crds.validate_custom(doc)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("ScaledJob", ("spec", "maxReplicaCount"), "ten"),
        ("ScaledJob", ("spec", "scalingStrategy", "strategy"), "fastest"),
        ("ScaledJob", ("spec", "maxReplicas"), 10),  # misspelt: pruned by an API server
        ("ScaledJob", ("spec", "triggers"), None),
        ("ScaledJob", ("spec", "jobTargetRef", "template", "spec", "hostUser"), False),
        ("ScaledJob", ("spec", "jobTargetRef", "backoffLimit"), "0"),
        ("TriggerAuthentication", ("spec", "secretTargetRef"), [{"parameter": "token"}]),
        ("TriggerAuthentication", ("spec", "secretRef"), []),
    ],
)
def test_the_validator_rejects_what_keda_would(kind, path, value):
    doc = copy.deepcopy(keda(base_resources("runners"))[kind])
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        crds.validate_custom(doc)


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_scales_on_its_own_queue(env):
    found = keda(overlay(env))
    job, auth = found["ScaledJob"], found["TriggerAuthentication"]
    assert job["metadata"]["namespace"] == auth["metadata"]["namespace"] == f"deltaci-{env}-runners"
    spec = job["spec"]
    assert spec["minReplicaCount"] == 0 and 1 <= spec["maxReplicaCount"] <= 100
    assert spec["scalingStrategy"]["strategy"] == "accurate"
    assert spec["rollout"]["strategy"] == "gradual", "an update must not kill running jobs"
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "metrics-api" and meta["authMode"] == "bearer"
    assert meta["valueLocation"] == "queued" and meta["targetValue"] == "1"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref == {"parameter": "token", "name": "deltaci-queue-token", "key": "token"}
    url = urlsplit(meta["url"])
    assert url.netloc == f"deltaci-web.deltaci-{env}.svc.cluster.local:8000"
    assert resolve(url.path).func.view_class is QueueDepthView
    environment, labels = _params(QueryDict(url.query))
    assert environment == env and "os:linux" in labels


@pytest.mark.parametrize("env", ENVS)
def test_the_scaler_host_is_an_allowed_host_of_the_control_plane(env):
    docs = overlay(env)
    url = urlsplit(keda(docs)["ScaledJob"]["spec"]["triggers"][0]["metadata"]["url"])
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == f"deltaci-{env}"
    )
    assert url.hostname in config["data"]["ALLOWED_HOSTS"].split(",")
