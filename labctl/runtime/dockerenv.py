"""The Docker engine and Compose v2: reaching them, with advice instead of tracebacks.

The rest of labctl gets its docker SDK client from `docker_client()` here, so the SDK
import and the mapping of connection failures to DockerUnavailableError live in one place.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

from labctl.errors import DockerUnavailableError
from labctl.process import run

DEFAULT_HOST = "unix:///var/run/docker.sock"
_SETUP = "sudo bash scripts/setup-host.sh"
_COMPOSE_ADVICE = "install Compose v2 as a Docker CLI plugin with 'sudo bash scripts/install-compose-v2.sh'"


@functools.cache
def docker_client() -> Any:
    """A docker SDK client for the local engine (one per process).

    Raises DockerUnavailableError saying why and what to do when no engine answers:
    socket missing, permission denied, daemon not running, or too slow to answer.
    """
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(engine_advice(exc)) from exc
    return client


def engine_advice(exc: BaseException) -> str:
    """What went wrong reaching the engine at DOCKER_HOST, and what to do about it."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    causes = list(_chain(exc))
    if any(isinstance(c, PermissionError) for c in causes) or "Permission denied" in str(exc):
        return (f"permission denied on the Docker socket ({host}); run labctl as root, or add your user to "
                "the 'docker' group ('sudo usermod -aG docker $USER', then log in again)")
    if any(isinstance(c, (socket.timeout, TimeoutError)) for c in causes) or "timed out" in str(exc):
        return f"the Docker engine at {host} did not answer in time; is it overloaded or stuck? ('docker info')"
    if shutil.which("dockerd") is None and shutil.which("docker") is None:
        return f"Docker is not installed; install and start it with '{_SETUP}'"
    return (f"cannot connect to the Docker engine at {host}: is it running? Start it with '{_SETUP}'; "
            "if it listens elsewhere, set DOCKER_HOST")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the errors wrapped in their args."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += [a for a in current.args if isinstance(a, BaseException)]
    return seen


def parse_compose_version(output: str) -> str | None:
    """The version in `docker compose version --short` output, or None when it is not v2+."""
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", output)
    if not match or int(match.group(1)) < 2:
        return None
    return ".".join(match.groups())


def compose_verdict(plugin_output: str | None, legacy_output: str | None) -> str:
    """Compose v2's version from `docker compose version --short` (None if it failed), or
    DockerUnavailableError; `legacy_output` is `docker-compose version --short`, if any,
    to tell "only the retired v1 is here" apart from "no Compose at all"."""
    version = parse_compose_version(plugin_output or "")
    if version:
        return version
    legacy = (legacy_output or "").strip()
    if re.match(r"v?1\.", legacy):
        raise DockerUnavailableError(
            f"only Compose v1 (docker-compose {legacy}) is installed; labctl needs v2: {_COMPOSE_ADVICE}")
    if parse_compose_version(legacy):
        raise DockerUnavailableError(
            f"Compose v2 is installed as a standalone 'docker-compose' ({legacy}), but labctl runs "
            f"'docker compose': {_COMPOSE_ADVICE}")
    raise DockerUnavailableError(f"Docker Compose v2 is not installed ('docker compose' failed); {_COMPOSE_ADVICE}")


@functools.cache
def compose_version() -> str:
    """Compose v2's version (one look per process); DockerUnavailableError for none or for v1."""
    if shutil.which("docker") is None:
        raise DockerUnavailableError(f"the 'docker' command is not installed; install it with '{_SETUP}'")
    result = run(["docker", "compose", "version", "--short"], check=False, timeout=30)
    plugin = result.stdout if result.returncode == 0 else None
    if parse_compose_version(plugin or ""):
        return compose_verdict(plugin, None)
    legacy = None
    if shutil.which("docker-compose"):
        found = run(["docker-compose", "version", "--short"], check=False, timeout=30)
        legacy = found.stdout if found.returncode == 0 else None
    return compose_verdict(plugin, legacy)


def require_engine() -> None:
    """Fail early, with advice, unless both the engine and Compose v2 are there (cached)."""
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
    """Who holds a TCP port: "container NAME" when a container publishes it, else
    "process NAME (pid N)" when `ss` can tell, else None."""
    return _container_on_port(port) or _process_on_port(port)


def _container_on_port(port: int) -> str | None:
    try:
        # The list endpoint, not inspect: a container removed meanwhile cannot fail the lookup.
        listed = docker_client().api.containers()
    except DockerUnavailableError:
        return None
    for entry in listed:
        if any(p.get("PublicPort") == port for p in entry.get("Ports") or []):
            names = entry.get("Names") or [entry.get("Id", "?")[:12]]
            return f"container {names[0].lstrip('/')}"
    return None


def _process_on_port(port: int) -> str | None:
    if shutil.which("ss") is None:
        return None
    listening = run(["ss", "-Hltnp", f"sport = :{port}"], check=False, timeout=10)
    if holder := parse_ss_holder(listening.stdout):
        return holder
    # Nothing listens, yet the bind failed: a connection was given this port as its local
    # (ephemeral) port, which the kernel does for any port in ip_local_port_range.
    connected = run(["ss", "-Htnp", "state", "connected", f"sport = :{port}"], check=False, timeout=10)
    holder = parse_ss_holder(connected.stdout)
    return f"a connection of {holder} that uses it as its local port" if holder else None


def ephemeral_port_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> range | None:
    """The ports the kernel hands out as local ports of outgoing connections, when it says."""
    try:
        low, high = (int(field) for field in path.read_text().split())
    except (OSError, ValueError):
        return None
    return range(low, high + 1)


def parse_ss_holder(output: str) -> str | None:
    """The first process named in `ss -ltnp` output, as "process NAME (pid N)"."""
    match = re.search(r'\("([^"]+)",pid=(\d+)', output)
    return f"process {match.group(1)} (pid {match.group(2)})" if match else None


def engine_errors() -> tuple[type[Exception], ...]:
    """The exceptions an engine call can raise (API errors, timeouts, dropped connections),
    for callers that turn a failed call into a result without importing the SDK."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException)
