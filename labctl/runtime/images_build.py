"""Images in the local engine: looking them up, pulling, building and importing a root
filesystem. labctl/images.py decides which images a lab needs and when to build them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import ImageError
from labctl.runtime.dockerenv import docker_client


@dataclass(frozen=True)
class ImageRecord:
    """One image as the engine has it."""

    id: str
    labels: dict[str, str]
    size: float  # bytes
    created: str  # ISO 8601, as the engine says


def find_image(ref: str) -> ImageRecord | None:
    """The image `ref` names in the local engine, or None when it is not there."""
    import docker.errors

    try:
        image = docker_client().images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    return _record(image)


def _record(image: Any) -> ImageRecord:
    return ImageRecord(str(image.id), dict(image.labels or {}), float(image.attrs.get("Size", 0)),
                       str(image.attrs.get("Created", "")))


def pull_image(ref: str) -> bool:
    """Pull `ref` (tag `latest` when it has none); False when the engine cannot."""
    import docker.errors

    repository, _, tag = ref.partition(":")
    try:
        docker_client().images.pull(repository, tag=tag or "latest")
    except docker.errors.APIError:
        return False
    return True


def build_image(context: Path, dockerfile: str, tag: str, buildargs: Mapping[str, str],
                labels: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """Build an image from a context folder; yields the engine's build messages as they come
    ("stream" lines, or an "error")."""
    return iter(docker_client().api.build(
        path=str(context), dockerfile=dockerfile, tag=tag, rm=True, forcerm=True,
        decode=True, buildargs=dict(buildargs), labels=dict(labels),
    ))


def import_rootfs(rootfs: Path, ref: str, changes: list[str]) -> None:
    """`tar -C ROOTFS -c . | docker import` as `ref`, with Dockerfile `changes` (LABEL, CMD)."""
    argv = ["docker", "import", *(x for c in changes for x in ("--change", c)), "-", ref]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        result = subprocess.run(argv, stdin=tar.stdout, capture_output=True, text=True, check=False)
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
    if result.returncode != 0 or tar.returncode != 0:
        raise ImageError(f"docker import of {ref} failed: {result.stderr.strip()}")
