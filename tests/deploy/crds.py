"""Strict validation of custom resources against the CRD schemas kept in this repository
(tests/deploy/keda/, KEDA's own CRDs): offline, and stricter than an API server that
prunes unknown fields, so a misspelt field fails here instead of vanishing."""

import copy
import functools
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KEDA = Path(__file__).resolve().parent / "keda"
CRD_FILES = ("keda.sh_scaledjobs.yaml", "keda.sh_triggerauthentications.yaml")
KUBE_VERSION = "1.33.0"  # hostUsers and procMount need >= 1.33 (deploy/README.md)


def _strict(schema: dict) -> dict:
    """Objects that list their properties accept no others (unless the schema says it
    preserves unknown fields); OpenAPI-only keywords are dropped."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes") and k != "nullable"}
    for key in ("properties", "patternProperties"):
        if key in out:
            out[key] = {name: _strict(sub) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_strict(sub) for sub in out[key]]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict schema of that served version."""
    found = {}
    for name in CRD_FILES:
        crd = yaml.safe_load((KEDA / name).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def is_custom(doc: dict) -> bool:
    return doc.get("apiVersion", "").startswith("keda.sh/")


def validate_custom(doc: dict) -> None:
    """A KEDA resource against its CRD; a ScaledJob's Job spec also against the built-in
    batch/v1 Job schema (kubernetes-validate), which the CRD only sketches."""
    schema = schemas().get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        raise jsonschema.ValidationError(f"no CRD for {doc['apiVersion']} {doc['kind']}")
    jsonschema.Draft4Validator(schema).validate(doc)
    if doc["kind"] == "ScaledJob":
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": doc["metadata"]["name"]},
            "spec": copy.deepcopy(doc["spec"]["jobTargetRef"]),
        }
        kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
