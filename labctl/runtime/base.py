"""The runtime seam: everything labctl asks of the engine that runs a lab, in one Protocol.

`LocalCompose` (labctl/runtime/local.py) is the only implementation: Docker Compose v2 on
the local engine. A second one (Docker Swarm, later) implements the same methods, the way
Kathará's `IManager` has a Docker and a Kubernetes manager: labs are named by their lab name
and Compose-style project, containers by the names `ServiceState.container` reports, and the
callers never see an SDK object.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


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
    created: float = 0.0  # when the container was created (Unix time)

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


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container printed (stdout and stderr together) and its exit code."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class NetworkAddress:
    """A container's address on its lab network, with the prefix, and that network's gateway."""

    cidr: str
    gateway: str


@dataclass
class Removal:
    """What removing a lab took away, and what it had to leave (with the reason)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class Runtime(Protocol):
    """Runs rendered labs and the operations on their containers that labctl needs."""

    def require(self) -> None:
        """Fail early, with advice, unless the engine can run labs here."""

    # A lab as a whole.
    def start_project(self, project: str, compose_file: Path) -> subprocess.Popen[str]:
        """Start bringing a rendered lab up in the background (images must be there); the
        process ends once the engine has created everything, its output says what failed."""
    def run_services(self, project: str, compose_file: Path, services: list[str]) -> None:
        """Create and start only these services of a running lab, leaving the others as they are."""
    def remove_lab(self, lab: str | None) -> Removal:
        """Remove everything of one lab (or of every lab) and nothing else."""
    def has_objects(self, lab: str) -> bool:
        """True while anything of the lab (a container or a network) is still there."""
    def containers(self, lab: str | None) -> list[ServiceState]:
        """The state and health of every container of a lab (or of every lab), by name."""
    def labs(self) -> list[str]:
        """Names of the labs with at least one container, running or not."""
    def logs_command(self, project: str, compose_file: Path | None, service: str | None, tail: int,
                     follow: bool) -> list[str]:
        """The command that prints a lab's logs (all services, or one) on the terminal."""

    # One container, named as `ServiceState.container` names it.
    def exec(self, container: str, argv: list[str], detach: bool = False) -> ExecResult:
        """Run a command in a running container and wait for it (or not, with detach)."""
    def exec_command(self, container: str, argv: list[str], stdin: bool = False) -> list[str]:
        """The command line that runs `argv` in a container with its output on our stdout (and,
        with stdin, our stdin on its), for callers that stream it through a subprocess."""
    def exec_in_netns(self, container: str, argv: list[str], image: str) -> str:
        """Run a command in a container's network namespace from a helper container of `image`
        with NET_ADMIN (lab images need no network tools); returns its output."""
    def kill(self, container: str, signal: str | None = None) -> None:
        """Send a signal (SIGKILL by default) to a container's main process."""
    def stop(self, container: str, timeout: float) -> None:
        """Stop a container, killing it after `timeout` seconds."""
    def start(self, container: str) -> None:
        """Start a stopped container again (same container, same address)."""
    def restart(self, container: str, timeout: float) -> None:
        """Stop and start a container."""
    def pause(self, container: str) -> None:
        """Freeze every process of a container."""
    def unpause(self, container: str) -> None:
        """Thaw a paused container."""
    def wait(self, container: str, timeout: float) -> int:
        """Wait until a container stops; its exit code."""
    def remove_container(self, container: str) -> None:
        """Remove one container with its anonymous volumes, running or not."""
    def state(self, container: str) -> str:
        """running, paused, exited, ... as the engine says now."""
    def labels(self, container: str) -> dict[str, str]:
        """A container's labels."""
    def finished_at(self, container: str) -> float | None:
        """When a container's main process last ended, as the engine recorded it (None: never)."""
    def timestamped_logs(self, container: str, tail: int = 500) -> list[tuple[float, str]]:
        """(time the engine received it, text) of a container's last log lines."""
    def address(self, container: str) -> NetworkAddress:
        """A container's address on its (first) network."""
    def processes(self, container: str) -> list[tuple[str, str]]:
        """(pid, command line) of every process in a container."""
    def logs_tail(self, container: str, lines: int = 20) -> str:
        """The last lines a container wrote, for error messages (never fails)."""
