"""lb-dns on a real engine (BIND answers, in-lab clients stuck on a dead address until their
cached answer expires) and `labctl compare` producing its table for two labs.

These tests take down only the labs they started (never `down --all`), so they can run
beside other labs on the same engine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.runtime.dockerenv import docker_client, port_is_free
from tests.integration.conftest import REPO, Cli, lab_objects


@pytest.fixture()
def own_cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path / "home")
    yield runner
    for lab in ("lb-dns", "lb-nginx"):
        if lab_objects(lab):
            runner.run("down", lab)


def resolve(container: str) -> list[str]:
    output = docker_client().containers.get(container).exec_run(
        ["python3", "/opt/labctl/labclient.py", "resolve"]).output.decode()
    return list(output.split(":")[-1].split())


def test_bind_hands_out_every_replica_in_rotation(own_cli: Cli) -> None:
    own_cli.ok("up", "lb-dns", "--set", "app.replicas=4", "--set", "dns.ttl=7")
    answers = [resolve("labctl-lb-dns-client") for _ in range(4)]
    expected = {f"10.213.130.{11 + i}" for i in range(4)}
    assert all(set(a) == expected for a in answers), answers
    assert len({a[0] for a in answers}) == 4, answers  # rrset-order cyclic: each answer starts elsewhere
    out = docker_client().containers.get("labctl-lb-dns-client").exec_run(
        ["python3", "/opt/labctl/labclient.py", "resolve"]).output.decode()
    assert "ttl 7" in out
    own_cli.ok("up", "lb-dns", "--set", "app.replicas=4", "--set", "dns.ttl=3")  # reloads the zone in place
    assert "ttl 3" in docker_client().containers.get("labctl-lb-dns-client").exec_run(
        ["python3", "/opt/labctl/labclient.py", "resolve"]).output.decode()
    summary = json.loads(own_cli.ok("load", "lb-dns", "--users", "6", "--rate", "60", "--duration", "5s", "--json"))
    assert summary["generator"] == "in-lab client" and summary["failures"] == 0
    assert sorted(summary["backends"]) == [f"app-{i}" for i in range(1, 5)]
    assert summary["requests"] > 150


def test_heal_starts_a_replica_killed_by_hand(own_cli: Cli) -> None:
    # The guide's step 3: nothing checks health, so a killed replica stays in the answer
    # until `labctl heal` (no fault of labctl's to revert) starts it again and says so.
    own_cli.ok("up", "lb-dns")
    app2 = docker_client().containers.get("labctl-lb-dns-app-2")
    app2.kill()
    assert len(resolve("labctl-lb-dns-client")) == 3
    out = own_cli.ok("heal", "lb-dns")
    assert "reverted 0 fault(s)" in out and "started app-2 (exited)" in out, out
    app2.reload()
    assert app2.status == "running"
    assert "started" not in own_cli.ok("heal", "lb-dns")  # nothing left down: nothing to start


def _drill(cli: Cli, ttl: int) -> dict[str, object]:
    cli.ok("up", "lb-dns", "--set", f"dns.ttl={ttl}")
    report: dict[str, object] = json.loads(cli.ok("drill", "lb-dns", "kill-backend-ttl", "--json"))
    return report


def test_clients_stay_on_the_dead_address_until_their_ttl_runs_out(own_cli: Cli, tmp_path: Path) -> None:
    labs = tmp_path / "labs"
    shutil.copytree(REPO / "labs" / "lb-dns", labs / "lb-dns")
    # The shipped drill with more clients, so their cached answers expire at many moments.
    (labs / "lb-dns" / "drills" / "kill-backend-ttl.yaml").write_text(
        "title: kill and withdraw\nload: {users: 24, rate: 120, duration: 16s}\n"
        "steady_state: {max_error_rate: 0.01, max_p95_ms: 1000, window: 3s}\n"
        "steps:\n  - {at: 4s, fault: kill, target: app.2}\n  - {at: 4s, fault: withdraw, target: app.2}\n"
        "  - {at: 12s, heal: true}\n")
    own_cli.extra_env["LABCTL_LABS_DIR"] = str(labs)
    windows = {}
    for ttl in (1, 6):
        report = _drill(own_cli, ttl)
        assert int(report["failed_during_fault"]) > 0, report  # type: ignore[call-overload]
        # No health check anywhere: failures until the cached answers expire, then none, long
        # before the heal. Generous margins: the connect timeout is 0.5 s and the machine is shared.
        assert float(report["error_window_s"]) <= ttl + 2.5, report  # type: ignore[arg-type]
        assert float(report["recovery_s"]) <= ttl + 3.0, report  # type: ignore[arg-type]
        # Traffic went to the dead address until the answers expired: detection is that long too.
        assert 0.3 <= float(report["detection_s"]) <= ttl + 2.5, report  # type: ignore[arg-type]
        windows[ttl] = float(report["error_window_s"])  # type: ignore[arg-type]
        assert resolve("labctl-lb-dns-client").count("10.213.130.12") == 1  # the heal put the record back
    # Six times the TTL, a clearly longer window: the clients' caches, not anything else, set it.
    assert windows[6] >= 2.0 and windows[6] > 2 * windows[1], windows


def test_compare_table_for_two_labs(own_cli: Cli) -> None:
    if not port_is_free(8080, "127.0.0.1") or lab_objects("lb-nginx") or lab_objects("lb-dns"):
        pytest.skip("port 8080 or lb-nginx/lb-dns is in use by another run")
    result = own_cli.ok("compare", "--labs", "lb-nginx,lb-dns", "--drill", "kill-backend", "--json", timeout=900)
    data = json.loads(result)
    rows = {row["lab"]: row for row in data["rows"]}
    assert sorted(rows) == ["lb-dns", "lb-nginx"]
    assert data["load"] == {"users": 10, "rate": 150.0}
    for row in rows.values():
        assert row["rps"] > 50 and row["p95_ms"] is not None and row["detection_s"] is not None
    assert rows["lb-nginx"]["generator"] == "locust" and rows["lb-dns"]["generator"] == "in-lab client"
    # The headline: Nginx retries on another server, DNS round robin cannot.
    assert rows["lb-nginx"]["failed_during_fault"] == 0
    assert rows["lb-dns"]["failed_during_fault"] > 0
    run_dir = Path(data["run_dir"])
    assert (run_dir / "compare.png").stat().st_size > 0 and (run_dir / "compare.json").is_file()
    # compare brought both labs up, so it took both down again
    assert lab_objects("lb-nginx") == [] and lab_objects("lb-dns") == []
