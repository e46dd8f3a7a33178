"""What labctl created, found by its labels: the only things labctl ever removes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from labctl.runtime.dockerenv import docker_client

MANAGED = "io.labctl.managed=true"
LAB_LABEL = "io.labctl.lab"


@dataclass(frozen=True)
class ServiceState:
    """One container of a lab as Docker sees it now."""

    name: str
    block: str
    kind: str
    container: str
    state: str
    health: str
    endpoints: dict[str, str]
    status_text: str = ""

    @property
    def outcome(self) -> str:
        """starting / healthy / failed, like Compose v1's is_healthy but with three outcomes."""
        if self.state in ("exited", "dead", "removing"):
            return "failed"
        if self.health == "unhealthy":
            return "failed"
        if self.state == "running" and self.health in ("healthy", "none"):
            return "healthy"
        return "starting"


def label_filters(lab: str | None) -> dict[str, Any]:
    """Docker API filters for everything of one lab, or of every lab."""
    labels = [MANAGED] if lab is None else [MANAGED, f"{LAB_LABEL}={lab}"]
    return {"label": labels}


def lab_containers(lab: str | None) -> list[Any]:
    """Containers (running or not) that carry labctl's labels for `lab` (or any lab)."""
    import docker.errors

    # The SDK inspects each listed container; one removed in between (Compose tearing down
    # at the same moment) is a 404 for the whole list, so the list is simply taken again.
    for _ in range(4):
        try:
            return list(docker_client().containers.list(all=True, filters=label_filters(lab)))
        except docker.errors.NotFound:
            continue
    return list(docker_client().containers.list(all=True, filters=label_filters(lab)))


def service_states(lab: str | None) -> list[ServiceState]:
    """The state of every container of a lab, sorted by container name.

    Uses the list endpoint only (one API call, no per-container inspect), so a container
    removed meanwhile cannot make it fail.
    """
    summaries = docker_client().api.containers(all=True, filters=label_filters(lab))
    states = [_state_of(summary) for summary in summaries]
    return sorted(states, key=lambda s: (s.container, s.name))


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
    )


def health_from_status(status: str) -> str:
    """Health as Docker's list endpoint words it: 'Up 3 seconds (healthy)' -> 'healthy'."""
    for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"), ("(health: starting)", "starting")):
        if marker in status:
            return health
    return "none"


def running_labs() -> list[str]:
    """Names of labs with at least one container, running or not."""
    summaries = docker_client().api.containers(all=True, filters=label_filters(None))
    return sorted({(s.get("Labels") or {}).get(LAB_LABEL, "") for s in summaries} - {""})


def lab_networks(lab: str | None) -> list[Any]:
    """Networks labctl created for `lab` (or any lab)."""
    return list(docker_client().networks.list(filters=label_filters(lab)))


def lab_volumes(lab: str | None) -> list[Any]:
    """Volumes labctl created for `lab` (or any lab)."""
    return list(docker_client().volumes.list(filters=label_filters(lab)))


def container_logs_tail(container_name: str, lines: int = 20) -> str:
    """The last lines a container wrote, for error messages."""
    try:
        raw = docker_client().containers.get(container_name).logs(tail=lines)
    except Exception as exc:  # the container may already be gone; the message must still go out
        return f"(no logs: {exc})"
    return bytes(raw).decode("utf-8", "replace").rstrip()
