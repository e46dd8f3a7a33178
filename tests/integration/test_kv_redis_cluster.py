"""kv-redis-cluster on a real Docker engine: six Redis nodes form one cluster (three masters
sharing the 16384 slots, a replica each), a load's writes spread over the masters and are all
read back, killing a master promotes its own replica within the bound, moving slots under
load makes the load follow MOVED redirects and loses nothing, and WAIT is switched on live.
One lab up for the whole module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.model.lab import load_lab
from labctl.redis.cluster import ClusterView, cluster_view
from tests.integration.conftest import Cli, lab_objects

LAB = "kv-redis-cluster"


@pytest.fixture(scope="module")
def redis_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("redis") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB)
    return runner


def _view() -> ClusterView:
    return cluster_view(load_lab(LAB).blocks["redis"])


def _replica_of(view: ClusterView, master: str) -> list[str]:
    newest = view.newest()
    node_id = view.masters()[master].node_id
    return [view.name_of(p.node_id) for p in (newest.peers if newest else []) if p.master_id == node_id]


def test_six_nodes_form_one_cluster_of_three_masters_with_a_replica_each(redis_lab: Cli) -> None:
    view = _view()
    assert view.ok and len(view.reachable) == 6
    masters = view.masters()
    assert len(masters) == 3 and sum(p.slots for p in masters.values()) == 16384
    assert all(len(_replica_of(view, name)) == 1 for name in masters)
    status = json.loads(redis_lab.ok("db", "status", LAB, "--json"))
    assert status["whole"] and [r["role"] for r in status["nodes"]].count("replica") == 3


def test_a_load_spreads_writes_over_the_masters_and_reads_every_one_back(redis_lab: Cli) -> None:
    summary = json.loads(redis_lab.ok("load", LAB, "--users", "3", "--duration", "3s", "--json"))
    writes = summary["db"]["writes"]
    assert writes["attempted"] > 100 and writes["acknowledged"] == writes["attempted"]
    assert writes["lost"] == 0 and writes["unexpected"] == 0
    assert summary["db"]["stale_reads"]["stale"] == 0
    # Keys hash evenly over the slots: each master answers about a third (SET and GET).
    shares = summary["backend_share"]
    assert set(shares) == set(_view().masters()) and all(0.25 < s < 0.42 for s in shares.values())


def _drill(redis_lab: Cli, drill: str) -> dict[str, Any]:
    result = redis_lab.run("drill", LAB, drill, "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    return report


def test_kill_master_promotes_its_own_replica(redis_lab: Cli) -> None:
    before = _view()
    old = next(name for name, peer in before.masters().items() if peer.serves(0))
    replica = _replica_of(before, old)
    report = _drill(redis_lab, "kill-master")
    failover = report["failover"]
    assert failover["old_master"] == old and [failover["new_master"]] == replica
    assert 0 < failover["failed_s"] <= failover["promoted_s"] < 6
    # Writes to the dead master's slots failed until the promotion; the others never stopped.
    assert report["writes"]["failed"] > 0 and report["writes"]["acknowledged"] > 100
    after = _view()
    assert after.ok and len(after.reachable) == 6 and old not in after.masters()


def test_reshard_under_load_follows_moved_redirects_and_loses_nothing(redis_lab: Cli) -> None:
    before = {name: peer.slots for name, peer in _view().masters().items()}
    report = _drill(redis_lab, "reshard-under-load")
    moved = report["reshard"][0]
    after = {name: peer.slots for name, peer in _view().masters().items()}
    assert after[moved["from"]] == before[moved["from"]] - 200 and after[moved["to"]] == before[moved["to"]] + 200
    assert report["redirects"]["moved"] > 0 and report["writes"]["lost"] == 0 and report["failures"] == 0


def test_wait_is_switched_on_without_recreating_a_node(redis_lab: Cli) -> None:
    started = {s["name"]: s for s in json.loads(redis_lab.ok("status", LAB, "--json"))["services"]}
    redis_lab.ok("up", LAB, "--set", "redis.wait_replicas=1")
    summary = json.loads(redis_lab.ok("load", LAB, "--users", "2", "--duration", "3s", "--json"))
    # Every master has its replica linked: every WAIT 1 is answered, none times out (unknown).
    writes = summary["db"]["writes"]
    assert writes["acknowledged"] > 0 and writes["unknown"] == 0 and writes["lost"] == 0
    # Every SET of this load waited for a replica: Locust's stats have only that request name.
    stats = (redis_lab.home / "runs" / LAB / summary["run_id"] / "locust_stats.csv").read_text()
    assert "SET,SET+WAIT 1," in stats and "SET,SET," not in stats
    again = {s["name"]: s for s in json.loads(redis_lab.ok("status", LAB, "--json"))["services"]}
    assert set(again) == set(started)
