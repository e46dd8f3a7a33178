"""The group kind's pure parts: a member's view (majority, writable), how many of the group's
transactions a GTID set holds, and the drill's probe report (election, minority writes)."""

from __future__ import annotations

from typing import Any

from labctl.db.nodes import Node
from labctl.group import drill_group
from labctl.group.members import MemberView, group_transactions, primary_of
from labctl.kinds.group import group_name

GROUP = "381c7114-b6aa-5309-835f-376daf2f9ba3"


def _view(name: str, states: list[tuple[str, str, str]], read_only: bool = False) -> MemberView:
    members = [{"id": f"uuid-{host}", "host": host, "state": state, "role": role} for host, state, role in states]
    return MemberView(name, 33201, True, members, f"uuid-{name}", read_only)


def test_a_primary_alone_in_its_view_is_not_writable() -> None:
    cut_off = _view("db-1", [("db-1", "ONLINE", "PRIMARY"), ("db-2", "UNREACHABLE", "SECONDARY"),
                             ("db-3", "UNREACHABLE", "SECONDARY")])
    assert cut_off.state == "ONLINE" and cut_off.role == "PRIMARY"
    assert not cut_off.in_majority and not cut_off.writable
    majority = _view("db-2", [("db-2", "ONLINE", "PRIMARY"), ("db-3", "ONLINE", "SECONDARY")])
    assert majority.in_majority and majority.writable
    assert primary_of([cut_off, majority]) == "db-2"
    assert not _view("db-2", [("db-2", "ONLINE", "PRIMARY")], read_only=True).writable


def test_a_member_out_of_the_group_is_offline_or_down() -> None:
    assert MemberView("db-1", 1, True, uuid="u").state == "OFFLINE"
    assert MemberView("db-1", 1, False).state == "down"


def test_group_transactions_count_only_the_groups_own_intervals() -> None:
    gtids = f"{GROUP}:1-5:7-9:12,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100"
    assert group_transactions(gtids, GROUP) == 5 + 3 + 1
    assert group_transactions("", GROUP) == 0


def test_the_group_name_is_a_uuid_stable_per_lab_and_block() -> None:
    assert group_name("labctl-a", "db") == group_name("labctl-a", "db") != group_name("labctl-b", "db")
    assert len(group_name("labctl-a", "db").split("-")) == 5


def _probe(name: str, samples: list[dict[str, Any]]) -> drill_group.MemberProbe:
    probe = drill_group.MemberProbe.__new__(drill_group.MemberProbe)
    probe.node = Node(name, "127.0.0.1", 33201)
    probe.samples = samples
    return probe


def test_the_probe_report_times_the_election_and_counts_what_the_cut_off_member_acknowledged() -> None:
    timed_out = {"ok": False, "errno": 3024, "error": "The Read Operation timed out"}
    old = _probe("db-1", [
        {"at": 99.0, "done": 99.1, "state": "ONLINE", "role": "PRIMARY", "majority": True, "writable": True,
         "write": {"ok": True}, "read": {"ok": True}},
        *({"at": 100.0 + i, "done": 102.0 + i, "state": "ONLINE", "role": "PRIMARY", "majority": False,
           "write": timed_out, "read": {"ok": True}} for i in range(3)),
    ])
    new = _probe("db-2", [
        {"at": 103.0, "done": 103.1, "state": "ONLINE", "role": "SECONDARY", "majority": True, "writable": False},
        {"at": 105.5, "done": 105.6, "state": "ONLINE", "role": "PRIMARY", "majority": True, "writable": True,
         "write": {"ok": True}, "read": {"ok": True}},
    ])
    cut = {"fault": "partition", "target": "db-1", "in_place_at": 100.0, "reverted_at": 115.0}
    report = drill_group.probe_report([old, new], cut)
    assert report["election"] == {"new_primary": "db-2", "seconds": 5.5, "measured_from": "the fault in place"}
    assert report["minority_writes"] == 0 and report["cut_off_window"]["writes"] == {"ok": 0, "refused": 3}
    assert report["cut_off_window"]["states"] == {"ONLINE/PRIMARY (minority)": 3}
    rows = dict((name, value) for name, value, _ in drill_group.report_rows({"group": report}))
    assert rows["new primary"] == "db-2 writable 5.5 s after the fault"
    assert rows["cut-off member"].startswith("db-1: 0 writes acknowledged, 3 refused or timed out")


def test_a_kill_reports_the_election_but_no_cut_off_window() -> None:
    new = _probe("db-3", [{"at": 110.0, "done": 110.1, "state": "ONLINE", "role": "PRIMARY", "majority": True,
                           "writable": True}])
    report = drill_group.probe_report([_probe("db-1", []), new], {"fault": "kill", "target": "db-1",
                                                                  "in_place_at": 104.0})
    assert report["election"]["seconds"] == 6.0 and "minority_writes" not in report
