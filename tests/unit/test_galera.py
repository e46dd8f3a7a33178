"""The galera block without Docker: validation, what reaches the configs, the state-transfer
method read from a joiner's log, and the cut-off node's probe counts."""

from __future__ import annotations

from pathlib import Path

from labctl.galera import drill_galera
from labctl.galera.cluster import NodeView, whole, writer_of
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.render import render_files
from tests.unit.test_lab_validation import labs_root, problems_of, write_lab  # noqa: F401

IMAGES = {"app": "labctl/app:local", "haproxy": "labctl/haproxy:local", "mariadb": "labctl/mariadb:local"}
BAD = """\
title: t
summary: s
galera:
  kind: galera
  nodes: 9
  sst: xtrabackup
  suspect_timeout: 500ms
  publish: {mysql: 33191}
app:
  kind: app
  database: nowhere
"""


def test_galera_block_problems_are_reported_at_once(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "g", BAD)
    assert problems_of("g") == [
        "g/lab.yaml:5 galera.nodes: expected an integer from 2 to 5, got 9",
        "g/lab.yaml:6 galera.sst: expected one of rsync, mariabackup, got 'xtrabackup'",
        "g/lab.yaml:11 app.database: expected the name of a db block (none), got 'nowhere'",
    ]


def test_a_suspect_timeout_under_a_second_is_refused(labs_root: Path) -> None:  # noqa: F811
    write_lab(labs_root, "g", BAD.replace("  nodes: 9\n  sst: xtrabackup\n", ""))
    assert problems_of("g") == [
        "g/lab.yaml:5 galera.suspect_timeout: expected at least 1s (Galera checks its peers every second)",
        "g/lab.yaml:9 app.database: expected the name of a db block (galera), got 'nowhere'",
    ]


def test_only_the_first_node_bootstraps_and_haproxy_writes_to_one_node() -> None:
    lab = load_lab("db-galera", parse_overrides(["galera.suspect_timeout=1500ms", "galera.nodes=4"]))
    files = render_files(lab, IMAGES)
    compose = files["compose.yaml"]
    assert compose.count('LABCTL_GALERA_BOOTSTRAP: "1"') == 1
    assert "wsrep_cluster_address = gcomm://galera-1,galera-2,galera-3,galera-4" in files["galera/galera-4.cnf"]
    assert "evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT15S" in files["galera/galera-2.cnf"]
    router = files["dblb/haproxy.cfg"]
    assert "uri /synced" in router
    assert "server galera-1 galera-1:3306 on-marked-up shutdown-backup-sessions" in router
    assert router.count("galera-4:3306 backup") == 1


def test_the_writer_is_the_first_synced_node() -> None:
    synced = {"wsrep_local_state": "4", "wsrep_cluster_status": "Primary", "wsrep_ready": "ON",
              "wsrep_cluster_size": "2"}
    views = [NodeView("galera-1", 1, True, {**synced, "wsrep_cluster_status": "non-Primary"}),
             NodeView("galera-2", 2, True, synced), NodeView("galera-3", 3, True, synced)]
    assert writer_of(views) == "galera-2"
    assert not whole(views, 3) and whole(views[1:], 2)


JOINER_LOG = """\
2026-12-02 23:03:10 2 [Note] WSREP: Prepared IST receiver for 0-2617, listening at: tcp://172.20.0.3:4568
2026-12-02 23:03:54 2 [Note] WSREP: Prepared IST receiver for 3276-3277, listening at: tcp://172.20.0.4:4568
"""


def test_the_state_transfer_method_comes_from_the_joiners_last_ist_receiver() -> None:
    assert drill_galera.transfer_method(JOINER_LOG) == "IST (2 writesets)"
    assert drill_galera.transfer_method(JOINER_LOG.splitlines()[0]) == "SST"
    assert drill_galera.transfer_method("no transfer here") == "none"


def test_the_cut_off_nodes_accepted_writes_are_counted_in_its_window() -> None:
    probe = drill_galera.NodeProbe.__new__(drill_galera.NodeProbe)
    probe.node = type("N", (), {"name": "galera-1"})()
    refused = {"ok": False, "errno": 1047, "error": "WSREP has not yet prepared node for application use"}
    probe.samples = [
        {"node": "galera-1", "at": 9.0, "done": 9.1, "reachable": True, "status": "Primary", "write": {"ok": True},
         "read": {"ok": True}},
        {"node": "galera-1", "at": 10.5, "done": 13.5, "reachable": True, "status": "Primary", "write": refused,
         "read": refused},
        {"node": "galera-1", "at": 16.0, "done": 16.1, "reachable": True, "status": "non-Primary",
         "write": refused, "read": refused},
        {"node": "galera-1", "at": 17.0, "done": 17.1, "reachable": True, "status": "non-Primary",
         "write": {"ok": True}, "read": refused},
    ]
    cut = {"fault": "partition", "target": "galera-1", "in_place_at": 10.0, "reverted_at": 20.0}
    report = drill_galera.probe_report([probe], cut)
    assert report["non_primary_writes"] == 1
    assert report["cut_off_window"]["writes"] == {"ok": 1, "refused": 2}
    assert report["cut_off_window"]["components"] == {"Primary": 1, "non-Primary": 2}
    assert report["non_primary_after_s"] == 6.0
    rows = dict((name, value) for name, value, _ in drill_galera.report_rows({"galera": report}))
    assert rows["cut-off node"] == "galera-1: 1 writes accepted, 2 refused; 0 reads answered, 3 refused"
