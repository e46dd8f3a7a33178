"""db-galera on a real Docker engine: three MariaDB nodes form one Primary component, the
app's writes through HAProxy are all on every node, killing the node HAProxy writes to loses
no acknowledged write and it comes back by IST, and a node cut off alone goes non-Primary
and accepts no write while the two others carry on. One lab up for the whole module."""

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
    assert writes["attempted"] > 50 and writes["acknowledged"] == writes["attempted"]
    assert writes["lost"] == 0 and writes["unexpected"] == 0


def _drill(galera_lab: Cli, name: str) -> dict[str, Any]:
    result = galera_lab.run("drill", LAB, name, "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    return report


def test_kill_primary_keeps_every_acknowledged_write_and_the_node_rejoins_by_ist(galera_lab: Cli) -> None:
    report = _drill(galera_lab, "kill-primary")
    writes = report["writes"]
    assert writes["lost"] == 0 and writes["acknowledged"] > 300
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
