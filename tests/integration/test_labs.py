"""The three foundation labs on a real Docker engine: up, spread, status, down."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.integration.conftest import Cli, lab_objects, served_by

LABS = {
    "lb-nginx": ("http://127.0.0.1:8080/", 3),
    "lb-haproxy": ("http://127.0.0.1:8081/", 3),
    "single-server": ("http://127.0.0.1:8080/", 1),
}


@pytest.mark.parametrize("lab", sorted(LABS))
def test_lab_up_spreads_requests_and_down_leaves_nothing(cli: Cli, lab: str) -> None:
    url, replicas = LABS[lab]
    out = cli.ok("up", lab)
    assert url.rstrip("/") in out

    spread = Counter(served_by(url, 30))
    assert sorted(spread) == [f"app-{i}" for i in range(1, replicas + 1)]
    if replicas == 3:
        assert all(count == 10 for count in spread.values()), spread  # round robin is exact

    status = json.loads(cli.ok("status", lab, "--json"))
    assert status["lab"] == lab and status["project"] == f"labctl-{lab}"
    assert status["endpoints"]["http"] == url.rstrip("/")
    assert {s["health"] for s in status["services"]} == {"healthy"}
    assert {s["state"] for s in status["services"]} == {"running"}
    assert len(status["services"]) == replicas + (0 if lab == "single-server" else 1)

    cli.ok("down", lab)
    assert lab_objects(lab) == []


def test_haproxy_stats_page_is_published(cli: Cli) -> None:
    import urllib.request

    cli.ok("up", "lb-haproxy")
    with urllib.request.urlopen("http://127.0.0.1:8404/stats;csv", timeout=5) as response:
        csv = response.read().decode()
    servers = [line.split(",")[1] for line in csv.splitlines() if line.startswith("app,app-")]
    assert servers == ["app-1", "app-2", "app-3"]
