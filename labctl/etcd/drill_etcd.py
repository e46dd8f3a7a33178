"""What a drill on an etcd lab adds: a watch on who leads, the election time, what the old
leader committed while cut off, and every write of the ledger read back from the cluster."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from labctl.etcd.cluster import ClusterView, Progress, cluster_view, present_ids
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.model.lab import Block, Lab

WATCH_INTERVAL_S = 0.1
# Faults that take a member out of the majority: the first one's target is the old leader.
CUTTING = ("kill", "stop", "pause", "partition")


class LeaderWatch(threading.Thread):
    """Asks every member who leads, every WATCH_INTERVAL_S, until stopped."""

    def __init__(self, lab: Lab, block: Block) -> None:
        super().__init__(name="labctl-etcd-watch", daemon=True)
        self.lab, self.block = lab, block
        self.stopping = threading.Event()
        self.views: list[ClusterView] = []

    def run(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL_S):
            self.views.append(cluster_view(self.lab, self.block))

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=10)


class EtcdDrill:
    """The etcd part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.watch = LeaderWatch(lab, block)
        self.applied: list[dict[str, Any]] = []

    def subscribe(self, events: DrillEvents) -> None:
        """Watch the leader while the load runs; once healed, read the writes back."""
        events.drill_started.add_listener(self.watch.start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self.watch.stop)
        events.healed.add_listener(self._on_healed)

    def _on_fault(self, fault: dict[str, Any]) -> None:
        # `at` is when the fault was asked for; the rules of a partition are in place only now.
        self.applied.append({**fault, "in_place_at": time.time()})

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        self.progress("reading every write back from the cluster")
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        results.update(writes_report(self.lab, self.block, run_dir, ours))
        results["election"] = election_report(self.watch.views, ours, faults, _ledger_or_empty(run_dir))


def _ledger_or_empty(run_dir: Path) -> list[ledger.Write]:
    return ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []


def writes_report(lab: Lab, block: Block, run_dir: Path, faults: list[dict[str, Any]]) -> dict[str, Any]:
    """The ledger checked against the keys the cluster holds (read with a linearizable range)."""
    writes = _ledger_or_empty(run_dir)
    if not writes:
        return {}
    first = min(faults, key=lambda f: float(f["at"]), default=None)
    found = present_ids(block, ledger.prefixes(writes))
    # RTO counts from when the fault was in place (a partition's rules take most of a second).
    return ledger.report(writes, found, float(first["in_place_at"]) if first else None,
                         str(first["target"]) if first else None)


def election_report(views: list[ClusterView], faults: list[dict[str, Any]], all_faults: list[dict[str, Any]],
                    writes: list[ledger.Write]) -> dict[str, Any] | None:
    """Who led before the first fault, who after and how soon, and what the old leader
    acknowledged and applied while it was cut off."""
    if not faults:
        return None
    first = min(faults, key=lambda f: float(f["at"]))
    old, at = str(first["target"]), float(first["in_place_at"])
    before = [v for v in views if v.at < at and v.leader]
    term_before = before[-1].term if before else 0
    elected = next((v for v in views if v.at >= at and v.leader and v.leader != old and v.term > term_before), None)
    healed_at = _reverted_at(all_faults, first)
    # Cut off, the old leader keeps the term it led in (pre-vote stops it from raising it); it
    # learns the new term as soon as it hears from the majority again.
    cut = [v for v in views if at <= v.at <= healed_at and (m := v.member(old)) is not None
           and m.reachable and m.term <= term_before]
    cut_until = cut[-1].at if cut else healed_at
    return {
        "old_leader": old, "term_before": term_before,
        "new_leader": elected.leader if elected else None, "term_after": elected.term if elected else None,
        "election_s": round(elected.at - at, 3) if elected else None,
        "watch_interval_s": WATCH_INTERVAL_S,
        "minority_commits": _minority_acks(writes, old, at, cut_until)
        if first["fault"] == "partition" else None,
        "old_leader_revision_advance": _revision_advance(cut, old) if first["fault"] == "partition" else None,
        "old_leader_reads": _reads_of(writes, old, at, healed_at) if first["fault"] == "partition" else None,
        "leaders_seen": _leaders_seen(views),
    }


def _reverted_at(faults: list[dict[str, Any]], fault: dict[str, Any]) -> float:
    match = next((f for f in faults if f.get("id") == fault.get("id")), None)
    reverted = match.get("reverted_at") if match else None
    return float(reverted) if reverted is not None else float("inf")


def _minority_acks(writes: list[ledger.Write], old: str, start: float, end: float) -> int:
    # A write acknowledged by the old leader that was sent and answered while it was cut off.
    return sum(1 for w in writes if w.outcome == ledger.ACK and w.node == old and w.sent >= start and w.done <= end)


def _reads_of(writes: list[ledger.Write], member: str, start: float, end: float) -> dict[str, int]:
    # Read-backs asked of one member after `start` (a read-back follows its write's ack) and
    # answered before `end`: a linearizable read held by a cut-off leader is answered only once
    # the heal lets it reach the majority again, and that answer is not one it gave alone.
    def within(write: ledger.Write) -> bool:
        answered = write.read_done if write.read_done is not None else write.done
        return write.read_node == member and start <= write.done and answered <= end

    counts = ledger.stale_reads([w for w in writes if within(w)])
    return {key: counts[key] for key in ("reads", "stale", "failed")}


def _revision_advance(views: list[ClusterView], old: str) -> int | None:
    revisions = [m.revision for v in views if (m := v.member(old)) is not None and m.reachable]
    return max(revisions) - min(revisions) if revisions else None


def _leaders_seen(views: list[ClusterView]) -> list[dict[str, Any]]:
    """Each change of leader (or of term) the watch saw, in order."""
    seen: list[dict[str, Any]] = []
    for view in views:
        if not seen or (seen[-1]["leader"], seen[-1]["term"]) != (view.leader, view.term):
            seen.append({"at": round(view.at, 3), "leader": view.leader, "term": view.term})
    return seen


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for the election and, in a partition, what the old leader did."""
    election = report.get("election")
    if not election:
        return []
    took = "no new leader seen" if election["election_s"] is None else f"{election['election_s']} s"
    rows = [("election", f"{election['old_leader']} (term {election['term_before']}) -> {election['new_leader']} "
             f"(term {election['term_after']}) in {took}", "fault in place until another member led at a "
             "higher term")]
    if election.get("minority_commits") is not None:
        rows.append(("cut-off leader", f"{election['minority_commits']} writes acknowledged, applied revision "
                     f"moved {election['old_leader_revision_advance']}", "while it was alone in its minority"))
    reads = election.get("old_leader_reads")
    if reads and (reads["reads"] or reads["failed"]):
        rows.append(("cut-off leader's reads", f"{reads['reads']} answered, {reads['stale']} stale, "
                     f"{reads['failed']} unanswered", "read-backs asked of it until the heal"))
    return rows
