"""The lost-write ledger: reading recorded ledger files, classifying them against the ids
on the final primary, and the outcome each HTTP answer maps to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.experiments import ledger
from labctl.experiments.ledger import ACK, FAILED, UNKNOWN, LedgerError, Write

DATA = Path(__file__).parent / "ledger"
RUN = "20261125-060000-drill"


def known_lost() -> tuple[list[Write], set[str]]:
    folder = DATA / "known-lost"
    present = set((folder / "present.txt").read_text().split())
    return ledger.read_ledger(folder), present


def ids(*suffixes: str) -> list[str]:
    return sorted(f"{RUN}-{s}" for s in suffixes)


def test_reads_every_process_file_and_skips_a_last_line_cut_short() -> None:
    writes, _ = known_lost()
    assert len(writes) == 12
    assert [w.sent for w in writes] == sorted(w.sent for w in writes)
    assert {w.id for w in writes} == set(ids(*(f"p101-{i}" for i in range(1, 8)), *(f"p102-{i}" for i in range(1, 6))))


def test_known_lost_write_case() -> None:
    writes, present = known_lost()
    result = ledger.classify(writes, present)
    assert result.lost == ids("p101-3", "p102-2")
    assert result.recovered == ids("p101-4")
    assert result.unexpected == ids("p103-1")  # the earlier run's row is not counted
    assert result.failed_present == []
    assert (result.count(ACK), result.count(FAILED), result.count(UNKNOWN)) == (8, 2, 2)


def test_report_has_the_drill_json_shape() -> None:
    writes, present = known_lost()
    report = ledger.report(writes, present, fault_at=1000.0)
    assert report["writes"] == {"attempted": 12, "acknowledged": 8, "failed": 2, "unknown": 2, "lost": 2,
                                "recovered": 1, "unexpected": 1, "failed_present": 0}
    assert report["ids"]["lost"] == ids("p101-3", "p102-2")
    assert report["rpo_writes"] == 2
    assert report["rpo"] == {"writes": 2, "span_s": 0.05, "first_ack": 999.91, "last_ack": 999.96}
    assert report["rto_s"] == 6.1
    assert report["write_error_window"] == {"start": 999.98, "end": 1009.98, "duration_s": 10.0, "writes": 4}
    assert report["stale_reads"] == {"reads": 6, "stale": 1, "failed": 1, "by_node": {}}  # p102-4: a 503
    assert report["id_prefixes"] == [f"{RUN}-"]
    json.dumps(report)  # drill.json must be able to hold it


def test_rto_can_require_the_ack_to_come_from_another_node() -> None:
    writes, _ = known_lost()
    assert ledger.rto(writes, 1000.0) == 6.1  # p102-4, acknowledged by the old primary db1
    assert ledger.rto(writes, 1000.0, old_node="db1") == 6.25
    assert ledger.rto(writes, 2000.0) is None


def test_nothing_lost_when_every_ack_is_present() -> None:
    writes, present = known_lost()
    everything = present | {w.id for w in writes if w.outcome == ACK}
    report = ledger.report(writes, everything)
    assert (report["writes"]["lost"], report["rpo_writes"], report["rto_s"]) == (0, 0, None)
    assert report["rpo"]["span_s"] == 0.0


def recorded_failover() -> tuple[list[Write], set[str], dict[str, float]]:
    # Recorded on real MySQL 9.7 by record-async-failover.sh: async replication, the
    # replica's IO thread stopped under write load, the primary killed 2 s later, the replica
    # promoted and the writer endpoint moved to it; present.txt is read from the new primary.
    folder = DATA / "mysql-async-failover"
    events = json.loads((folder / "events.json").read_text())
    return ledger.read_ledger(folder), set((folder / "present.txt").read_text().split()), events


def test_recorded_failover_loses_exactly_the_unreplicated_acks() -> None:
    writes, present, events = recorded_failover()
    stopped, fault = events["replica_io_stopped_at"], events["primary_kill_sent_at"]
    result = ledger.classify(writes, present)
    acks = [w for w in writes if w.outcome == ACK]
    assert all(w.id not in result.lost for w in acks if w.done < stopped)
    assert all(w.id in result.lost for w in acks if w.sent > stopped and w.node == "mysql-1")
    assert all(w.id not in result.lost for w in acks if w.node == "mysql-2")
    assert {w.node for w in acks if w.sent > events["writer_switched_at"]} == {"mysql-2"}
    report = ledger.report(writes, present, fault_at=fault, old_node="mysql-1")
    assert report["writes"] == {"attempted": 923, "acknowledged": 875, "failed": 48, "unknown": 0, "lost": 371,
                                "recovered": 0, "unexpected": 0, "failed_present": 0}
    assert (report["rpo_writes"], report["rpo"]["span_s"], report["rto_s"]) == (371, 1.957, 1.413)
    assert report["write_error_window"]["duration_s"] == 1.275
    assert report["stale_reads"] == {"reads": 875, "stale": 490, "failed": 0,
                                     "by_node": {"mysql-2": {"reads": 875, "stale": 490, "failed": 0}}}
    assert len(report["ids"]["lost"]) == ledger.MAX_LISTED_IDS
    assert ledger.describe(report) == [
        "writes: 875 acknowledged, 48 failed, 0 unknown (of 923)",
        "checked against the final primary: 371 lost, 0 recovered, 0 unexpected",
        "RPO: 371 acknowledged writes lost, acknowledged within 1.957 s",
        "RTO: 1.413 s from the fault to the first acknowledged write sent after it",
        "write errors: 48 over 1.275 s",
        "write latency before the fault: p50 11.2 ms, p99 258.6 ms (598 acknowledged)",
        "stale reads: 490 of 875 read-backs after an ack",
    ]


def test_describe_rto_and_a_lying_outcome() -> None:
    writes, present = known_lost()
    lines = ledger.describe(ledger.report(writes, present, fault_at=1000.0))
    assert "RTO: 6.100 s from the fault to the first acknowledged write sent after it" in lines
    assert "RTO: no fault time given" in ledger.describe(ledger.report(writes, present))
    told_failed = {w.id for w in writes if w.outcome == FAILED}
    lines = ledger.describe(ledger.report(writes, present | told_failed))
    assert "warning: 2 writes reported failed are present: an outcome was wrong" in lines


def write(seq: int, outcome: str, sent: float = 1.0) -> Write:
    return Write(id=ledger.write_id(RUN, 7, seq), run=RUN, sent=sent, done=sent + 0.01, status=0, outcome=outcome)


def test_recovered_unexpected_and_failed_present() -> None:
    writes = [write(1, UNKNOWN), write(2, UNKNOWN), write(3, FAILED), write(4, ACK)]
    present = {writes[0].id, writes[2].id, writes[3].id, ledger.write_id(RUN, 8, 1), "other-run-p1-1"}
    result = ledger.classify(writes, present)
    assert result.recovered == [writes[0].id]
    assert result.unexpected == [ledger.write_id(RUN, 8, 1)]
    assert result.failed_present == [writes[2].id]  # told "failed", yet committed: an outcome that lied
    assert result.lost == []


def test_no_bad_writes_means_no_error_window() -> None:
    assert ledger.error_window([write(1, ACK), write(2, ACK, 2.0)]) is None


def test_steady_write_latency_counts_only_acks_answered_before_the_fault() -> None:
    fast = [Write(id=ledger.write_id(RUN, 7, i), run=RUN, sent=float(i), done=i + 0.002 * (i + 1), status=200,
                  outcome=ACK) for i in range(100)]
    slow_after = Write(id="late", run=RUN, sent=100.0, done=103.0, status=200, outcome=ACK)
    refused = Write(id="refused", run=RUN, sent=5.0, done=9.0, status=0, outcome=FAILED)
    steady = ledger.steady_latency([*fast, slow_after, refused], fault_at=100.0)
    assert steady == {"writes": 100, "p50": 100.0, "p99": 198.0}  # 2 ms .. 200 ms, nearest rank
    assert ledger.steady_latency([*fast, slow_after], fault_at=None)["p99"] == 200.0
    assert ledger.steady_latency([refused], fault_at=None) == {"writes": 0, "p50": None, "p99": None}


def test_empty_ledger_classifies_nothing_as_unexpected() -> None:
    assert ledger.classify([], {"anything"}).unexpected == []


@pytest.mark.parametrize(("status", "app_outcome", "refused", "expected"), [
    (200, "ack", False, ACK),
    (200, None, False, ACK),
    (0, None, True, FAILED),          # connection to the app refused: nothing sent
    (0, None, False, UNKNOWN),        # timeout or dropped connection: it may have landed
    (503, "failed", False, FAILED),   # the app could not reach the database
    (504, "unknown", False, UNKNOWN),  # COMMIT sent, no answer
    (500, "failed", False, FAILED),   # the app's chaos fail switch, before any DB work
    (409, "duplicate", False, UNKNOWN),  # the id is there, but not necessarily by this write
    (400, "failed", False, FAILED),
    (405, None, False, FAILED),
    (502, None, False, UNKNOWN),      # a proxy's error: it may have forwarded the request
    (503, None, False, UNKNOWN),
])
def test_write_outcome(status: int, app_outcome: str | None, refused: bool, expected: str) -> None:
    assert ledger.write_outcome(status, app_outcome, refused) == expected


def test_write_ids_are_unique_and_fit_the_column() -> None:
    long_run = "x" * 80 + "/odd run"
    made = {ledger.write_id(long_run, 4194304, n) for n in range(1000)}
    assert len(made) == 1000
    assert all(len(i) <= 64 and i.startswith(ledger.run_prefix(long_run)) for i in made)
    assert ledger.write_id(long_run, 4194304, 99_999_999).startswith(ledger.run_prefix(long_run))
    assert len(ledger.write_id(long_run, 4194304, 99_999_999)) <= 64


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ledger-1.jsonl").write_text('{"id": "a", "run": "r", "sent": 1, "done": 2, "status": 200, '
                                             '"outcome": "maybe"}\n{"id": "b"}\n')
    with pytest.raises(LedgerError, match=r"ledger-1.jsonl:1: bad ledger line \(unknown outcome 'maybe'\)"):
        ledger.read_ledger(tmp_path)


def test_missing_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no write ledger"):
        ledger.read_ledger(tmp_path)


def test_a_load_measures_its_rto_from_the_first_db_node_chaos_stopped_during_it() -> None:
    from labctl.db.load_db import first_stopping_fault

    def inject(at: float, fault: str, target: str) -> dict[str, object]:
        return {"event": "inject", "at": at, "fault": fault, "target": target}

    journal = [inject(90.0, "kill", "db-1"),  # before the load
               inject(105.0, "latency", "db-1"), inject(106.0, "kill", "app-1"),  # not a stopped db node
               {"event": "revert", "at": 104.0, "fault": "kill", "target": "db-2"},
               inject(108.0, "pause", "db-2"), inject(107.0, "kill", "db-1"),
               inject(130.0, "stop", "db-3")]  # after the load
    nodes = {"db-1", "db-2", "db-3"}
    assert first_stopping_fault(journal, nodes, 100.0, 120.0) == inject(107.0, "kill", "db-1")
    assert first_stopping_fault(journal, nodes, 109.0, 120.0) is None


def test_drill_markdown_lists_the_writes() -> None:
    from labctl.experiments.drill_report import _markdown

    writes, present = known_lost()
    report = {"drill": "kill-primary", "lab": "db-failover", "title": "t", "requests": 1, "failures": 0,
              "error_window_s": 0.0, "recovery_s": 0.0, "faults": [], "expectations": [],
              "failover": {"mode": "auto", "detection_s": 0.5, "promotion_s": 0.7, "reroute_s": 0.2},
              **ledger.report(writes, present, fault_at=1000.0)}
    markdown = _markdown(report)
    assert "- checked against the final primary: 2 lost, 1 recovered, 1 unexpected" in markdown
    assert "- failover (auto): detection 0.5 s, promotion 0.7 s, re-route 0.2 s" in markdown
    assert "- lost ids (first 2): " in markdown
