"""db-master-master on a real Docker engine: two MySQL nodes replicate both ways and HAProxy
writes to db-1; the same rows updated on both nodes commit everywhere and leave the nodes
different (`db check` finds it); the same unique key inserted on both stops both channels
(`db status` shows error 1062) until `up` rebuilds db-2; killing db-1 moves the writes to
db-2 at once. One lab up for the whole module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Cli, lab_objects

LAB = "db-master-master"


@pytest.fixture(scope="module")
def pair_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("pair") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB)
    return runner


def _status(pair_lab: Cli) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(pair_lab.ok("db", "status", LAB, "--json"))
    return report


def _check(pair_lab: Cli) -> tuple[int, dict[str, Any]]:
    result = pair_lab.run("db", "check", LAB, "--json")
    return result.returncode, json.loads(result.stdout)


def _drill(pair_lab: Cli, name: str) -> dict[str, Any]:
    result = pair_lab.run("drill", LAB, name, "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    return report


def test_up_returns_with_both_nodes_writable_and_replicating_from_each_other(pair_lab: Cli) -> None:
    status = _status(pair_lab)
    assert status["writer"] == "db-1" and status["replicating_both_ways"]
    assert [(n["node"], n["writable"], n["source"], n["io_thread"], n["sql_thread"]) for n in status["nodes"]] == [
        ("db-1", True, "db-2", "Yes", "Yes"), ("db-2", True, "db-1", "Yes", "Yes")]


def test_a_load_through_haproxy_reaches_both_nodes_and_they_agree(pair_lab: Cli) -> None:
    summary = json.loads(pair_lab.ok("load", LAB, "--users", "2", "--duration", "3s", "--json"))
    writes = summary["db"]["writes"]
    assert writes["attempted"] > 20 and writes["acknowledged"] == writes["attempted"] and writes["lost"] == 0
    code, check = _check(pair_lab)
    assert code == 0 and check["consistent"], check


def test_conflicting_updates_all_commit_and_the_nodes_diverge(pair_lab: Cli) -> None:
    report = _drill(pair_lab, "conflicting-updates")
    conflict = report["pair"]["conflict"]
    clients = conflict["clients"]
    # Nothing refused either client: each node committed every update on its own.
    assert all(c["committed"] > 20 and not c["errors"] for c in clients.values()), clients
    assert conflict["converged"] and conflict["rows_differing"] >= 1
    assert any(n["increments_lost"] > 0 for n in conflict["nodes"].values())
    code, check = _check(pair_lab)
    hot = {row["node"]: row["tables"]["labctl.hot"]["checksum"] for row in check["nodes"]}
    assert code == 1 and not check["consistent"] and hot["db-1"] != hot["db-2"], check


def test_the_same_unique_key_on_both_nodes_stops_replication_until_up_rebuilds_db_2(pair_lab: Cli) -> None:
    report = _drill(pair_lab, "duplicate-key")
    duplicate = report["pair"]["duplicate_key"]
    assert all(i["committed"] for i in duplicate["inserts"].values()), duplicate
    assert any("Duplicate entry" in c["worker_error"] for c in duplicate["channels"].values()), duplicate
    stopped = [n for n in _status(pair_lab)["nodes"] if n["sql_thread"] == "No"]
    assert stopped and any(n["error"].startswith("1062: Duplicate entry") for n in stopped), stopped
    pair_lab.ok("up", LAB)
    assert _status(pair_lab)["replicating_both_ways"]
    code, check = _check(pair_lab)
    assert code == 0 and check["consistent"], check


def test_offsets_keep_generated_ids_apart_and_without_them_both_channels_stop(pair_lab: Cli) -> None:
    report = _drill(pair_lab, "auto-increment")
    ids = report["pair"]["duplicate_key"]["ids"]
    assert len(ids) == 3 and all(r["db-1"] % 2 == 1 and r["db-2"] % 2 == 0 for r in ids), ids
    pair_lab.ok("up", LAB, "--set", "db.auto_increment_offsets=false")
    result = pair_lab.run("drill", LAB, "auto-increment", "--json")
    failed = json.loads(result.stdout)
    assert result.returncode == 1 and failed["verdict"] == "fail", result.stdout[-2000:]
    channels = failed["pair"]["duplicate_key"]["channels"].values()
    assert any("for key 'accounts.PRIMARY'" in c["worker_error"] for c in channels), channels
    pair_lab.ok("up", LAB)
    assert _status(pair_lab)["replicating_both_ways"]


def test_kill_primary_moves_the_writes_to_db_2_and_db_1_comes_back_writable(pair_lab: Cli) -> None:
    report = _drill(pair_lab, "kill-primary")
    assert report["writes"]["acknowledged"] > 100
    assert report["rto_s"] is not None and report["rto_s"] < 10
    back = report["pair"]["after_return"]
    # Whatever db-2 lacked while db-1 was down reached it once db-1 was back.
    assert back["still_lost"] == 0 and back["arrived_after_return"] == back["missing_while_down"], back
    status = _status(pair_lab)
    assert status["writer"] == "db-1" and status["replicating_both_ways"]
