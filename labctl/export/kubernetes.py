"""`labctl export LAB --to kubernetes`: the lab's rendered Compose project as Kubernetes manifests.

Each Compose service (one container of a block) becomes a workload of one pod, a Deployment,
or a StatefulSet for a block that stores data, with the container's image, command,
environment, limits, capabilities and health check (as a readiness probe). Beside it a
headless Service of the same name, so that every name the rendered configuration files use
(`app-1:8000` in an Nginx upstream, `db-1:3306` in a replica's source) resolves to the pod
as Docker's DNS resolved it to the container; a block's network alias (`app`, for DNS
discovery) is a headless Service over all of its pods. Published ports become a NodePort or
LoadBalancer Service, the lab's `http` entry point also an Ingress. Config files mounted from
the rendered folder become ConfigMaps, the generated env files (passwords) Secrets.

The export is the deployment, not the lab's runtime: what `labctl up` does against the
running containers afterwards (replication set up with SQL, a cluster created with
redis-cli, Patroni's settings) is not in the manifests.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labctl.durations import duration_ms
from labctl.errors import LabctlError
from labctl.model.lab import Lab
from labctl.render import render_lab

Json = dict[str, Any]
SERVICE_TYPES = ("NodePort", "LoadBalancer")
INSTANCE_LABEL = "labctl.io/instance"
BLOCK_LABEL = "labctl.io/block"
# Kubernetes probes count whole seconds, at least 1.
MIN_PROBE_S = 1


class ExportError(LabctlError):
    """A lab that cannot be expressed as Kubernetes objects, or an export that cannot be written."""


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object, and the file name it is written under."""

    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def file_name(self, index: int) -> str:
        return f"{index:02d}-{self.kind.lower()}-{self.name}.yaml"


