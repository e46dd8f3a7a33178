"""What a drill on a Patroni lab adds: a watch on every node's role and timeline, the
failover's times (who took the lock, how soon, on which timeline), when a cut-off primary
demoted itself, what it acknowledged meanwhile, and every write of the ledger read back from
the final primary."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from labctl.db.nodes import BackgroundWatch
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.model.lab import Block, Lab
from labctl.patroni.cluster import ClusterView, Progress, cluster_view, present_ids, wait_formed
from labctl.patroni.probe import PROBE_PREFIX, PROBE_TIMEOUT_S, NodeProbe, cut_off_writes

WATCH_INTERVAL_S = 0.2
WATCH_TIMEOUT_S = 0.5
# Faults that take a node away: the first one's target is the old primary.
CUTTING = ("kill", "stop", "pause", "partition")
# A killed primary comes back, finds another leader, rewinds its data (pg_rewind) and streams.
REJOIN_TIMEOUT_S = 120.0
PATRONI_DEFAULTS = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}


class RoleWatch(BackgroundWatch):
    """Asks every node's Patroni for its role, every WATCH_INTERVAL_S, until stopped."""

    name = "labctl-patroni-watch"

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block = block
        self.views: list[ClusterView] = []

    def run(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL_S):
            self.views.append(cluster_view(self.block, WATCH_TIMEOUT_S))


class PatroniDrill:
    """The Patroni part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.watch = RoleWatch(block)
        self.applied: list[dict[str, Any]] = []
        self.cut: dict[str, Any] | None = None
        self.run = uuid.uuid4().hex[:12]
        self.probes = [NodeProbe(lab, block, node, self.run) for node in block.instances()]

    def subscribe(self, events: DrillEvents) -> None:
        """Watch the roles while the load runs; once healed, read the writes back."""
        events.drill_started.add_listener(self._start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self._stop)
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)

    def _start(self) -> None:
        self.watch.start()
        for probe in self.probes:
            probe.start()

    def _stop(self) -> None:
        self.watch.stop(timeout=10)
        for probe in self.probes:
            probe.stop(timeout=PROBE_TIMEOUT_S + 5)

    def _on_fault(self, fault: dict[str, Any]) -> None:
        # `at` is when the fault was asked for; a partition's rules are in place only now.
        self.applied.append({**fault, "in_place_at": time.time()})

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        first = self._first_cut(faults)
        self.progress("reading every write back from the primary")
        # The RTO counts from a fault on a node; the store's loss leaves the write error window.
        results.update(writes_report(self.lab, self.block, run_dir, first if self._on_node(first) else None))
        writes = ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []
        old = _old_primary(self.watch.views, first, self.block)
        report = failover_report(self.watch.views, first, old, faults, writes)
        results["patroni"] = {**report, **settings(self.block)}
        if first is not None and old:
            present = present_ids(self.lab, self.block, [PROBE_PREFIX + self.run])
            end = float(first.get("reverted_at") or time.time())
            probe = next(p for p in self.probes if p.node == old)
            results["patroni"]["cut_off"] = cut_off_writes(probe, float(first["in_place_at"]), end, present)

    def _first_cut(self, faults: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The first fault that took a node, or the store's members, away (with its revert time)."""
        store = self.lab.blocks[str(self.block.params["dcs"])].instances()
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in [*self.block.instances(), *store]]
        first = min(ours, key=lambda f: float(f["at"]), default=None)
        if first is None:
            return None
        match = next((f for f in faults if f.get("id") == first.get("id")), {})
        self.cut = {**first, "reverted_at": match.get("reverted_at")}
        return self.cut

    def _on_node(self, fault: dict[str, Any] | None) -> bool:
        return fault is not None and fault["target"] in self.block.instances()


    def _on_up_again(self, results: dict[str, Any]) -> None:
        if self.cut is None:
            return
        target = str(self.cut["target"]) if self._on_node(self.cut) else str(self.block.params["dcs"])
        self.progress(f"waiting for {target} to stream from the new primary")
        view = wait_formed(self.block, REJOIN_TIMEOUT_S, self.progress)
        back_at = float(self.cut.get("reverted_at") or self.cut["in_place_at"])
        seconds = round(time.time() - back_at, 3)
        results.setdefault("patroni", {})["rejoin"] = {"node": target, "seconds": seconds, "leader": view.leader,
                                                       "measured_from": "the fault's revert"}
        self.progress(f"{target} streams again, {seconds} s after the fault was reverted")


