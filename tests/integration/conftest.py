"""Fixtures for tests that stand up real labs: a private LABCTL_HOME, the labctl CLI as a
subprocess, HTTP through published ports, and cleanup by label in a finalizer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import pytest

from labctl.experiments import chaos
from labctl.runtime.dockerenv import docker_client

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    """Runs `python -m labctl` with a private LABCTL_HOME, like a user would."""

    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, "LABCTL_HOME": str(self.home), "COLUMNS": "200", **self.extra_env}

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "labctl"]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv(), *args], capture_output=True, text=True,
            env=self.env(), timeout=timeout, cwd=REPO,
        )

    def ok(self, *args: str, timeout: float = 600) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"labctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def active_faults(self, lab: str) -> list[chaos.Fault]:
        """The faults still active in `lab` as the CLI recorded them: under this LABCTL_HOME, not
        the test process's own (which would always be empty)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LABCTL_HOME", str(self.home))
            return chaos.active_faults(lab)


def _container_names(filters: dict[str, list[str]]) -> list[str]:
    # The list inspects each container: one that Compose removes meanwhile is NotFound; ask again.
    for _ in range(10):
        try:
            return [c.name for c in docker_client().containers.list(all=True, filters=filters)]
        except docker.errors.NotFound:
            time.sleep(0.2)
    return [c.name for c in docker_client().containers.list(all=True, filters=filters)]


def lab_objects(lab: str) -> list[str]:
    """Every container, network and volume labelled for `lab`."""
    client = docker_client()
    filters = {"label": [f"io.labctl.lab={lab}"]}
    found = [f"container {name}" for name in _container_names(filters)]
    found += [f"network {n.name}" for n in client.networks.list(filters=filters)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=filters)]
    return found


@pytest.fixture()
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path / "home")
    yield runner
    # Only the labs this test rendered: a developer's own running labs are left alone.
    rendered = runner.home / "compose"
    for lab in sorted(p.name for p in rendered.iterdir()) if rendered.is_dir() else []:
        runner.run("down", lab)


def served_by(url: str, requests: int) -> list[str]:
    """X-Served-By of `requests` GETs, each on a new connection."""
    names = []
    for _ in range(requests):
        with urllib.request.urlopen(url, timeout=5) as response:
            names.append(response.headers["X-Served-By"])
    return names


def lab_for_module(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, lab: str,
                   *up_args: str) -> Cli:
    """A module's one lab: up once with a private home, down (and nothing of it left) at the end."""
    runner = Cli(tmp_path_factory.mktemp(lab) / "home")

    def cleanup() -> None:
        runner.run("down", lab)
        assert lab_objects(lab) == []

    request.addfinalizer(cleanup)
    runner.ok("up", lab, *up_args)
    return runner
