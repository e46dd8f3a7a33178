"""`labctl export --to kubernetes`: every shipped lab's manifests validate against the
Kubernetes schemas (kubernetes-validate's bundled ones, strict: no unknown field), the names
the rendered configs use resolve to the right pods, and a lab that needs what Kubernetes
does not give is refused with the reason."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate import utils as schemas

from labctl import images
from labctl.export.kubernetes import ExportError, Manifest, export_kubernetes, lab_manifests
from labctl.lifecycle import required_roles
from labctl.model.lab import Lab, list_lab_names, load_lab
from labctl.model.overrides import parse_overrides

VERSION = kubernetes_validate.latest_version()
REFUSED = {"lb-dns": "fixed addresses on the lab network", "lb-keepalived": "fixed subnet 10.213.140.0/24"}


def _images(lab: Lab) -> dict[str, str]:
    return {role: images.image_ref(role, "local") for role in required_roles(lab)}


def _manifests(name: str, overrides: list[str] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    lab = load_lab(name, parse_overrides(overrides or []))
    return {(m.kind, m.name): m.body for m in lab_manifests(lab, _images(lab))}


@functools.cache
def _definitions() -> referencing.Registry:
    found = schemas.schema_contents(f"kubernetes-json-schema/{_schema_folder()}/_definitions.json", VERSION)
    return referencing.Resource.from_contents(found) @ referencing.Registry()


def _schema_folder() -> str:
    full = [v for v in schemas.all_versions() if schemas.major_minor(v) <= schemas.major_minor(VERSION)][-1]
    return f"v{full}-local-strict"


@functools.cache
def _validator(kind: str, api_version: str) -> Any:
    # kubernetes_validate.validate's own schemas and checks, its 2 MB of definitions read once:
    # read per call they made this test take most of a minute.
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schemas.schema_contents(f"kubernetes-json-schema/{_schema_folder()}/{kind.lower()}-{group}.json",
                                     VERSION)
    registry = referencing.Resource.from_contents(schema) @ _definitions()
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _problems(body: dict[str, Any]) -> list[str]:
    validator = _validator(body["kind"], body["apiVersion"])
    return [f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(body)]


@pytest.mark.parametrize("name", [n for n in list_lab_names() if n not in REFUSED])
def test_every_exported_manifest_validates_against_the_kubernetes_schemas(name: str) -> None:
    problems = {f"{kind} {object_name}": _problems(body) for (kind, object_name), body in _manifests(name).items()}
    assert not {k: v for k, v in problems.items() if v}, f"{name}: {problems}"


def test_the_validator_refuses_a_broken_manifest_as_kubernetes_validate_does() -> None:
    deployment = copy.deepcopy(_manifests("lb-nginx")[("Deployment", "lb")])
    kubernetes_validate.validate(deployment, VERSION, strict=True)
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    assert [p.split(":")[0] for p in _problems(deployment)] == ["spec.replicas"]
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    assert _problems(deployment) and "imagePulPolicy" in _problems(deployment)[0]


def test_each_container_is_a_pod_behind_a_headless_service_of_its_name() -> None:
    manifests = _manifests("lb-nginx", ["app.replicas=2"])
    assert {name for kind, name in manifests if kind == "Deployment"} == {"lb", "app-1", "app-2"}
    app = manifests[("Service", "app-1")]["spec"]
    assert app["clusterIP"] == "None" and app["selector"] == {"labctl.io/instance": "app-1"}
    config = manifests[("ConfigMap", "lb-files-0")]["data"]["nginx.conf"]
    assert "server app-1:8000" in config and "server app-2:8000" in config  # the names the Services give
    pod = manifests[("Deployment", "lb")]["spec"]["template"]["spec"]
    [mount] = pod["containers"][0]["volumeMounts"]
    assert (mount["mountPath"], mount["subPath"]) == ("/etc/nginx/nginx.conf", "nginx.conf")
    published = manifests[("Service", "lb-published")]["spec"]
    assert published["type"] == "NodePort" and published["ports"] == [
        {"name": "port-8080", "port": 8080, "targetPort": 80, "protocol": "TCP"}]
    backend = manifests[("Ingress", "http")]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "lb-published", "port": {"number": 8080}}}
    resources = manifests[("Deployment", "app-1")]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "0.5", "memory": "128Mi"}}


def test_databases_are_stateful_sets_with_their_passwords_in_a_secret() -> None:
    manifests = _manifests("db-failover")
    assert {name for kind, name in manifests if kind == "StatefulSet"} == {"db-1", "db-2", "db-3"}
    assert manifests[("StatefulSet", "db-1")]["spec"]["serviceName"] == "db-1"
    secret = manifests[("Secret", "app-env")]["stringData"]
    assert secret["DB_USER"] == "app" and len(secret["DB_PASSWORD"]) >= 16
    app = manifests[("Deployment", "app-1")]["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "app-env"}} in app["envFrom"]
    db = manifests[("StatefulSet", "db-1")]["spec"]["template"]["spec"]
    assert db["hostname"] == "db-1"  # @@hostname names the node in every answer, as on Docker


def test_a_named_volume_is_a_claim_per_member_of_a_stateful_set() -> None:
    member = _manifests("consensus-etcd")[("StatefulSet", "etcd-1")]["spec"]
    assert member["volumeClaimTemplates"][0]["metadata"]["name"] == "etcd-1-data"
    [container] = member["template"]["spec"]["containers"]
    assert {"name": "etcd-1-data", "mountPath": "/var/lib/etcd"} in container["volumeMounts"]


def test_a_discovery_alias_is_a_headless_service_over_the_whole_block() -> None:
    alias = _manifests("lb-dynamic")[("Service", "app")]["spec"]
    assert alias == {"clusterIP": "None", "selector": {"labctl.io/block": "app"}, "publishNotReadyAddresses": True}


def test_load_balancer_services_when_asked(tmp_path: Path) -> None:
    lab = load_lab("lb-haproxy")
    written = export_kubernetes(lab, _images(lab), tmp_path / "out", "LoadBalancer")
    bodies = [yaml.safe_load(path.read_text()) for path in written]
    published = [b for b in bodies if b["kind"] == "Service" and b["metadata"]["name"].endswith("-published")]
    assert published and {b["spec"]["type"] for b in published} == {"LoadBalancer"}
    assert written[0].name == "00-namespace-labctl-lb-haproxy.yaml"
    assert all(b["metadata"].get("namespace") == "labctl-lb-haproxy" for b in bodies[1:])


@pytest.mark.parametrize(("name", "reason"), sorted(REFUSED.items()))
def test_a_lab_kubernetes_cannot_run_is_refused_with_the_reason(name: str, reason: str) -> None:
    lab = load_lab(name)
    with pytest.raises(ExportError, match=reason):
        lab_manifests(lab, _images(lab))


def test_an_unknown_service_type_is_refused(tmp_path: Path) -> None:
    lab = load_lab("lb-nginx")
    with pytest.raises(ExportError, match="--service-type must be one of NodePort, LoadBalancer"):
        export_kubernetes(lab, _images(lab), tmp_path, "ClusterIP")


def test_file_names_order_the_objects() -> None:
    manifest = Manifest({"kind": "ConfigMap", "metadata": {"name": "lb-files-0"}})
    assert manifest.file_name(3) == "03-configmap-lb-files-0.yaml"
