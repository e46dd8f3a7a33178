"""The group kind's pure parts: a member's view (majority, writable), how many of the group's
transactions a GTID set holds, the drill's probe report (election, minority writes), the
conflicting updates' report, and a drill's `up_with:` refused with the `up` to run."""

from __future__ import annotations

from typing import Any

import pytest

from labctl.db.nodes import Node
from labctl.errors import LabctlError
from labctl.experiments.drill import load_drill, refuse_other_shape
from labctl.group import conflict, drill_group
from labctl.group.members import MemberView, group_transactions, needs_rejoin, primary_of
from labctl.kinds.group import group_name
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides
from labctl.running import RunningLab

GROUP = "381c7114-b6aa-5309-835f-376daf2f9ba3"


def _view(name: str, states: list[tuple[str, str, str]], read_only: bool = False) -> MemberView:
    members = [{"id": f"uuid-{host}", "host": host, "state": state, "role": role} for host, state, role in states]
    return MemberView(name, 13201, True, members, f"uuid-{name}", read_only)


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
    probe.node = Node(name, "127.0.0.1", 13201)
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


def _client(node: str, committed: int, certification: int, deadlock: int = 0, other: int = 0) -> dict[str, Any]:
    return {"node": node, "attempted": committed + certification + deadlock + other, "committed": committed,
            "certification": certification, "deadlock": deadlock, "lock_wait": 0, "other": other, "errors": {}}


def test_an_update_is_counted_by_what_the_server_answered() -> None:
    assert [conflict.outcome_of(e) for e in (None, 3101, 1213, 1205, 2013)] == [
        "committed", "certification", "deadlock", "lock_wait", "other"]
    assert conflict.outcome_of(1180, "Got error 149 - 'Lock deadlock; Retry transaction' during COMMIT") == "deadlock"


def test_the_conflict_report_gives_the_refused_share_the_groups_counter_and_agreement() -> None:
    rows = {"rows": 5, "sum": 5 * 150, "crc": 42}
    agreement = {"agree": True, "after_s": 0.5, "members": {"db-1": rows, "db-2": rows, "db-3": dict(rows)}}
    report = conflict.conflict_report([_client("db-1", 80, 15), _client("db-2", 70, 30, deadlock=5)], 5, 15.0,
                                      {"db-1": 10, "db-2": 10, "db-3": None}, {"db-1": 55, "db-2": 55, "db-3": 4},
                                      agreement)
    assert report["totals"]["attempted"] == 200 and report["refused"] == 50 and report["refused_share"] == 0.25
    assert report["conflicts_detected"] == {"db-1": 45, "db-2": 45, "db-3": None}
    assert report["expected_sum"] == 750 and report["lost_updates"] == 0 and report["applied_unacknowledged"] == 0
    shown = {name: value for name, value, _ in conflict.report_rows(report)}
    assert shown["updates via db-2"] == "70 committed, 30 refused by certification, 5 deadlocks, 0 other errors"
    assert shown["refused share"] == "25.0 % of 200 updates (50 refused)"
    assert shown["conflicts detected"] == "db-1 +45, db-2 +45, db-3 +-"
    assert shown["members agree"].startswith("yes, after 0.5 s: 3 members, sum 750")
    assert shown["lost updates"] == "0"


def test_members_that_differ_or_do_not_answer_do_not_agree_and_lost_updates_are_counted() -> None:
    one, other = {"rows": 5, "sum": 740, "crc": 1}, {"rows": 5, "sum": 745, "crc": 2}
    assert not conflict.agreeing({"db-1": one, "db-2": other})
    assert not conflict.agreeing({"db-1": one, "db-2": None}) and conflict.agreeing({"db-1": one, "db-2": dict(one)})
    differing = conflict.conflict_report([_client("db-1", 150, 0)], 5, 1.0, {}, {},
                                         {"agree": False, "after_s": 30.0, "members": {"db-1": one, "db-2": other}})
    assert differing["lost_updates"] is None
    assert dict((n, v) for n, v, _ in conflict.report_rows(differing))["members agree"] == (
        "NO: db-1 sum 740 crc 1, db-2 sum 745 crc 2")
    short = conflict.conflict_report([_client("db-1", 150, 0)], 5, 1.0, {}, {},
                                     {"agree": True, "after_s": 0.1, "members": {"db-1": one, "db-2": dict(one)}})
    assert short["lost_updates"] == 2


def test_a_drill_for_multi_primary_mode_is_refused_on_a_single_primary_group_with_the_up_to_run() -> None:
    drill = load_drill("db-group-replication", "multi-primary-conflict")
    with pytest.raises(LabctlError) as info:
        refuse_other_shape(RunningLab(load_lab("db-group-replication"), {}), drill)
    assert str(info.value) == (
        "drill 'multi-primary-conflict' needs lab 'db-group-replication' up with db.mode=multi-primary (it runs "
        "with db.mode=\"single-primary\"); run 'labctl up db-group-replication --set db.mode=multi-primary' first "
        "('labctl up db-group-replication' goes back to the lab file's values)")
    shaped = load_lab("db-group-replication", parse_overrides(["db.mode=multi-primary"]))
    refuse_other_shape(RunningLab(shaped, {}), drill)


def test_a_healed_member_still_online_in_a_stale_view_is_rejoined_while_the_others_hold_a_majority() -> None:
    majority = [_view(n, [("db-2", "ONLINE", "PRIMARY"), ("db-3", "ONLINE", "SECONDARY")]) for n in ("db-2", "db-3")]
    alone = _view("db-1", [("db-1", "ONLINE", "PRIMARY"), ("db-2", "UNREACHABLE", "SECONDARY"),
                           ("db-3", "UNREACHABLE", "SECONDARY")])
    # Seen on this machine right after a heal: its XCom reaches the others again, but it has
    # not heard it was expelled, so its own view still has all three ONLINE.
    stale = _view("db-1", [("db-1", "ONLINE", "PRIMARY"), ("db-2", "ONLINE", "SECONDARY"),
                           ("db-3", "ONLINE", "SECONDARY")])
    for old in (alone, stale):
        assert needs_rejoin(old, [old, *majority])
        assert not any(needs_rejoin(v, [old, *majority]) for v in majority)
    # Everyone cut off (the partition still in place): nobody is stopped.
    assert not needs_rejoin(alone, [alone])
    whole = [_view(n, [("db-1", "ONLINE", "PRIMARY"), ("db-2", "ONLINE", "SECONDARY"),
                       ("db-3", "ONLINE", "SECONDARY")]) for n in ("db-1", "db-2", "db-3")]
    assert not any(needs_rejoin(v, whole) for v in whole)
    assert needs_rejoin(MemberView("db-1", 1, True, uuid="u"), [])
