"""The engine side of `labctl doctor`: what the engine says about itself, and throwaway
containers that try a fault for real. Failures come back as the engine's own errors
(`dockerenv.engine_errors()`), so the doctor can tell a refusal from a lost connection."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from labctl.runtime.dockerenv import docker_client


def engine_info() -> dict[str, Any]:
    """`docker info`: the engine's version, storage driver, cgroup version and feature flags."""
    return dict(docker_client().info())


def has_image(ref: str) -> bool:
    """True when the local engine has an image by this name."""
    return bool(docker_client().images.list(name=ref))


def remove_stale(labels: Mapping[str, str], older_than: float) -> None:
    """Remove containers carrying these labels created more than `older_than` seconds ago."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    for container in docker_client().containers.list(all=True, sparse=True, filters=filters):
        if time.time() - int(container.attrs.get("Created", 0)) > older_than:
            container.remove(force=True)


def run_to_end(image: str, command: list[str], labels: Mapping[str, str], timeout: float,
               **options: Any) -> tuple[int, str]:
    """Run a labelled throwaway container with no network to its end: exit code and output.
    Always removed. `options` are the SDK's (cap_add, nano_cpus, mem_limit)."""
    container = docker_client().containers.create(image, command, labels=dict(labels), network_mode="none",
                                                  **options)
    try:
        container.start()
        code = int(container.wait(timeout=timeout)["StatusCode"])
        return code, bytes(container.logs(stdout=True, stderr=True)).decode("utf-8", "replace")
    finally:
        container.remove(force=True)


def pause_and_unpause(image: str, labels: Mapping[str, str]) -> None:
    """Start a labelled throwaway container, pause and unpause it, and remove it."""
    container = docker_client().containers.create(image, ["sleep", "30"], labels=dict(labels), network_mode="none")
    try:
        container.start()
        container.pause()
        container.unpause()
    finally:
        container.remove(force=True)
