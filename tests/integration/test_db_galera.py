"""db-galera on a real Docker engine: three MariaDB nodes form one Primary component, the
app's writes through HAProxy are all on every node, killing the node HAProxy writes to loses
no acknowledged write and it comes back by IST, a node cut off alone goes non-Primary and
accepts no write while the two others carry on, and two clients writing the same rows on two
nodes are refused with deadlocks while every node ends with the same rows. One lab up for the
whole module; the last tests reshape it in place (`up --set`) to two nodes with and without
garbd, so they come last."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Cli, lab_objects

LAB = "db-galera"


@pytest.fixture(scope="module")
def galera_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("galera") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB)
    return runner


def _status(galera_lab: Cli) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(galera_lab.ok("db", "status", LAB, "--json"))
    return report


def test_up_returns_with_three_synced_nodes_in_one_primary_component(galera_lab: Cli) -> None:
    status = _status(galera_lab)
    assert status["whole"] and status["writer"] == "galera-1"
    assert [(n["node"], n["wsrep_cluster_status"], n["wsrep_cluster_size"], n["wsrep_local_state_comment"])
            for n in status["nodes"]] == [(f"galera-{i}", "Primary", "3", "Synced") for i in (1, 2, 3)]


def test_a_load_through_haproxy_loses_nothing(galera_lab: Cli) -> None:
    summary = json.loads(galera_lab.ok("load", LAB, "--users", "2", "--duration", "3s", "--json"))
    writes = summary["db"]["writes"]
    # A floor, not a throughput: others share the 2 cores (9 writes in 3 s seen at load 28).
    assert writes["attempted"] > 5 and writes["acknowledged"] == writes["attempted"]
    assert writes["lost"] == 0 and writes["unexpected"] == 0


def _drill(galera_lab: Cli, name: str) -> dict[str, Any]:
    result = galera_lab.run("drill", LAB, name, "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    return report


def test_kill_primary_keeps_every_acknowledged_write_and_the_node_rejoins_by_ist(galera_lab: Cli) -> None:
    report = _drill(galera_lab, "kill-primary")
    writes = report["writes"]
    assert writes["lost"] == 0 and writes["acknowledged"] > 50
    # The other two kept taking writes: acknowledged writes after the kill, on another node.
    assert report["rto_s"] is not None and report["rto_s"] < 10
    rejoin = report["galera"]["rejoin"]
    assert rejoin["node"] == "galera-1" and rejoin["method"].startswith("IST"), rejoin
    assert _status(galera_lab)["whole"]


def test_partition_one_the_lone_node_refuses_reads_and_writes(galera_lab: Cli) -> None:
    report = _drill(galera_lab, "partition-one")
    galera = report["galera"]
    window = galera["cut_off_window"]
    assert galera["cut_off"] == "galera-1" and galera["non_primary_writes"] == 0
    # Asked straight on its published port while alone: it refused every write and read.
    assert window["writes"]["ok"] == 0 and window["writes"]["refused"] >= 3
    assert window["reads"]["ok"] == 0 and window["reads"]["refused"] >= 3
    assert window["components"].get("non-Primary", 0) >= 1
    # The two others formed the Primary component and HAProxy sent the writes there.
    assert report["writes"]["lost"] == 0
    others = {n for n in ("galera-2", "galera-3")}
    assert report["rto_s"] is not None and report["rto_s"] < 10
    assert sum(galera["nodes"][n]["writes"]["ok"] for n in others) > 0
    assert galera["rejoin"]["method"].startswith("IST") and _status(galera_lab)["whole"]
    # The two-node side's write error window, and the failure detection it came from.
    assert galera["survivor_writes"] > 0 and 1 < galera["survivor_writes_after_s"] < 15
    assert galera["suspect_timeout_s"] == 5 and galera["suspect_timeout_default"]
    assert all(s["last"]["status"] == "Primary" and s["last"]["size"] == 2 for s in galera["survivors"].values())


def test_write_conflict_refuses_clashing_transactions_and_every_node_agrees(galera_lab: Cli) -> None:
    conflict = _drill(galera_lab, "write-conflict")["galera"]["conflict"]
    assert [c["node"] for c in conflict["clients"]] == ["galera-1", "galera-2"]
    assert conflict["commits"] > 20 and conflict["deadlocks"] > 0 and 0 < conflict["refused_share"] < 1
    counters = conflict["counters"]
    assert sum(c["wsrep_local_cert_failures"] + c["wsrep_local_bf_aborts"] for c in counters.values()) > 0
    # Every acknowledged commit added 2, every refused one nothing, on every node alike.
    assert conflict["nodes_agree"] and conflict["lost_updates"] == 0
    assert {r["sum"] for r in conflict["rows_after"].values()} == {2 * conflict["commits"]}


def test_a_drill_for_two_nodes_names_the_up_it_needs(galera_lab: Cli) -> None:
    result = galera_lab.run("drill", LAB, "two-nodes-plus-arbitrator")
    assert result.returncode == 1
    assert ("run 'labctl up db-galera --set galera.nodes=2 --set galera.arbitrator=true' first"
            in result.stdout + result.stderr)


def test_two_nodes_plus_arbitrator_keep_quorum_when_a_node_dies(galera_lab: Cli) -> None:
    galera_lab.ok("up", LAB, "--set", "galera.nodes=2", "--set", "galera.arbitrator=true")
    status = _status(galera_lab)
    assert status["whole"], status["nodes"]
    assert [(n["node"], n["wsrep_cluster_size"]) for n in status["nodes"]] == [
        ("galera-1", "3"), ("galera-2", "3"), ("galera-arbitrator", "3")]
    report = _drill(galera_lab, "two-nodes-plus-arbitrator")
    galera = report["galera"]
    assert report["writes"]["lost"] == 0 and report["rto_s"] is not None and report["rto_s"] < 12
    # galera-2 and garbd are 2 of 3 votes: it stayed Primary and took writes while galera-1 was dead.
    survivor = galera["survivors"]["galera-2"]
    assert galera["survivor_writes"] > 0 and survivor["last"] == {"status": "Primary", "size": 2}
    assert galera["rejoin"]["cluster_size"] == 3


def test_two_nodes_without_arbitrator_lose_quorum_and_refuse_writes(galera_lab: Cli) -> None:
    galera_lab.ok("up", LAB, "--set", "galera.nodes=2", "--set", "galera.arbitrator=false")
    assert not [o for o in lab_objects(LAB) if o.endswith("galera-arbitrator")]
    report = _drill(galera_lab, "two-nodes-no-arbitrator")
    galera = report["galera"]
    assert report["writes"]["lost"] == 0 and galera["survivor_writes"] == 0
    assert galera["survivors"]["galera-2"]["last"]["status"] == "non-Primary"
    # Back once the dead node is: Galera's pc.recovery restores the component of both.
    assert galera["rejoin"]["cluster_size"] == 2 and _status(galera_lab)["whole"]
