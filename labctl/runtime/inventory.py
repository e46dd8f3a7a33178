"""What labctl created, found by its labels: the only things labctl ever removes.

Ownership is decided by labels that only the rendered Compose file and Compose itself put on
what they create: `io.labctl.lab` from the file, and Compose's project label, which must be that
lab's project. Never by an image's labels (every container inherits those, including one
started by hand with `docker run` from a labctl image) and never by a name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from labctl.runtime.base import ServiceState as ServiceState  # re-exported: callers name it inventory.ServiceState
from labctl.runtime.dockerenv import docker_client

MANAGED = "io.labctl.managed=true"
LAB_LABEL = "io.labctl.lab"
PROJECT_LABEL = "com.docker.compose.project"


def project_name(lab: str) -> str:
    """The Compose project a lab runs as (`Lab.project`, from the lab's name alone)."""
    return f"labctl-{lab}"


def label_filters(lab: str | None) -> dict[str, Any]:
    """Docker API filters for everything of one lab, or candidates of every lab (those still
    need `owned`: the engine cannot compare two labels with each other)."""
    if lab is None:
        return {"label": [MANAGED, LAB_LABEL, PROJECT_LABEL]}
    return {"label": [MANAGED, f"{LAB_LABEL}={lab}", f"{PROJECT_LABEL}={project_name(lab)}"]}


def owned(labels: Mapping[str, str] | None, lab: str | None = None) -> bool:
    """True when these labels are those Compose gave an object of a lab from labctl's file:
    the lab named in `io.labctl.lab` (and `lab`, when given) runs as the project Compose says."""
    labels = labels or {}
    name = labels.get(LAB_LABEL, "")
    return (bool(name) and labels.get("io.labctl.managed") == "true" and (lab is None or name == lab)
            and labels.get(PROJECT_LABEL) == project_name(name))


def lab_containers(lab: str | None) -> list[Any]:
    """Containers (running or not) that carry labctl's labels for `lab` (or any lab)."""
    import docker.errors

    # The SDK inspects each listed container; one removed in between (Compose tearing down
    # at the same moment) is a 404 for the whole list, so the list is simply taken again.
    for _ in range(4):
        try:
            return _owned_containers(lab)
        except docker.errors.NotFound:
            continue
    return _owned_containers(lab)


def _owned_containers(lab: str | None) -> list[Any]:
    listed = docker_client().containers.list(all=True, filters=label_filters(lab))
    return [c for c in listed if owned(c.labels, lab)]


def service_states(lab: str | None) -> list[ServiceState]:
    """The state of every container of a lab, sorted by container name.

    Uses the list endpoint only (one API call, no per-container inspect), so a container
    removed meanwhile cannot make it fail.
    """
    states = [_state_of(summary) for summary in _owned_summaries(lab)]
    return sorted(states, key=lambda s: (s.container, s.name))


def _owned_summaries(lab: str | None) -> list[dict[str, Any]]:
    summaries = docker_client().api.containers(all=True, filters=label_filters(lab))
    return [s for s in summaries if owned(s.get("Labels"), lab)]


def _state_of(summary: dict[str, Any]) -> ServiceState:
    labels = summary.get("Labels") or {}
    container = str((summary.get("Names") or ["?"])[0]).lstrip("/")
    return ServiceState(
        name=labels.get("io.labctl.instance", container),
        block=labels.get("io.labctl.block", ""),
        kind=labels.get("io.labctl.kind", ""),
        container=container,
        state=str(summary.get("State", "unknown")),
        health=health_from_status(str(summary.get("Status", ""))),
        endpoints=json.loads(labels.get("io.labctl.endpoints", "{}")),
        status_text=str(summary.get("Status", "")),
        created=float(summary.get("Created") or 0),
    )


def health_from_status(status: str) -> str:
    """Health as Docker's list endpoint words it: 'Up 3 seconds (healthy)' -> 'healthy'."""
    for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting")):
        if marker in status:
            return health
    return "none"


def running_labs() -> list[str]:
    """Names of labs with at least one container, running or not."""
    return sorted({s["Labels"][LAB_LABEL] for s in _owned_summaries(None)})


def lab_networks(lab: str | None) -> list[Any]:
    """Networks labctl created for `lab` (or any lab)."""
    listed = docker_client().networks.list(filters=label_filters(lab))
    return [n for n in listed if owned(n.attrs.get("Labels"), lab)]


def lab_volumes(lab: str | None) -> list[Any]:
    """Volumes labctl created for `lab` (or any lab)."""
    listed = docker_client().volumes.list(filters=label_filters(lab))
    return [v for v in listed if owned(v.attrs.get("Labels"), lab)]


def container_logs_tail(container_name: str, lines: int = 20) -> str:
    """The last lines a container wrote, for error messages."""
    try:
        raw = docker_client().containers.get(container_name).logs(tail=lines)
    except Exception as exc:  # the container may already be gone; the message must still go out
        return f"(no logs: {exc})"
    return bytes(raw).decode("utf-8", "replace").rstrip()
