"""The Docker engine and Compose v2: reaching them, with advice instead of tracebacks."""

from __future__ import annotations

import functools
import re
import socket
from typing import Any

from labctl.errors import DockerUnavailableError
from labctl.process import run

_ENGINE_ADVICE = (
    "start it with 'sudo bash scripts/setup-host.sh' (installs and starts dockerd), "
    "or check DOCKER_HOST and that your user may use /var/run/docker.sock"
)
_COMPOSE_ADVICE = "install Compose v2 with 'sudo bash scripts/install-compose-v2.sh'"


@functools.cache
def docker_client() -> Any:
    """A docker SDK client for the local engine; DockerUnavailableError when none answers."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(f"no Docker engine answers ({_short(exc)}); {_ENGINE_ADVICE}") from exc
    return client


def _short(exc: Exception) -> str:
    text = str(exc)
    if "Permission denied" in text:
        return "permission denied on the Docker socket"
    if "No such file" in text or "Connection refused" in text or "FileNotFoundError" in text:
        return "the Docker socket is missing or refuses connections"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def parse_compose_version(output: str) -> str | None:
    """The version in `docker compose version --short` output, or None when it is not v2+."""
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", output)
    if not match or int(match.group(1)) < 2:
        return None
    return ".".join(match.groups())


@functools.cache
def compose_version() -> str:
    """Compose v2's version; DockerUnavailableError for none or for the retired v1."""
    result = run(["docker", "compose", "version", "--short"], check=False)
    version = parse_compose_version(result.stdout) if result.returncode == 0 else None
    if version:
        return version
    legacy = run(["docker-compose", "version", "--short"], check=False) if _has("docker-compose") else None
    if legacy is not None and legacy.returncode == 0 and legacy.stdout.strip().startswith("1."):
        raise DockerUnavailableError(
            f"only Compose v1 ({legacy.stdout.strip()}) is installed; labctl needs v2: {_COMPOSE_ADVICE}"
        )
    raise DockerUnavailableError(f"Docker Compose v2 is not installed ('docker compose' failed); {_COMPOSE_ADVICE}")


def _has(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None


def require_engine() -> None:
    """Fail early, with advice, unless both the engine and Compose v2 are there."""
    docker_client()
    compose_version()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (checked by binding it for a moment)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections in TIME_WAIT from a lab just removed do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str | None:
    """The container publishing `port`, if a container does; None otherwise."""
    for container in docker_client().containers.list():
        for bindings in (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).values():
            if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                return f"container {container.name}"
    return None