def _old_primary(views: list[ClusterView], fault: dict[str, Any] | None, block: Block) -> str:
    """The node a fault took away, or, when it hit the store, the leader just before it."""
    if fault is None:
        return ""
    if fault["target"] in block.instances():
        return str(fault["target"])
    before = [v for v in views if v.at < float(fault["in_place_at"]) and v.leader]
    return str(before[-1].leader) if before else ""


def writes_report(lab: Lab, block: Block, run_dir: Path, cut: dict[str, Any] | None) -> dict[str, Any]:
    """The ledger checked against the ids the final primary holds."""
    writes = ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []
    if not writes:
        return {}
    found = present_ids(lab, block, ledger.prefixes(writes))
    if cut is None:
        return ledger.report(writes, found)
    return ledger.report(writes, found, float(cut["in_place_at"]), str(cut["target"]))


def settings(block: Block) -> dict[str, Any]:
    """The timing and mode the cluster ran with, and whether the timing is Patroni's default."""
    timing = {key: int(block.params[key]) for key in PATRONI_DEFAULTS}
    return {"settings": {**timing, "synchronous_mode": bool(block.params["synchronous_mode"]),
                         "failsafe_mode": bool(block.params["failsafe_mode"])},
            "patroni_defaults": timing == PATRONI_DEFAULTS}


def failover_report(views: list[ClusterView], cut: dict[str, Any] | None, old: str, faults: list[dict[str, Any]],
                    writes: list[ledger.Write]) -> dict[str, Any]:
    """Who led before the fault (`old`: its target, or the leader when the store was hit), who
    took the lock after it and how soon, and what the old primary did meanwhile."""
    report: dict[str, Any] = {"watch_interval_s": WATCH_INTERVAL_S, "leaders_seen": leaders_seen(views)}
    if cut is None or not old:
        return report
    at = float(cut["in_place_at"])
    # The last view in which the leader answered (the kill may already show in the one before `at`).
    before = [v for v in views if v.at < at and v.leader and _timeline(v)]
    timeline_before = _timeline(before[-1]) if before else 0
    promoted = next((v for v in views if v.at >= at and v.leader not in (None, old)
                     and v.primaries == [v.leader] and _timeline(v) > timeline_before), None)
    healed_at = _reverted_at(faults, cut)
    demoted = next((v for v in views if at <= v.at <= healed_at and _stepped_down(v, old)), None)
    report.update({
        "fault": f"{cut['fault']} {cut['target']}", "store_fault": old != cut["target"],
        "old_primary": old, "timeline_before": timeline_before,
        "new_primary": promoted.leader if promoted else None,
        "timeline_after": _timeline(promoted) if promoted else None,
        "promoted_s": round(promoted.at - at, 3) if promoted else None,
        "demoted_s": round(demoted.at - at, 3) if demoted else None,
        "primary_again_s": _primary_again(views, demoted.at) if demoted else None,
        "two_primaries_s": _overlap(views, at, healed_at),
        # Through HAProxy, which stops sending to a node whose /primary check fails.
        "acks_after_cut": sum(1 for w in writes if w.outcome == ledger.ACK and w.node == old and w.sent >= at),
        "primary_kept": _kept(views, old, at, healed_at),
    })
    return report


def _primary_again(views: list[ClusterView], since: float) -> dict[str, Any] | None:
    """The first member running as primary after the old one stepped down (seconds since then)."""
    again = next((v for v in views if v.at > since and v.leader and v.primaries == [v.leader]), None)
    return {"node": again.leader, "timeline": _timeline(again), "after_demotion_s": round(again.at - since, 3)} \
        if again else None


def _timeline(view: ClusterView) -> int:
    member = view.member(str(view.leader))
    return member.timeline if member else 0


def _stepped_down(view: ClusterView, old: str) -> bool:
    # The old primary answered, and no longer runs postgres as a primary.
    member = view.member(old)
    return member is not None and member.reachable and not (member.role == "primary" and member.state == "running")


def _kept(views: list[ClusterView], old: str, start: float, end: float) -> bool | None:
    """Whether the old primary stayed a running primary for as long as it answered while cut off
    (etcd-loss with failsafe mode); None when it never answered."""
    answered = [v for v in views if start <= v.at <= end and (m := v.member(old)) is not None and m.reachable]
    return all(not _stepped_down(v, old) for v in answered) if answered else None


