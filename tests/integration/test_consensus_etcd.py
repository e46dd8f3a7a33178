"""consensus-etcd on a real Docker engine: three members form one Raft cluster with one
leader, a load's writes are all read back, killing the leader elects another within the
bound and loses no acknowledged write, and cutting the leader off shows what each read
mode promises: linearizable read-backs are never stale, serializable ones from the cut-off
leader are. One lab up for the whole module (re-upped with the other read mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labctl.etcd.cluster import cluster_view
from labctl.model.lab import load_lab
from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli, lab_objects

LAB = "consensus-etcd"


@pytest.fixture(scope="module")
def etcd_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("etcd") / "home")

    def cleanup() -> None:
        runner.run("down", LAB)
        assert lab_objects(LAB) == []

    request.addfinalizer(cleanup)
    runner.ok("up", LAB, "--set", "etcd.read_back=linearizable")
    return runner


def _view() -> Any:
    lab = load_lab(LAB)
    return cluster_view(lab, lab.blocks["etcd"])


def test_the_members_form_one_cluster_with_one_leader(etcd_lab: Cli) -> None:
    status = json.loads(etcd_lab.ok("status", LAB, "--json"))
    assert status["state"] == "up" and len(status["services"]) == 3
    view = _view()
    assert view.leader in ("etcd-1", "etcd-2", "etcd-3")
    # Every member names the same leader at the same term, and only the leader leads.
    assert {(m.leader_id, m.term) for m in view.members} == {(view.members[0].leader_id, view.term)}
    assert [m.name for m in view.members if m.member_id == m.leader_id] == [view.leader]


def test_a_load_writes_unique_keys_and_reads_every_one_back(etcd_lab: Cli) -> None:
    summary = json.loads(etcd_lab.ok("load", LAB, "--users", "2", "--duration", "3s", "--json"))
    writes = summary["db"]["writes"]
    assert writes["attempted"] > 100 and writes["acknowledged"] == writes["attempted"]
    assert writes["lost"] == 0 and writes["unexpected"] == 0
    # Linearizable read-backs from another member: every acknowledged write is there.
    assert summary["db"]["stale_reads"]["reads"] > 100 and summary["db"]["stale_reads"]["stale"] == 0
    # Two users write to etcd-1 and etcd-2 and read back from the next member: each member
    # answers under its own name, and etcd-2 serves one user's writes and the other's reads.
    backends = summary["backends"]
    assert set(backends) == {"etcd-1", "etcd-2", "etcd-3"} and backends["etcd-2"] > backends["etcd-3"]


def test_kill_leader_elects_another_and_loses_no_acknowledged_write(etcd_lab: Cli, tmp_path: Path) -> None:
    before = _view().leader
    result = etcd_lab.run("drill", LAB, "kill-leader", "--json")
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    election = report["election"]
    assert election["old_leader"] == before and election["new_leader"] not in (None, before)
    assert election["term_after"] > election["term_before"]
    assert report["writes"]["lost"] == 0 and report["writes"]["acknowledged"] > 100
    # Healed: the old leader is back as a follower, every member healthy under one leader.
    view = _view()
    assert len(view.healthy) == 3 and view.leader is not None


def _partition(etcd_lab: Cli) -> dict[str, Any]:
    result = etcd_lab.run("drill", LAB, "partition-leader", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["verdict"] == "pass", result.stdout[-3000:]
    assert report["writes"]["lost"] == 0 and report["election"]["minority_commits"] == 0
    return report


def test_a_cut_off_leader_answers_no_linearizable_read(etcd_lab: Cli) -> None:
    report = _partition(etcd_lab)
    assert report["stale_reads"]["reads"] > 100 and report["stale_reads"]["stale"] == 0
    # Alone, it cannot confirm it still leads (ReadIndex needs a majority): no answers at all.
    assert report["election"]["old_leader_reads"]["reads"] == 0


def test_a_cut_off_leader_serves_stale_serializable_reads(etcd_lab: Cli) -> None:
    etcd_lab.ok("up", LAB, "--set", "etcd.read_back=serializable")
    report = _partition(etcd_lab)
    cut_off = report["election"]["old_leader_reads"]
    # Every write the majority acknowledged while it was cut off is missing from its copy.
    assert cut_off["reads"] > 20 and cut_off["stale"] >= 0.9 * cut_off["reads"]


def test_members_recreated_with_another_setting_keep_their_data_and_their_cluster(etcd_lab: Cli) -> None:
    member = "labctl-consensus-etcd-etcd-2"
    created = docker_client().containers.get(member).attrs["Created"]
    assert docker_client().containers.get(member).exec_run(["etcdctl", "put", "labctl/kept", "yes"]).exit_code == 0
    etcd_lab.ok("up", LAB, "--set", "etcd.election_timeout=2s")
    assert docker_client().containers.get(member).attrs["Created"] != created  # a new container...
    kept = docker_client().containers.get(member).exec_run(["etcdctl", "get", "--print-value-only", "labctl/kept"])
    assert kept.output.decode().strip() == "yes"  # ... on the same data, in the same cluster
    view = _view()
    assert view.leader and len(view.healthy) == 3
    etcd_lab.ok("up", LAB)
