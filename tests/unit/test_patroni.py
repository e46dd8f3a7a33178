"""The patroni block without Docker: validation, what reaches Patroni's and HAProxy's configs,
when a cluster counts as formed, the failover read from watched views, and how the load's
user classifies a failed INSERT."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pg8000.native

from labctl.experiments.ledger import ACK, FAILED, UNKNOWN, Write
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.patroni import cluster
from labctl.patroni.cluster import ClusterView, MemberView, dynamic_config, formed, nobody_bootstraps
from labctl.patroni.drill_patroni import failover_report, report_rows, settings
from labctl.patroni.outcomes import NotConnected, outcome_of
from labctl.render import render_files
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

IMAGES = {"etcd": "labctl/etcd:local", "haproxy": "labctl/haproxy:local", "postgres": "labctl/postgres:local",
          "app": "labctl/app:local"}
BAD = """\
title: t
summary: s
store:
  kind: etcd
  publish: {client: 23801}
pg:
  kind: patroni
  dcs: nowhere
  ttl: 10
  loop_wait: 5
  publish: {postgres: 15431, api: 18008}
"""


def test_patroni_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "p", BAD)
    assert problems_of("p") == [
        "p/lab.yaml:8 pg.dcs: expected the name of an etcd block (store), got 'nowhere'",
        "p/lab.yaml:9 pg.ttl: expected at least 20 (Patroni refuses less)",
        "p/lab.yaml:9 pg.ttl: expected at least loop_wait + 2 x retry_timeout (25): a primary must be able to "
        "give up on its store and demote itself before its lock expires (Patroni would shrink loop_wait and "
        "retry_timeout to fit)",
    ]


def test_each_node_keeps_its_lock_in_the_etcd_block_and_haproxy_asks_patroni() -> None:
    lab = load_lab("pg-patroni", parse_overrides(["pg.nodes=4", "pg.synchronous_mode=true"]))
    files = render_files(lab, IMAGES)
    node = files["pg/pg-4.yml"]
    assert "name: pg-4\n" in node and "connect_address: pg-4:5432" in node
    assert "hosts: etcd-1:2379,etcd-2:2379,etcd-3:2379\n" in node
    assert "ttl: 20\n" in node and "synchronous_mode: true\n" in node and "labctl.node: pg-4\n" in node
    app = files["compose.yaml"].split("  app-1:")[1]
    assert "DB_WRITER: \"pglb:3306\"" in app and "DB_READERS: \"pglb:3307\"" in app and "DB_ENGINE: postgres" in app
    router = files["pglb/haproxy.cfg"]
    assert "uri /primary" in router and "uri /replica" in router and "check port 8008" in router
    assert router.count("server pg-4 pg-4:5432") == 2
    assert '"127.0.0.1:15434:5432"' in files["compose.yaml"] and '"127.0.0.1:18011:8008"' in files["compose.yaml"]
    assert dynamic_config(lab.blocks["pg"]) == {"ttl": 20, "loop_wait": 2, "retry_timeout": 5,
                                                "maximum_lag_on_failover": 1048576, "synchronous_mode": True,
                                                "failsafe_mode": False}


def _view(at: float, leader: str | None, timeline: int, down: str = "", sync: bool = False) -> ClusterView:
    members = [MemberView(n, n != down, "primary" if n == leader else "replica",
                          "running" if n == leader else "streaming", timeline) for n in ("pg-1", "pg-2", "pg-3")]
    listed = [{"name": m.name, "role": "leader" if m.name == leader else ("sync_standby" if sync else "replica"),
               "state": m.state, "timeline": timeline} for m in members if m.reachable]
    return ClusterView(at, members, listed)


def test_formed_needs_one_running_leader_every_replica_streaming_and_the_sync_standby() -> None:
    lab = load_lab("pg-patroni", parse_overrides(["pg.synchronous_mode=true"]))
    block = lab.blocks["pg"]
    assert not formed(_view(0, "pg-1", 1), block)
    assert formed(_view(0, "pg-1", 1), block, settled=False)
    assert formed(_view(0, "pg-1", 1, sync=True), block)
    assert not formed(_view(0, "pg-1", 1, down="pg-3", sync=True), block)
    assert not formed(_view(0, None, 1), block, settled=False)


def test_the_failover_is_the_first_view_with_another_running_primary_on_a_later_timeline() -> None:
    views = [_view(9.8, "pg-1", 1), _view(10.2, "pg-1", 1, down="pg-1"), _view(25.0, None, 1, down="pg-1"),
             _view(31.0, "pg-2", 2, down="pg-1")]
    cut = {"id": "f1", "at": 10.0, "in_place_at": 10.1, "fault": "kill", "target": "pg-1"}
    writes = [Write("a", "r", 10.5, 10.6, 200, ACK, node="pg-1"), Write("b", "r", 31.1, 31.2, 200, ACK, node="pg-2")]
    report = failover_report(views, cut, "pg-1", [{"id": "f1", "reverted_at": 40.0}], writes)
    assert (report["old_primary"], report["new_primary"]) == ("pg-1", "pg-2")
    assert (report["timeline_before"], report["timeline_after"], report["promoted_s"]) == (1, 2, 20.9)
    assert report["demoted_s"] is None and report["acks_after_cut"] == 1 and report["two_primaries_s"] == 0
    lab = load_lab("pg-patroni", parse_overrides(["pg.ttl=30", "pg.loop_wait=10", "pg.retry_timeout=10"]))
    rows = report_rows({"patroni": {**report, **settings(lab.blocks["pg"])}})
    assert rows[0] == ("failover", "pg-1 (timeline 1) -> pg-2 (timeline 2) in 20.9 s", rows[0][2])
    assert rows[1][1] == "ttl 30 s, loop_wait 10 s, retry_timeout 10 s (Patroni's defaults)"


def test_an_insert_is_failed_only_when_it_surely_did_not_commit() -> None:
    assert outcome_of(NotConnected("network error")) == FAILED
    assert outcome_of(pg8000.native.DatabaseError({"C": "25006", "M": "read-only transaction"})) == FAILED
    assert outcome_of(pg8000.native.DatabaseError({"C": "57P01", "M": "terminating connection"})) == UNKNOWN
    assert outcome_of(pg8000.native.InterfaceError("network error")) == UNKNOWN
    assert outcome_of(TimeoutError("timed out")) == UNKNOWN


def test_when_the_store_is_lost_the_leader_before_is_the_old_primary_and_no_rto_is_claimed() -> None:
    demoted = ClusterView(16.0, [MemberView("pg-1", True, "replica", "running", 1),
                                 *_view(0, "pg-1", 1).members[1:]], [])
    views = [_view(9.8, "pg-1", 1), demoted, _view(40.0, "pg-1", 1)]
    cut = {"id": "f1", "at": 10.0, "in_place_at": 10.1, "fault": "kill", "target": "etcd-2"}
    report = failover_report(views, cut, "pg-1", [{"id": "f1", "reverted_at": 35.0}], [])
    assert report["store_fault"] and report["new_primary"] is None and report["demoted_s"] == 5.9
    assert report["primary_again_s"] == {"node": "pg-1", "timeline": 1, "after_demotion_s": 24.0}
    lab = load_lab("pg-patroni")
    [store, *_] = report_rows({"patroni": {**report, **settings(lab.blocks["pg"])}})
    assert store[:2] == ("store lost", "kill etcd-2: pg-1 (timeline 1) demoted 5.9 s after it; pg-1 primary again "
                         "(timeline 1) 24.0 s after that")


def test_an_etcd_block_that_holds_patronis_lock_leaves_the_writes_to_patroni() -> None:
    from labctl.experiments.events import DrillEvents

    for lab_name, subscribed in (("pg-patroni", False), ("consensus-etcd", True)):
        lab = load_lab(lab_name)
        events = DrillEvents()
        lab.blocks["etcd"].spec.subscribe(lab, lab.blocks["etcd"], events, lambda _: None)
        assert events.healed.has_listeners is subscribed, lab_name


def test_the_http_endpoint_is_the_apps_not_the_lock_stores() -> None:
    urls = load_lab("pg-patroni").endpoint_urls()
    assert urls["http"] == "http://127.0.0.1:8201" and urls["etcd-1"] == "http://127.0.0.1:23801"
    assert load_lab("consensus-etcd").endpoint_urls()["http"] == "http://127.0.0.1:23791"


def _stopped(names: tuple[str, ...], down: str = "") -> ClusterView:
    members = [MemberView(n, n != down, role="replica", state="stopped") for n in names]
    return ClusterView(0, members, [])


def test_nobody_bootstraps_only_while_every_node_answers_stopped_and_none_leads() -> None:
    names = ("pg-1", "pg-2", "pg-3")
    assert nobody_bootstraps(_stopped(names))
    assert not nobody_bootstraps(_stopped(names, down="pg-2"))
    assert not nobody_bootstraps(_view(0, "pg-1", 1))
    starting = ClusterView(0, [MemberView("pg-1", True, role="replica", state="initializing new cluster"),
                               *_stopped(names[1:]).members], [])
    assert not nobody_bootstraps(starting)


def test_wait_formed_releases_a_stalled_claim_once_then_waits_for_the_cluster(monkeypatch: Any) -> None:
    block = load_lab("pg-patroni").blocks["pg"]
    clock = iter(range(0, 1000, 5))
    views = iter([_stopped(("pg-1", "pg-2", "pg-3"))] * 4 + [_view(0, "pg-1", 1)])
    stalls: list[int] = []
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(time, "sleep", lambda _: None)
    monkeypatch.setattr(cluster, "cluster_view", lambda _: next(views))
    view = cluster.wait_formed(block, 600, lambda _: None, settled=False, on_stall=lambda: stalls.append(1))
    assert view.leader == "pg-1" and stalls == [1]
