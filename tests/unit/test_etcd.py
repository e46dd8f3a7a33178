"""The etcd block without Docker: validation, ports, targets asked of the cluster, and the
election report computed from what a watch saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.etcd import cluster, drill_etcd
from labctl.etcd.cluster import ClusterView, MemberState
from labctl.experiments import ledger, targets
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from labctl.runtime.inventory import ServiceState
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

BAD = """\
title: t
summary: s
etcd:
  kind: etcd
  members: 4
  heartbeat: fast
  publish: {peer: 2380}
"""


def test_etcd_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "e", BAD)
    assert problems_of("e") == [
        "e/lab.yaml:6 etcd.heartbeat: expected a duration like 200ms, 5s or 1m, got 'fast'",
        "e/lab.yaml:5 etcd.members: expected one of 3, 5, got 4",
        "e/lab.yaml:7 etcd.publish.peer: unknown key 'peer' (known keys: client)",
        "e/lab.yaml:7 etcd.publish: missing required key 'client'",
    ]


@pytest.mark.parametrize(("timeouts", "problem"), [
    ("heartbeat: 100ms, election_timeout: 300ms",
     "etcd.election_timeout: expected at least 5 heartbeats (500ms): etcd refuses a shorter election timeout"),
    ("election_timeout: 1m", "etcd.election_timeout: expected at most 50s (etcd's limit)"),
])
def test_election_timeout_is_checked_against_etcd_limits(labs_root: Path, timeouts: str,  # noqa: F811
                                                         problem: str) -> None:
    write_lab(labs_root, "t", f"title: t\nsummary: s\netcd: {{kind: etcd, {timeouts}, publish: {{client: 9000}}}}\n")
    assert problems_of("t") == [f"t/lab.yaml:3 {problem}"]


def test_one_port_per_member_and_collisions_are_found(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "p", "title: t\nsummary: s\netcd:\n  kind: etcd\n  members: 5\n  publish: {client: 9000}\n"
              "app:\n  kind: app\n  publish: {http: 9004}\n")
    assert problems_of("p") == ["p/lab.yaml:9 app.publish.http: port 9004 is already published by etcd.publish.client"]
    assert load_lab("p", parse_overrides(["app.publish.http=9005"])).blocks["etcd"].host_ports("client") == [
        9000, 9001, 9002, 9003, 9004]


def test_the_lab_renders_a_static_cluster_with_etcd_defaults() -> None:
    lab = load_lab("consensus-etcd")
    block = lab.blocks["etcd"]
    assert block.params["heartbeat"] == "100ms" and block.params["election_timeout"] == "1s"
    assert block.host_ports("client") == [23791, 23792, 23793]
    assert lab.endpoint_urls() == {"http": "http://127.0.0.1:23791", "etcd-1": "http://127.0.0.1:23791",
                                   "etcd-2": "http://127.0.0.1:23792", "etcd-3": "http://127.0.0.1:23793"}
    compose = render_files(lab, {"etcd": "labctl/etcd:local"})["compose.yaml"]
    assert ("--initial-cluster=etcd-1=http://etcd-1:2380,etcd-2=http://etcd-2:2380,etcd-3=http://etcd-3:2380"
            in compose)
    assert "--heartbeat-interval=100" in compose and "--election-timeout=1000" in compose


def _states() -> list[ServiceState]:
    return [ServiceState(f"etcd-{i}", "etcd", "etcd", f"labctl-consensus-etcd-etcd-{i}",
                         "exited" if i == 3 else "running", "healthy", {}, "Up") for i in (1, 2, 3)]


def _view(at: float, leader: str | None, term: int, revision: int = 0) -> ClusterView:
    members = [MemberState(f"etcd-{i}", 23790 + i, True, True, str(i), "2", term, revision) for i in (1, 2, 3)]
    return ClusterView(at, members, leader, term)


def test_leader_and_followers_are_whoever_the_cluster_says_now(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = load_lab("consensus-etcd")
    monkeypatch.setattr(cluster, "cluster_view", lambda lab, block: _view(0.0, "etcd-2", 4))
    assert "etcd.leader" in targets.valid_targets(_states())
    assert [s.name for s in targets.resolve(lab, "etcd.leader", _states())] == ["etcd-2"]
    # etcd-3 is down: a follower target names the running ones only.
    assert [s.name for s in targets.resolve(lab, "etcd.followers", _states())] == ["etcd-1"]
    monkeypatch.setattr(cluster, "cluster_view", lambda lab, block: _view(0.0, None, 4))
    with pytest.raises(UsageError, match="has no etcd leader right now"):
        targets.resolve(lab, "etcd.leader", _states())


def _write(id_: str, sent: float, node: str, outcome: str = ledger.ACK) -> ledger.Write:
    return ledger.Write(id_, "r", sent, sent + 0.01, 200 if outcome == ledger.ACK else 0, outcome, node)


def test_election_report_times_the_new_leader_and_counts_minority_commits() -> None:
    fault = {"id": "f1", "at": 10.0, "in_place_at": 10.5, "fault": "partition", "target": "etcd-2"}
    views = [_view(9.0, "etcd-2", 4, 100), _view(11.0, "etcd-2", 4, 100), _view(12.2, "etcd-1", 5, 100),
             _view(14.0, "etcd-1", 5, 100)]
    writes = [_write("a", 10.2, "etcd-2"), _write("b", 11.0, "etcd-2", ledger.UNKNOWN), _write("c", 12.5, "etcd-1")]
    report = drill_etcd.election_report(views, [fault], [{"id": "f1", "reverted_at": 15.0}], writes)
    assert report is not None
    assert (report["new_leader"], report["term_after"], report["election_s"]) == ("etcd-1", 5, 1.7)
    # `a` was acknowledged before the partition's rules were in place: not a minority commit.
    assert report["minority_commits"] == 0 and report["old_leader_revision_advance"] == 0
    assert [s["leader"] for s in report["leaders_seen"]] == ["etcd-2", "etcd-1"]


def test_a_range_end_covers_exactly_a_prefix() -> None:
    assert cluster.prefix_end("labctl/writes/run-") == "labctl/writes/run."


def test_the_cut_off_leaders_reads_count_only_those_it_answered_before_the_heal() -> None:
    def read_back(id_: str, done: float, read_done: float | None, stale: bool | None) -> ledger.Write:
        return ledger.Write(id_, "r", done - 0.01, done, 200, ledger.ACK, "etcd-2", stale=stale,
                            read_node="etcd-1", read_failed=stale is None, read_done=read_done)

    writes = [
        read_back("before-the-cut", 9.5, 9.6, False),
        read_back("timed-out-alone", 12.0, 13.0, None),
        read_back("held-until-the-heal", 15.8, 16.2, False),  # answered once it reached the majority
        read_back("answered-alone", 11.0, 11.1, True),
    ]
    assert drill_etcd._reads_of(writes, "etcd-1", 10.0, 16.0) == {"reads": 1, "stale": 1, "failed": 1}
    line = ('{"id": "x", "run": "r", "sent": 1.0, "done": 1.1, "status": 200, "outcome": "ack", '
            '"stale": false, "read_status": 200, "read_node": "etcd-1", "read_done": 1.5}')
    assert ledger.parse_line(line).read_done == 1.5