def export_kubernetes(lab: Lab, images: dict[str, str], out: Path, service_type: str = "NodePort") -> list[Path]:
    """Write the lab's manifests into `out` (made if missing); returns the files written."""
    if service_type not in SERVICE_TYPES:
        raise ExportError(f"--service-type must be one of {', '.join(SERVICE_TYPES)}, got {service_type!r}")
    manifests = lab_manifests(lab, images, service_type)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for index, manifest in enumerate(manifests):
            path = out / manifest.file_name(index)
            path.write_text(yaml.safe_dump(manifest.body, sort_keys=False), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ExportError(f"cannot write the manifests into {out}: {exc}") from exc
    return written


def lab_manifests(lab: Lab, images: dict[str, str], service_type: str = "NodePort") -> list[Manifest]:
    """Every object of the lab: its namespace first, then files, secrets, workloads, services."""
    with tempfile.TemporaryDirectory(prefix="labctl-export-") as tmp:
        rendered = render_lab(lab, images, folder=Path(tmp) / lab.name)
        compose = yaml.safe_load(rendered.compose_file.read_text(encoding="utf-8"))
        services: dict[str, dict[str, Any]] = compose["services"]
        _refuse_what_cannot_be_expressed(lab, services, compose.get("networks") or {})
        translator = _Translator(lab, rendered.folder, service_type)
        for name, service in services.items():
            translator.add_service(name, service)
    return translator.ordered()


def _refuse_what_cannot_be_expressed(lab: Lab, services: dict[str, dict[str, Any]],
                                     networks: dict[str, Any]) -> None:
    fixed = [name for name, service in services.items() if _fixed_address(service)]
    resolving = [name for name, service in services.items() if "dns" in service]
    subnets = [c["subnet"] for n in networks.values() for c in ((n or {}).get("ipam") or {}).get("config", [])]
    problems = []
    if subnets:
        # A lab that pins its subnet addresses containers by IP (DNS records, a VRRP address):
        # a pod network hands out addresses of its own choosing.
        problems.append(f"the lab network's fixed subnet {', '.join(subnets)}, whose addresses it uses directly")
    if fixed:
        problems.append(f"{', '.join(fixed)}: fixed addresses on the lab network, which Kubernetes gives no pod")
    if resolving:
        problems.append(f"{', '.join(resolving)}: names resolved by the lab's own DNS server at a fixed address")
    if problems:
        raise ExportError(f"lab '{lab.name}' cannot be exported to Kubernetes: " + "; ".join(problems))


def _fixed_address(service: dict[str, Any]) -> bool:
    networks = service.get("networks")
    return isinstance(networks, dict) and any("ipv4_address" in (n or {}) for n in networks.values())


class _Translator:
    """Collects the objects of one lab, Compose service by Compose service."""

    def __init__(self, lab: Lab, folder: Path, service_type: str) -> None:
        self.lab, self.folder, self.service_type = lab, folder, service_type
        self.namespace = lab.project
        self.by_kind: dict[str, dict[str, Manifest]] = {}
        self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})

    def add(self, body: dict[str, Any]) -> None:
        if body["kind"] != "Namespace":
            body["metadata"]["namespace"] = self.namespace
        self.by_kind.setdefault(body["kind"], {})[body["metadata"]["name"]] = Manifest(body)

    def ordered(self) -> list[Manifest]:
        order = ("Namespace", "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "Ingress")
        return [m for kind in order for m in self.by_kind.get(kind, {}).values()]

    def metadata(self, name: str, block: str) -> dict[str, Any]:
        labels = {"app.kubernetes.io/part-of": self.lab.name, "app.kubernetes.io/managed-by": "labctl",
                  BLOCK_LABEL: block, INSTANCE_LABEL: name}
        return {"name": name, "labels": labels}

    def add_service(self, name: str, service: dict[str, Any]) -> None:
        labels = {str(k): str(v) for k, v in (service.get("labels") or {}).items()}
        block = labels.get("io.labctl.block", name)
        files, named = _split_volumes(service.get("volumes") or [])
        mounts, volumes = self.file_mounts(name, block, files)
        mounts += [{"name": volume, "mountPath": target} for volume, target in named]
        container = self.container(name, service, mounts, self.secret_refs(block, service.get("env_file") or []))
        pod: dict[str, Any] = {"hostname": str(service.get("hostname", name)), "subdomain": name,
                               "containers": [container], "volumes": volumes,
                               "terminationGracePeriodSeconds": _seconds(service.get("stop_grace_period", "10s"))}
        template = {"metadata": {"labels": self.metadata(name, block)["labels"], "annotations": labels}, "spec": pod}
        spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": {INSTANCE_LABEL: name}},
                                "template": template}
        stores_data = bool(named) or (block in self.lab.blocks and self.lab.blocks[block].spec.stores_data)
        if stores_data:
            spec["serviceName"] = name
        if named:
            spec["volumeClaimTemplates"] = [_claim(volume) for volume, _target in named]
        self.add({"apiVersion": "apps/v1", "kind": "StatefulSet" if stores_data else "Deployment",
                  "metadata": self.metadata(name, block), "spec": spec})
        self.add(_headless(name, self.metadata(name, block), {INSTANCE_LABEL: name}))
        for alias in _aliases(service):
            self.add(_headless(alias, self.metadata(alias, block), {BLOCK_LABEL: block}))
        self.add_published(name, block, service.get("ports") or [], labels)

    def container(self, name: str, service: dict[str, Any], mounts: list[dict[str, Any]],
                  secrets: list[dict[str, Any]]) -> dict[str, Any]:
        container: dict[str, Any] = {"name": name, "image": str(service["image"]), "imagePullPolicy": "IfNotPresent"}
        if "entrypoint" in service:
            container["command"] = _argv(service["entrypoint"])
        if "command" in service:
            container["args"] = _argv(service["command"])
        environment = service.get("environment") or {}
        container["env"] = [{"name": str(k), "value": "" if v is None else str(v)} for k, v in environment.items()]
        container["envFrom"] = secrets
        container["ports"] = [{"containerPort": target} for _host, target in _published(service.get("ports") or [])]
        container["resources"] = _limits(service)
        container["volumeMounts"] = mounts
        if service.get("cap_add"):
            container["securityContext"] = {"capabilities": {"add": [str(c) for c in service["cap_add"]]}}
        if probe := _probe(service.get("healthcheck")):
            container["readinessProbe"] = probe
        return {k: v for k, v in container.items() if v not in ([], {})}

    def file_mounts(self, name: str, block: str, volumes: list[Any]) -> tuple[list[Json], list[Json]]:
        """The container's mounts of rendered files and the pod's volumes, one ConfigMap each."""
        mounts: list[Json] = []
        pod_volumes: list[Json] = []
        for index, volume in enumerate(volumes):
            source, target = _bind(volume)
            config_map = f"{name}-files-{index}"
            path = (self.folder / source).resolve()
            if not path.is_relative_to(self.folder.resolve()) or not path.exists():
                raise ExportError(f"{name} mounts {source}, which is not a file of the rendered lab")
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            keys = {_key(p.relative_to(path) if path.is_dir() else Path(p.name)): p for p in files}
            self.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.metadata(config_map, block),
                      **_config_data(keys)})
            volume_spec: dict[str, Any] = {"name": config_map}
            if path.is_dir():
                items = [{"key": key, "path": str(p.relative_to(path))} for key, p in keys.items()]
                volume_spec["configMap"] = {"name": config_map, "items": items}
                mounts.append({"name": config_map, "mountPath": target, "readOnly": True})
            else:
                [key] = keys
                volume_spec["configMap"] = {"name": config_map}
                mounts.append({"name": config_map, "mountPath": target, "subPath": key, "readOnly": True})
            pod_volumes.append(volume_spec)
        return mounts, pod_volumes

    def secret_refs(self, block: str, env_files: list[Any]) -> list[dict[str, Any]]:
        refs = []
        for env_file in env_files if isinstance(env_files, list) else [env_files]:
            relative = str(env_file).removeprefix("./")
            name = re.sub(r"[^a-z0-9]+", "-", Path(relative).name.lower()).strip("-")
            values = _env_file(self.folder / relative)
            self.add({"apiVersion": "v1", "kind": "Secret", "metadata": self.metadata(name, block),
                      "type": "Opaque", "stringData": values})
            refs.append({"secretRef": {"name": name}})
        return refs

    def add_published(self, name: str, block: str, ports: list[Any], labels: dict[str, str]) -> None:
        published = _published(ports)
        if not published:
            return
        service_name = f"{name}-published"
        service_ports = [{"name": f"port-{host}", "port": host, "targetPort": target, "protocol": "TCP"}
                         for host, target in published]
        self.add({"apiVersion": "v1", "kind": "Service", "metadata": self.metadata(service_name, block),
                  "spec": {"type": self.service_type, "selector": {INSTANCE_LABEL: name}, "ports": service_ports}})
        endpoints = json.loads(labels.get("io.labctl.endpoints", "{}") or "{}")
        if "http" in endpoints:
            host = int(str(endpoints["http"]).rsplit(":", 1)[1].split("/")[0])
            self.add(_ingress(self.metadata("http", block), service_name, host))


