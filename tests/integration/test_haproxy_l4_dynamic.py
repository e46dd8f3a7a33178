"""lb-l4-vs-l7 and lb-dynamic on a real Docker engine: L4 skews requests per backend where
L7 spreads them evenly, only L7 routes by path and adds headers, and backends discovered
through Docker's DNS join and leave with no HAProxy reload or restart."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, served_by

L4, L7, DYNAMIC = "http://127.0.0.1:8100", "http://127.0.0.1:8101", "http://127.0.0.1:8120"


def _lab(tmp: Path, lab: str) -> Iterator[Cli]:
    # Only this lab is removed afterwards: other labs on the engine are not ours to touch.
    runner = Cli(tmp / "home")
    runner.ok("up", lab)
    yield runner
    runner.run("down", lab)


@pytest.fixture(scope="module")
def l4_l7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    yield from _lab(tmp_path_factory.mktemp("l4-vs-l7"), "lb-l4-vs-l7")


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    yield from _lab(tmp_path_factory.mktemp("dynamic"), "lb-dynamic")


def get(url: str) -> dict[str, str]:
    """The response headers of one GET on a new connection, names in lower case."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return {name.lower(): value for name, value in response.headers.items()}


def test_l4_balances_connections_and_l7_balances_requests(l4_l7: Cli) -> None:
    # The guide's checkpoint: 4 users hold 4 keep-alive connections for the whole run (few,
    # long-lived clients). L4 spreads the connections 2/1/1 and every request follows its
    # connection; L7 balances each request, round robin gives each server a third.
    report = json.loads(l4_l7.ok("check", "lb-l4-vs-l7", "l4-balances-connections", "--json"))
    [checkpoint] = report["checkpoints"]
    assert report["passed"] and checkpoint["passed"], checkpoint["expectations"]
    l4, l7 = checkpoint["runs"]["l4"]["figures"], checkpoint["runs"]["l7"]["figures"]
    assert l4["failures"] == 0 and l7["failures"] == 0
    assert l4["requests"] > 50 and l7["requests"] > 50
    assert l4["backends_answering"] == 3 and l7["backends_answering"] == 3
    assert Path(checkpoint["runs"]["l4"]["run_dir"], "summary.json").is_file()
    assert Path(report["run_dir"], "check.json").is_file()


def test_only_l7_routes_by_path_and_adds_headers(l4_l7: Cli) -> None:
    routed = get(f"{L7}/reports/monthly")
    assert routed["x-served-by"] == "reports-1" and routed["x-lb"] == "haproxy-l7"
    assert get(f"{L7}/")["x-served-by"].startswith("app-")
    for _ in range(3):  # L4 never sees the path: /reports goes wherever the connection went
        passed = get(f"{L4}/reports/monthly")
        assert passed["x-served-by"].startswith("app-") and "x-lb" not in passed
    with urllib.request.urlopen("http://127.0.0.1:8405/stats;csv", timeout=5) as response:
        rows = [line.split(",") for line in response.read().decode().splitlines()]
    assert [row[1] for row in rows if row[0] == "app" and row[1].startswith("app-")] == ["app-1", "app-2", "app-3"]


def test_l4_kill_backend_drill(l4_l7: Cli) -> None:
    report = json.loads(l4_l7.ok("drill", "lb-l4-vs-l7", "kill-backend", "--json"))
    assert report["verdict"] == "pass", report
    assert report["requests"] > 300 and report["failures"] <= 10
    assert all(f["reverted_at_s"] is not None for f in report["faults"])


def lb_identity() -> tuple[Any, ...]:
    """What a reload or restart of the HAProxy container would change: the container, its
    start time and host PID (the master), and the PIDs of every process in it (the worker)."""
    container = docker_client().containers.get("labctl-lb-dynamic-lb")
    top = container.top()
    pid, command = top["Titles"].index("PID"), top["Titles"].index("CMD")
    # The healthcheck's exec'd shell and curl come and go; only HAProxy's own processes count.
    pids = sorted(row[pid] for row in top["Processes"] if "haproxy" in row[command].split()[0])
    state = container.attrs["State"]
    return container.id, state["StartedAt"], state["Pid"], container.attrs["RestartCount"], pids


def served_until(expected: set[str], timeout: float = 30.0) -> set[str]:
    """Backends seen over 2 rounds of single requests, once they are exactly `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        seen = set(served_by(f"{DYNAMIC}/", 2 * max(len(expected), 6)))
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def test_scaling_adds_and_removes_backends_without_a_reload(dynamic: Cli) -> None:
    config = dynamic.home / "compose" / "lb-dynamic" / "lb" / "haproxy.cfg"
    before_config, before = config.read_text(), lb_identity()
    assert served_until({"app-1", "app-2", "app-3"}) == {"app-1", "app-2", "app-3"}

    out = dynamic.ok("scale", "lb-dynamic", "app=6")
    assert "3 -> 6 replicas" in out and "reloading" not in out
    six = {f"app-{i}" for i in range(1, 7)}
    assert served_until(six) == six
    spread = Counter(served_by(f"{DYNAMIC}/", 60))
    assert set(spread) == six and min(spread.values()) >= 5, spread

    assert "6 -> 2 replicas" in dynamic.ok("scale", "lb-dynamic", "app=2")
    assert served_until({"app-1", "app-2"}) == {"app-1", "app-2"}

    assert lb_identity() == before
    assert config.read_text() == before_config
    logs = docker_client().containers.get("labctl-lb-dynamic-lb").logs().decode()
    assert logs.count("New worker") == 1 and "Reexecuting" not in logs


def test_scaling_past_the_slots_is_refused(dynamic: Cli) -> None:
    result = dynamic.run("scale", "lb-dynamic", "app=12")
    assert result.returncode == 1 and "10 slots cannot hold app's 12 replicas" in result.stderr


def test_dynamic_kill_backend_drill(dynamic: Cli) -> None:
    dynamic.ok("scale", "lb-dynamic", "app=3")
    report = json.loads(dynamic.ok("drill", "lb-dynamic", "kill-backend", "--json"))
    assert report["verdict"] == "pass", report
    # Only the requests in flight on app-2 when it died may fail: at most one per user.
    assert report["failures"] <= 10 and report["requests"] > 300
    assert "app-2" in report["backends"]  # back after the heal, found through DNS again
