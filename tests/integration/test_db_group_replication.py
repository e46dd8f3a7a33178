"""db-group-replication on a real Docker engine: labctl forms a group of three MySQL members
over SQL, the app's writes through HAProxy all reach the group, killing the primary makes the
group elect another with no acknowledged write lost, and a primary cut off alone acknowledges
nothing while the two others elect a new one; switched to multi-primary, two members updating the
same rows agree but refuse a share of the commits. One lab up for the whole module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Cli, lab_objects

LAB = "db-group-replication"
MEMBERS = ("db-1", "db-2", "db-3")


@pytest.fixture(scope="module")
def group_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("group") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB)
    return runner


def _status(group_lab: Cli) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(group_lab.ok("db", "status", LAB, "--json"))
    return report


def _drill(group_lab: Cli, name: str) -> dict[str, Any]:
    result = group_lab.run("drill", LAB, name, "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    return report


def test_up_returns_with_three_online_members_and_one_primary(group_lab: Cli) -> None:
    status = _status(group_lab)
    assert status["whole"] and status["primary"] == "db-1"
    assert [(n["node"], n["state"], n["role"], n["view"]) for n in status["nodes"]] == [
        ("db-1", "ONLINE", "PRIMARY", "3/3 online"), ("db-2", "ONLINE", "SECONDARY", "3/3 online"),
        ("db-3", "ONLINE", "SECONDARY", "3/3 online")]


def test_a_load_through_haproxy_loses_nothing(group_lab: Cli) -> None:
    summary = json.loads(group_lab.ok("load", LAB, "--users", "2", "--duration", "3s", "--json"))
    writes = summary["db"]["writes"]
    # Counts, not rates: with other labs on the 2 cores (load average 20) 2 users did 27 writes in 3 s.
    assert writes["attempted"] > 10 and writes["acknowledged"] == writes["attempted"]
    assert writes["lost"] == 0 and writes["unexpected"] == 0


def test_kill_primary_the_group_elects_another_and_loses_nothing(group_lab: Cli) -> None:
    report = _drill(group_lab, "kill-primary")
    assert report["writes"]["lost"] == 0 and report["writes"]["acknowledged"] > 100
    election = report["group"]["election"]
    assert election["new_primary"] in ("db-2", "db-3") and election["seconds"] < 15, election
    assert report["rto_s"] is not None and report["rto_s"] < 15
    assert report["group"]["rejoin"]["node"] == "db-1"
    status = _status(group_lab)
    assert status["whole"] and status["primary"] == election["new_primary"]


def test_partition_primary_the_cut_off_member_acknowledges_nothing(group_lab: Cli) -> None:
    old = _status(group_lab)["primary"]
    report = _drill(group_lab, "partition-primary")
    group = report["group"]
    assert group["cut_off"] == old and group["minority_writes"] == 0
    # Asked straight on its published port while alone: no write it took was acknowledged.
    window = group["cut_off_window"]
    assert window["writes"]["ok"] == 0 and window["writes"]["refused"] >= 2, window
    assert group["election"]["new_primary"] != old and group["election"]["seconds"] < 15
    others = [m for m in MEMBERS if m != old]
    assert sum(group["members"][m]["writes"]["ok"] for m in others) > 0
    assert report["writes"]["lost"] == 0 and report["rto_s"] is not None and report["rto_s"] < 15
    assert group["rejoin"]["node"] == old and _status(group_lab)["whole"]


# The mode tests come last: they leave the group in single-primary mode again, but with the
# member that was first writable in multi-primary mode as primary.
def test_the_conflict_drill_on_a_single_primary_group_says_which_up_to_run(group_lab: Cli) -> None:
    result = group_lab.run("drill", LAB, "multi-primary-conflict")
    assert result.returncode == 1
    assert f"run 'labctl up {LAB} --set db.mode=multi-primary' first" in result.stderr, result.stderr


def test_multi_primary_two_members_updating_the_same_rows_agree_but_refuse_a_share(group_lab: Cli) -> None:
    group_lab.ok("up", LAB, "--set", "db.mode=multi-primary")
    status = _status(group_lab)
    assert status["whole"] and [n["role"] for n in status["nodes"]] == ["PRIMARY"] * 3, status
    report = _drill(group_lab, "multi-primary-conflict")
    found = report["group"]["conflict"]
    clients = {c["node"]: c for c in found["clients"]}
    assert set(clients) == {"db-1", "db-2"} and all(c["committed"] > 0 for c in clients.values()), found
    assert found["totals"]["certification"] > 0 and 0 < found["refused_share"] < 1, found["totals"]
    assert all(n is not None and n >= found["totals"]["certification"] for n in found["conflicts_detected"].values())
    assert found["agreement"]["agree"] and found["lost_updates"] == 0, found["agreement"]
    assert report["writes"]["lost"] == 0


def test_up_switches_the_group_back_to_single_primary(group_lab: Cli) -> None:
    group_lab.ok("up", LAB)
    status = _status(group_lab)
    assert status["whole"] and status["primary"] == "db-1"
    assert [n["role"] for n in status["nodes"]] == ["PRIMARY", "SECONDARY", "SECONDARY"], status
