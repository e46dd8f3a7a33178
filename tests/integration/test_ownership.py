"""Ownership on a real engine: containers started by hand with `docker run` from labctl's own
images, named like a lab's or not, even carrying the labels an old image gave them, are never
taken for a lab's by `down`, `down --all`, `heal` or `status --all`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, lab_objects

LAB = "lb-nginx"
STRANGER = "io.labctl.test-stranger"
# Names a careless cleanup could match: Compose's style with and without the project prefix.
LAB_LOOKING = ("lb-nginx-app-1", "labctl-lb-nginx-app-9")
# What images built before this change put on every container: io.labctl.managed (and a lab
# label is what a user copying a lab's labels would add).
OLD_IMAGE_LABELS = {"io.labctl.managed": "true", "io.labctl.lab": LAB, "io.labctl.role": "app"}
OLD_LOOKING = [f"container labctl-lb-nginx-app-{i}" for i in (6, 7, 8)]


def _remove_strangers() -> None:
    for container in docker_client().containers.list(all=True, filters={"label": f"{STRANGER}=1"}):
        container.remove(force=True)


def _start(image: str, name: str, labels: dict[str, str], state: str = "running") -> Any:
    client = docker_client()
    container = client.containers.create(image, entrypoint=["sleep", "600"], name=name,
                                         labels={**labels, STRANGER: "1"}, network_mode="none")
    if state != "created":
        container.start()
    if state == "exited":
        container.kill()  # what `heal` would start, were it the lab's
    return container


def _labctl_images() -> list[str]:
    tags = [t for image in docker_client().images.list(name="labctl/*") for t in image.tags]
    return sorted(t for t in tags if t.startswith("labctl/"))


@pytest.fixture(scope="module")
def strangers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, str]]]:
    """The lab up once for the module, and a stranger per local labctl image (state by name)."""
    cli = Cli(Path(tmp_path_factory.mktemp("ownership")) / "home")
    _remove_strangers()
    expected: dict[str, str] = {}
    try:
        cli.ok("up", LAB)
        images = _labctl_images()
        assert "labctl/app:local" in images and "labctl/nettools:local" in images, images
        for image in images:
            name = "test-stranger-" + image.split("/")[1].replace(":", "-")
            _start(image, name, {})
            expected[name] = "running"
        app = "labctl/app:local"
        for name in LAB_LOOKING:
            _start(app, name, {})
            expected[name] = "running"
        _start(app, "labctl-lb-nginx-app-8", OLD_IMAGE_LABELS)
        expected["labctl-lb-nginx-app-8"] = "running"
        for name, state in (("labctl-lb-nginx-app-7", "created"), ("labctl-lb-nginx-app-6", "exited")):
            _start(app, name, OLD_IMAGE_LABELS, state)
            expected[name] = state
        _start(app, "lb-nginx-app-2", {}, "exited")
        expected["lb-nginx-app-2"] = "exited"
        yield cli, expected
    finally:
        _remove_strangers()
        cli.run("down", LAB)
    assert lab_objects(LAB) == []


def _assert_untouched(expected: dict[str, str]) -> None:
    found = {c.name: c.status for c in docker_client().containers.list(all=True, filters={"label": f"{STRANGER}=1"})}
    assert found == expected


def _other_labs() -> set[str]:
    filters = {"label": ["io.labctl.lab", "com.docker.compose.project"]}
    labels = [c["Labels"] for c in docker_client().api.containers(all=True, filters=filters)]
    return {x["io.labctl.lab"] for x in labels
            if x["com.docker.compose.project"] == f"labctl-{x['io.labctl.lab']}"} - {LAB}


def test_heal_leaves_strangers_alone(strangers: tuple[Cli, dict[str, str]]) -> None:
    cli, expected = strangers
    out = cli.ok("heal", LAB)
    assert "started" not in out, out
    _assert_untouched(expected)


def test_status_lists_only_the_lab(strangers: tuple[Cli, dict[str, str]]) -> None:
    cli, expected = strangers
    one = json.loads(cli.ok("status", LAB, "--json"))
    assert {s["container"] for s in one["services"]} == {
        "labctl-lb-nginx-lb", *(f"labctl-lb-nginx-app-{i}" for i in (1, 2, 3))}
    every = json.loads(cli.ok("status", "--json"))
    assert not {s["container"] for lab in every for s in lab["services"]} & set(expected)


def test_down_leaves_strangers_alone(strangers: tuple[Cli, dict[str, str]]) -> None:
    cli, expected = strangers
    out = cli.run("down", LAB)
    assert out.returncode == 0, out.stderr
    _assert_untouched(expected)
    # Only the strangers carrying the old image's labels still answer to the lab's label.
    assert sorted(lab_objects(LAB)) == OLD_LOOKING


def test_down_all_leaves_strangers_alone(strangers: tuple[Cli, dict[str, str]]) -> None:
    cli, expected = strangers
    others = _other_labs()
    if others:
        pytest.skip(f"other labs are up on this engine ({', '.join(sorted(others))}): not running down --all")
    cli.ok("up", LAB)
    out = cli.run("down", "--all")
    assert out.returncode == 0, out.stderr
    _assert_untouched(expected)
    assert sorted(lab_objects(LAB)) == OLD_LOOKING
