"""Tests under tests/integration need a Docker engine: they skip without one, unless
LABCTL_REQUIRE_DOCKER=1 (as in CI), where a missing engine fails them instead."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).parent / "integration"


@functools.cache
def engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one can."""
    try:
        from labctl.runtime.dockerenv import require_engine

        require_engine()
    except Exception as exc:  # any failure to reach the engine means "no Docker here"
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _needs_docker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is None:
        return
    problem = engine_problem()
    if problem is None:
        return
    if os.environ.get("LABCTL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"Docker is required (LABCTL_REQUIRE_DOCKER=1) but unavailable: {problem}")
    pytest.skip(f"no Docker engine: {problem}")