def _headless(name: str, metadata: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    # No cluster IP and no ports: the name resolves to the pods themselves, every port open, as
    # on the Compose network; ready or not, as Docker's DNS answers for a starting container.
    return {"apiVersion": "v1", "kind": "Service", "metadata": {**metadata, "name": name},
            "spec": {"clusterIP": "None", "selector": selector, "publishNotReadyAddresses": True}}


def _ingress(metadata: dict[str, Any], service: str, port: int) -> dict[str, Any]:
    path = {"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": port}}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata,
            "spec": {"rules": [{"http": {"paths": [path]}}]}}


def _aliases(service: dict[str, Any]) -> list[str]:
    networks = service.get("networks")
    if not isinstance(networks, dict):
        return []
    return [str(a) for n in networks.values() for a in ((n or {}).get("aliases") or [])]


def _published(ports: list[Any]) -> list[tuple[int, int]]:
    """(host port, container port) of each "bind:host:container" entry."""
    found = []
    for entry in ports:
        fields = str(entry).split("/")[0].split(":")
        found.append((int(fields[-2]), int(fields[-1])))
    return found


def _split_volumes(volumes: list[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """Bind mounts of rendered files, and (name, target) of each named volume."""
    files: list[Any] = []
    named: list[tuple[str, str]] = []
    for volume in volumes:
        source, _, target = str(volume).partition(":")
        if source.startswith(("./", "/", "~")) or not target:
            files.append(volume)
        else:
            named.append((source, target.split(":")[0]))
    return files, named


def _claim(volume: str) -> dict[str, Any]:
    # A named volume (a member's data) is a PersistentVolumeClaim per pod: kept across restarts.
    return {"metadata": {"name": volume},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def _bind(volume: Any) -> tuple[str, str]:
    fields = str(volume).split(":")
    if len(fields) < 2 or not fields[0].startswith("./"):
        raise ExportError(f"only files of the rendered lab can be mounted, got volume {volume!r}")
    return fields[0].removeprefix("./"), fields[1]


def _key(relative: Path) -> str:
    # ConfigMap and Secret keys allow letters, digits, '-', '_' and '.' only.
    return re.sub(r"[^-._a-zA-Z0-9]", "_", str(relative).replace("/", "__"))


def _config_data(files: dict[str, Path]) -> dict[str, Any]:
    data: dict[str, str] = {}
    for key, path in files.items():
        try:
            data[key] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ExportError(f"{path.name} is not text; a ConfigMap holds text files only") from exc
    return {"data": data}


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def _argv(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else shlex.split(str(value))


def _limits(service: dict[str, Any]) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if "cpus" in service:
        limits["cpu"] = str(service["cpus"])
    if "mem_limit" in service:
        limits["memory"] = _memory(str(service["mem_limit"]))
    return {"limits": limits} if limits else {}


def _memory(compose: str) -> str:
    # Compose's 128m and 1g are binary units: Kubernetes spells them Mi and Gi.
    match = re.fullmatch(r"(\d+)([kmg]?)b?", compose.lower())
    if match is None:
        raise ExportError(f"cannot read the memory limit {compose!r}")
    number, unit = match.groups()
    return number + {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit]


def _probe(healthcheck: dict[str, Any] | None) -> dict[str, Any] | None:
    if not healthcheck or "test" not in healthcheck:
        return None
    test = _argv(healthcheck["test"])
    if test[0] == "NONE":
        return None
    command = ["sh", "-c", " ".join(test[1:])] if test[0] == "CMD-SHELL" else test[1:] if test[0] == "CMD" else test
    probe: dict[str, Any] = {"exec": {"command": command},
                             "periodSeconds": _seconds(healthcheck.get("interval", "30s")),
                             "timeoutSeconds": _seconds(healthcheck.get("timeout", "30s")),
                             "failureThreshold": int(healthcheck.get("retries", 3))}
    return probe


def _seconds(duration: Any) -> int:
    return max(MIN_PROBE_S, round(duration_ms(str(duration)) / 1000))