def _overlap(views: list[ClusterView], start: float, end: float) -> float:
    """Seconds during the fault in which two nodes both said they were a running primary."""
    seen = [v for v in views if start <= v.at <= end]
    return round(sum(WATCH_INTERVAL_S for v in seen if len(v.primaries) > 1), 3)


def _reverted_at(faults: list[dict[str, Any]], fault: dict[str, Any]) -> float:
    match = next((f for f in faults if f.get("id") == fault.get("id")), None)
    reverted = match.get("reverted_at") if match else None
    return float(reverted) if reverted is not None else float("inf")


def leaders_seen(views: list[ClusterView]) -> list[dict[str, Any]]:
    """Each change of leader (or of its timeline) the watch saw, in order."""
    seen: list[dict[str, Any]] = []
    for view in views:
        entry = {"leader": view.leader, "timeline": _timeline(view) if view.leader else None}
        if not seen or (seen[-1]["leader"], seen[-1]["timeline"]) != (entry["leader"], entry["timeline"]):
            seen.append({"at": round(view.at, 3), **entry})
    return seen


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows: the failover, and what a cut-off primary did."""
    found = report.get("patroni")
    if not found or "old_primary" not in found:
        return []
    s = found["settings"]
    timing = f"ttl {s['ttl']} s, loop_wait {s['loop_wait']} s, retry_timeout {s['retry_timeout']} s"
    rows = [_store_row(found) if found.get("store_fault") else _failover_row(found),
            ("patroni settings", timing + (" (Patroni's defaults)" if found["patroni_defaults"] else ""),
             f"synchronous_mode {'on' if s['synchronous_mode'] else 'off'}, "
             f"failsafe_mode {'on' if s['failsafe_mode'] else 'off'}")]
    if found["demoted_s"] is not None:
        rows.append(("old primary", f"{found['old_primary']} demoted itself {found['demoted_s']} s after the fault",
                     "its first answer as anything but a running primary"))
    elif found.get("primary_kept"):
        rows.append(("old primary", f"{found['old_primary']} stayed primary while the fault lasted",
                     "it answered as a running primary every time it was asked"))
    cut = found.get("cut_off")
    if cut and cut["sent"]:
        last = "" if cut["last_accepted_s"] is None else f", the last {cut['last_accepted_s']} s after the fault"
        rows.append(("direct writes to it", f"{cut['accepted']} of {cut['sent']} accepted{last}; "
                     f"{cut['accepted_then_lost']} of those not on the final primary",
                     "a probe INSERT on its own published port every 0.2 s, not through HAProxy"))
    rejoin = found.get("rejoin")
    if rejoin and found.get("store_fault"):
        rows.append(("whole again", f"{rejoin['leader']} leads, every replica streaming, {rejoin['seconds']} s "
                     "after the revert", "the store's members back, Patroni's loop running as before"))
    elif rejoin:
        rows.append(("rejoin", f"{rejoin['node']} streams from {rejoin['leader']} {rejoin['seconds']} s after the "
                     "revert", "started again, it found another leader, rewound and followed it"))
    if found["two_primaries_s"]:
        rows.append(("two primaries", f"{found['two_primaries_s']} s", "two nodes both said they ran as primary"))
    return rows


def _failover_row(found: dict[str, Any]) -> tuple[str, str, str]:
    took = "no new primary seen" if found["promoted_s"] is None else f"in {found['promoted_s']} s"
    return ("failover", f"{found['old_primary']} (timeline {found['timeline_before']}) -> {found['new_primary']} "
            f"(timeline {found['timeline_after']}) {took}", "fault in place until another member held the "
            "leader lock and ran as primary on a new timeline")


def _store_row(found: dict[str, Any]) -> tuple[str, str, str]:
    again = found.get("primary_again_s")
    after = "no primary again before the load ended" if not again else (
        f"{again['node']} primary again (timeline {again['timeline']}) {again['after_demotion_s']} s after that")
    what = "kept running as primary" if found["demoted_s"] is None else f"demoted {found['demoted_s']} s after it"
    return ("store lost", f"{found['fault']}: {found['old_primary']} (timeline {found['timeline_before']}) {what}"
            + ("" if found["demoted_s"] is None else f"; {after}"), "the leader lock could not be renewed")
