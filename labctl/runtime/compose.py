"""The Docker Compose v2 command line, for one rendered lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl.process import run
from labctl.runtime.dockerenv import require_engine


def compose_argv(project: str, compose_file: Path | None) -> list[str]:
    """`docker compose` with the project name, and its file when it has one on disk."""
    argv = ["docker", "compose", "-p", project]
    if compose_file is not None and compose_file.is_file():
        argv += ["-f", str(compose_file)]
    return argv


def start_up(project: str, compose_file: Path) -> subprocess.Popen[str]:
    """Start `docker compose up -d` in the background; images must already be there."""
    require_engine()
    argv = [*compose_argv(project, compose_file), "up", "-d", "--pull", "never", "--no-build"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def logs_argv(project: str, compose_file: Path | None, service: str | None, tail: int, follow: bool) -> list[str]:
    """The `docker compose logs` command for a lab (all services, or one)."""
    argv = [*compose_argv(project, compose_file), "logs", "--tail", str(tail)]
    if follow:
        argv.append("--follow")
    if service:
        argv.append(service)
    return argv


def restart(project: str, compose_file: Path, services: list[str]) -> None:
    """Restart services in place (their containers and addresses stay)."""
    run([*compose_argv(project, compose_file), "restart", *services])


def run_services(project: str, compose_file: Path, services: list[str]) -> None:
    """Create and start only these services, leaving every other one as it is."""
    run([*compose_argv(project, compose_file), "up", "-d", "--no-deps", "--pull", "never", "--no-build", *services])
