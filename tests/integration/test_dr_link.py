"""dr-link on a real Docker engine: two sites on two networks joined only by the link's relays;
a TCP ping across the link takes its round trip and one inside a site does not; semi-sync
commits pay the round trip and async ones do not (a sweep); cutting the link holds a semi-sync
commit until the link is healed; losing site A (its link cut, then its primary killed) loses no
acknowledged write on semi-sync and some on async. One lab up for the whole module."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest

from tests.integration.conftest import Cli, lab_for_module

LAB = "dr-link"
APP_PORT = 8221
# Long enough that no scheduling delay on a busy 2-core machine passes for it, short enough
# that a semi-sync commit over it is quick.
RTT_MS = 100


@pytest.fixture(scope="module")
def link_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    return lab_for_module(tmp_path_factory, request, LAB, "--set", f"link.rtt={RTT_MS}ms")


def _tcp_ping_s(container: str, host: str, port: int) -> float:
    """Seconds from connecting to `host:port` from inside `container` to the server's first byte
    (MySQL speaks first), the smallest of three. The container must have Python (app, link)."""
    from labctl.runtime.dockerenv import docker_client

    script = ("import socket,sys,time\n"
              "best=9\n"
              "for _ in range(3):\n"
              "  t=time.monotonic(); s=socket.create_connection((sys.argv[1],int(sys.argv[2])),10); s.recv(1)\n"
              "  best=min(best,time.monotonic()-t); s.close()\n"
              "print(best)\n")
    result = docker_client().containers.get(container).exec_run(["python3", "-c", script, host, str(port)])
    assert result.exit_code == 0, result.output
    return float(result.output.decode().strip())


def _resolves(container: str, name: str) -> bool:
    from labctl.runtime.dockerenv import docker_client

    return bool(docker_client().containers.get(container).exec_run(["getent", "hosts", name]).exit_code == 0)


def test_each_site_sees_the_other_only_through_the_link(link_lab: Cli) -> None:
    site_a, site_b, relay = f"labctl-{LAB}-app-1", f"labctl-{LAB}-db-2", f"labctl-{LAB}-link-db-1"
    assert not _resolves(site_b, "app-1") and not _resolves(site_b, "db-1.site-a")
    assert _resolves(site_b, "db-1") and _resolves(site_a, "db-2")
    across = _tcp_ping_s(site_a, "db-2", 3306)
    direct = _tcp_ping_s(relay, "db-1.site-a", 3306)
    assert across >= RTT_MS / 1000
    assert direct < RTT_MS / 1000 / 2


def _sweep(link_lab: Cli) -> dict[str, dict[str, Any]]:
    out = link_lab.ok("sweep", LAB, "--set", "db.replication=async,semisync", "--duration", "10s",
                      "--users", "2", "--json", timeout=900)
    rows = json.loads(out)["rows"] if out.lstrip().startswith("{") else json.loads(out)
    return {row["params"]["db.replication"]: row for row in rows}


def test_a_semisync_commit_waits_for_the_far_site_and_an_async_one_does_not(link_lab: Cli) -> None:
    rows = _sweep(link_lab)
    assert rows["semisync"]["write_p50_ms"] >= RTT_MS
    assert rows["async"]["write_p50_ms"] < RTT_MS / 2
    assert rows["async"]["failures"] == 0 and rows["semisync"]["failures"] == 0


def _write(write_id: str, outcome: dict[str, Any]) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{APP_PORT}/write?id={write_id}", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        outcome["status"] = response.status
    outcome["at"] = time.monotonic()


def test_cutting_the_link_holds_a_semisync_commit_until_it_heals(link_lab: Cli) -> None:
    link_lab.ok("chaos", LAB, "pause", "link")
    try:
        outcome: dict[str, Any] = {}
        writer = threading.Thread(target=_write, args=(f"cut-{time.time_ns()}", outcome), daemon=True)
        writer.start()
        writer.join(4)
        assert writer.is_alive(), f"a semi-sync commit was acknowledged with the link cut: {outcome}"
    finally:
        healed_at = time.monotonic()
        link_lab.ok("heal", LAB)
    writer.join(40)
    assert outcome.get("status") == 200 and outcome["at"] > healed_at


def test_losing_site_a_on_semisync_loses_no_acknowledged_write(link_lab: Cli) -> None:
    report = json.loads(link_lab.ok("drill", LAB, "lose-site-a", "--json", timeout=300))
    assert report["verdict"] == "pass", report["expectations"]
    assert report["writes"]["lost"] == 0 and report["writes"]["acknowledged"] > 50
    assert report["failover"]["old_primary"] == "db-1"
    assert report["failover"]["new_primary"] in ("db-2", "db-3")


def test_losing_site_a_on_async_loses_what_was_acknowledged_during_the_cut(link_lab: Cli) -> None:
    # A fresh lab: the drill before left the primary in site B.
    link_lab.ok("down", LAB)
    link_lab.ok("up", LAB, "--set", f"link.rtt={RTT_MS}ms", "--set", "db.replication=async")
    report = json.loads(link_lab.run("drill", LAB, "lose-site-a", "--json", timeout=300).stdout)
    assert report["verdict"] == "fail"
    assert report["failover"]["old_primary"] == "db-1"
    assert report["writes"]["lost"] > 0
