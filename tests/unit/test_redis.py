"""The Redis Cluster block without Docker: validation, ports, rendering, CLUSTER NODES parsing,
targets asked of the cluster, the failover report and the RESP client's pieces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.experiments import targets
from labctl.model.lab import load_lab
from labctl.redis import cluster, drill_redis, resp
from labctl.redis.cluster import ClusterView, NodeState, Peer
from labctl.render import render_files
from labctl.runtime.inventory import ServiceState
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

NODES = """\
aaa 172.22.0.4:16371@46371,127.0.0.1 myself,master - 0 0 1 connected 0-5460 [5461->-bbb]
bbb 172.22.0.2:16372@46372,127.0.0.1 master - 0 1796318702157 2 connected 5461-10922
ccc 172.22.0.6:16373@46373,127.0.0.1 master - 0 1796318702286 3 connected 10923-16383
ddd 172.22.0.5:16374@46374,127.0.0.1 slave ccc 0 1796318702157 3 connected
eee 172.22.0.3:16375@46375,127.0.0.1 slave aaa 0 1796318702378 1 connected
fff 172.22.0.7:16376@46376,127.0.0.1 slave bbb 0 1796318702054 2 connected
"""


def test_redis_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "r", "title: t\nsummary: s\nredis:\n  kind: redis\n  masters: 2\n  node_timeout: soon\n"
              "  publish: {bus: 1}\n")
    assert problems_of("r") == [
        "r/lab.yaml:5 redis.masters: expected an integer from 3 to 5, got 2",
        "r/lab.yaml:6 redis.node_timeout: expected a duration like 200ms, 5s or 1m, got 'soon'",
        "r/lab.yaml:7 redis.publish.bus: unknown key 'bus' (known keys: client)",
        "r/lab.yaml:7 redis.publish: missing required key 'client'",
    ]


@pytest.mark.parametrize(("fields", "problem"), [
    ("node_timeout: 500ms", "redis.node_timeout: expected at least 1s: shorter, a busy machine fails over "
     "masters that only answered a ping late"),
    ("replicas: 0, wait_replicas: 1", "redis.wait_replicas: expected at most `replicas`: WAIT could never be "
     "answered by more replicas than a master has"),
])
def test_timeouts_and_wait_are_checked(labs_root: Path, fields: str, problem: str) -> None:  # noqa: F811
    write_lab(labs_root, "t", f"title: t\nsummary: s\nredis: {{kind: redis, {fields}, publish: {{client: 9000}}}}\n")
    assert problems_of("t") == [f"t/lab.yaml:3 {problem}"]


def test_the_lab_renders_six_nodes_announcing_the_host_address() -> None:
    lab = load_lab("kv-redis-cluster")
    block = lab.blocks["redis"]
    assert block.node_count == 6 and block.host_ports("client") == list(range(16371, 16377))
    assert lab.endpoint_urls()["http"] == "redis://127.0.0.1:16371"
    compose = render_files(lab, {"redis": "labctl/redis:local"})["compose.yaml"]
    assert '"127.0.0.1:16376:16376"' in compose and "--cluster-announce-hostname" in compose
    assert '- "2000"' in compose  # the lab's node timeout, in ms


def test_cluster_nodes_are_parsed_with_ranges_and_migrating_slots_left_out() -> None:
    peers = cluster.parse_nodes(NODES)
    assert [(p.port, p.is_master, p.slots) for p in peers[:3]] == [(16371, True, 5461), (16372, True, 5462),
                                                                   (16373, True, 5461)]
    assert peers[0].serves(0) and not peers[0].serves(5461) and peers[4].master_id == "aaa"


def _view(at: float, nodes: str = NODES) -> ClusterView:
    peers = cluster.parse_nodes(nodes)
    states = [NodeState(f"redis-{i}", 16370 + i, True, "ok", 16384, 6, 3, peers) for i in range(1, 7)]
    names = {p.node_id: f"redis-{p.port - 16370}" for p in peers}
    return ClusterView(at, states, names)


def _states() -> list[ServiceState]:
    return [ServiceState(f"redis-{i}", "redis", "redis", f"labctl-kv-redis-cluster-redis-{i}", "running",
                         "healthy", {}, "Up") for i in range(1, 7)]


def test_master_targets_are_whoever_the_cluster_says_now(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = load_lab("kv-redis-cluster")
    monkeypatch.setattr(cluster, "cluster_view", lambda block: _view(0.0))
    assert [s.name for s in targets.resolve(lab, "redis.master", _states())] == ["redis-1"]
    assert [s.name for s in targets.resolve(lab, "redis.replicas", _states())] == ["redis-4", "redis-5", "redis-6"]
    monkeypatch.setattr(cluster, "cluster_view", lambda block: ClusterView(0.0, [], {}))
    with pytest.raises(UsageError, match="has no redis master right now"):
        targets.resolve(lab, "redis.master", _states())


def test_failover_report_times_failure_promotion_and_ok() -> None:
    failed = NODES.replace("myself,master - 0 0 1 connected 0-5460 [5461->-bbb]", "master,fail - 0 0 1 connected")
    promoted = failed.replace("slave aaa 0 1796318702378 1 connected", "master - 0 1 4 connected 0-5460")
    fault = {"at": 10.0, "in_place_at": 10.2, "fault": "kill", "target": "redis-1"}
    report = drill_redis.failover_report([_view(9.0), _view(12.0, failed), _view(13.1, promoted)], [fault])
    assert report is not None
    assert (report["new_master"], report["failed_s"], report["promoted_s"], report["cluster_ok_s"]) == (
        "redis-5", 1.8, 2.9, 2.9)


def test_redirects_are_summed_over_the_ledger(tmp_path: Path) -> None:
    lines = [{"id": "a", "moved": 2, "ask": 1}, {"id": "b", "moved": 1, "ask": 0}]
    (tmp_path / "ledger-1.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"id": "c", "mo')
    assert drill_redis.redirect_counts(tmp_path) == {"moved": 3, "ask": 1, "total": 4}


def test_key_slots_follow_the_cluster_spec() -> None:
    # The spec's examples: CLUSTER KEYSLOT foo is 12182; a {tag} hashes alone, an empty one does not.
    assert resp.key_slot("foo") == 12182
    assert resp.key_slot("{user1000}.following") == resp.key_slot("user1000")
    assert resp.key_slot("foo{}{bar}") == resp.key_slot("foo{}{bar}") != resp.key_slot("bar")


def test_commands_are_encoded_as_resp_arrays_and_redirects_parsed() -> None:
    assert resp.encode(("SET", "k", 1)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"
    redirect = resp.Redirect("ASK 3999 127.0.0.1:16372")
    assert (redirect.code, redirect.slot, redirect.host, redirect.port) == ("ASK", 3999, "127.0.0.1", 16372)


def test_a_peer_counts_slots_over_its_ranges() -> None:
    assert Peer("x", 1, ("master",), "-", "connected", ((0, 9), (20, 20))).slots == 11
