"""The galera block without Docker: validation, what reaches the configs, the state-transfer
method read from a joiner's log, and the cut-off node's probe counts."""

from __future__ import annotations

from pathlib import Path

from labctl.galera import cluster, conflict, drill_galera
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
  publish: {mysql: 13191}
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
    restarted = JOINER_LOG + "2026-12-02 23:10:00 0 [Note] Starting MariaDB 11.8.9-MariaDB as process 1\n"
    assert drill_galera.transfer_method(restarted) == "none"


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


def test_an_arbitrator_is_a_service_of_the_block_with_its_own_config_and_no_port() -> None:
    lab = load_lab("db-galera", parse_overrides(["galera.nodes=2", "galera.arbitrator=true"]))
    block = lab.blocks["galera"]
    assert block.instances() == ["galera-1", "galera-2"]
    assert block.spec.services(block) == ["galera-1", "galera-2", "galera-arbitrator"]
    files = render_files(lab, IMAGES)
    garbd = files["galera/garbd.cfg"]
    assert "address = gcomm://galera-1,galera-2" in garbd and "group = labctl-db-galera-galera" in garbd
    assert "options = evs.suspect_timeout=PT5S;evs.inactive_timeout=PT15S" in garbd
    service = files["compose.yaml"].split("  galera-arbitrator:\n")[1].split("\n  dblb:")[0]
    assert 'entrypoint: ["garbd", "--cfg", "/etc/labctl/garbd.cfg"]' in service
    assert "ports:" not in service and "io.labctl.endpoints" not in service
    assert "galera-arbitrator" not in files["dblb/haproxy.cfg"]
    assert "galera/garbd.cfg" not in render_files(load_lab("db-galera"), IMAGES)


def test_up_waits_for_the_arbitrator_in_the_cluster_size_and_status_counts_it() -> None:
    lab = load_lab("db-galera", parse_overrides(["galera.nodes=2", "galera.arbitrator=true"]))
    block = lab.blocks["galera"]
    synced = {"wsrep_local_state": "4", "wsrep_cluster_status": "Primary", "wsrep_ready": "ON",
              "wsrep_cluster_conf_id": "7"}
    without = [NodeView(f"galera-{i}", i, True, {**synced, "wsrep_cluster_size": "2"}) for i in (1, 2)]
    counted = [NodeView(f"galera-{i}", i, True, {**synced, "wsrep_cluster_size": "3"}) for i in (1, 2)]
    # Mid-change, the two can be in different views: not one component yet.
    apart = [counted[0], NodeView("galera-2", 2, True, {**counted[1].wsrep, "wsrep_cluster_conf_id": "8"})]
    assert cluster.members(block) == 3
    assert not whole(without, 2, cluster.members(block)) and whole(counted, 2, cluster.members(block))
    assert not whole(apart, 2, cluster.members(block))
    assert cluster.arbitrator_row(block, counted)["wsrep_cluster_size"] == "3"
    assert cluster.arbitrator_row(block, without)["error"] == "garbd is not counted in any Primary component"


def _sample(at: float, status: str, write_ok: bool, size: int = 2) -> dict[str, object]:
    return {"at": at, "done": at + 0.05, "reachable": True, "status": status, "size": size,
            "write": {"ok": write_ok}, "read": {"ok": write_ok}}


def test_the_survivors_of_a_kill_are_counted_while_the_fault_lasts() -> None:
    probe = drill_galera.NodeProbe.__new__(drill_galera.NodeProbe)
    probe.node = type("N", (), {"name": "galera-2"})()
    probe.samples = [_sample(9.0, "Primary", True), _sample(10.5, "non-Primary", False, 1),
                     _sample(12.0, "non-Primary", False, 1), _sample(21.0, "non-Primary", False, 1),
                     _sample(23.0, "Primary", True)]
    cut = {"fault": "kill", "target": "galera-1", "in_place_at": 10.0, "reverted_at": 20.0}
    report = drill_galera.probe_report([probe], cut)
    assert report["survivor_writes"] == 0 and report["survivor_writes_after_s"] is None
    assert report["survivors"]["galera-2"]["last"] == {"status": "non-Primary", "size": 1}
    assert report["survivors_writable_again_s"] == 3.05
    rows = {name: value for name, value, _ in drill_galera.report_rows({"galera": report})}
    assert rows["survivor galera-2"] == "0 writes accepted, 2 refused; last seen non-Primary, size 1"
    assert rows["survivors' write error window"] == "no write accepted while the fault lasted"
    assert rows["writable again"] == "3.05 s"


def test_the_drill_table_says_whether_the_lab_tuned_evs_suspect_timeout() -> None:
    tuned = load_lab("db-galera", parse_overrides(["galera.suspect_timeout=2s"])).blocks["galera"]
    rows = drill_galera.report_rows({"galera": drill_galera.detection_setting(tuned)})
    assert rows[0][:2] == ("evs.suspect_timeout", "2 s (tuned by this lab; Galera's default is 5 s)")
    default = drill_galera.detection_setting(load_lab("db-galera").blocks["galera"])
    assert default == {"suspect_timeout_s": 5.0, "suspect_timeout_default": True}


def test_a_write_conflict_report_counts_the_refused_share_and_checks_the_sum() -> None:
    tallies = [conflict.ClientTally("galera-1", commits=75, deadlocks=20, deadlocks_at_commit=5, other_errors=5),
               conflict.ClientTally("galera-2", commits=50, deadlocks=50)]
    counters = {"galera-1": {"wsrep_local_cert_failures": 10, "wsrep_local_bf_aborts": 40},
                "galera-2": {"wsrep_local_cert_failures": 30, "wsrep_local_bf_aborts": 60}}
    zero = {n: {"wsrep_local_cert_failures": 0, "wsrep_local_bf_aborts": 0} for n in counters}
    rows = {n: {"rows": 4, "sum": 250, "checksum": 99} for n in counters}
    report = conflict.conflict_report(tallies, zero, counters, rows, 4, 10.0)
    assert report["refused_share"] == 0.375 and report["deadlocks"] == 70 and report["attempts"] == 200
    assert report["expected_sum"] == 250 and report["lost_updates"] == 0 and report["nodes_agree"]
    assert report["clients"][1]["refused_share"] == 0.5
    table = {name: value for name, value, _ in conflict.conflict_rows(report)}
    assert table["client on galera-1"] == ("75 commits, 20 deadlocks (1213; 5 at COMMIT), 5 other errors: "
                                           "25.0% refused")
    assert table["cert failures/BF aborts"] == "galera-1 +10/+40, galera-2 +30/+60"
    diverged = conflict.conflict_report(tallies, zero, counters, {**rows, "galera-2": {**rows["galera-2"],
                                        "sum": 248, "checksum": 7}}, 4, 10.0)
    assert not diverged["nodes_agree"] and diverged["lost_updates"] == 2
