"""What a drill on a Redis Cluster lab adds: a watch on who serves which slots, the failover's
times, a `reshard` step (slots moved under load), the redirects the load followed, and every
write of the ledger read back from the masters."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.model.lab import Block, Lab
from labctl.redis.cluster import ClusterView, Progress, cluster_view, present_ids
from labctl.redis.reshard import reshard

WATCH_INTERVAL_S = 0.1
# Faults that take a node away: the first one's target is the old master.
CUTTING = ("kill", "stop", "pause", "partition")


class SlotWatch(threading.Thread):
    """Asks every node for its view of the cluster, every WATCH_INTERVAL_S, until stopped."""

    def __init__(self, block: Block) -> None:
        super().__init__(name="labctl-redis-watch", daemon=True)
        self.block = block
        self.stopping = threading.Event()
        self.views: list[ClusterView] = []

    def run(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL_S):
            self.views.append(cluster_view(self.block))

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=10)


class RedisDrill:
    """The Redis Cluster part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.watch = SlotWatch(block)
        self.applied: list[dict[str, Any]] = []
        self.resharded: list[dict[str, Any]] = []

    def subscribe(self, events: DrillEvents) -> None:
        """Watch the slots while the load runs; once healed, read the writes back."""
        events.drill_started.add_listener(self.watch.start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self.watch.stop)
        events.healed.add_listener(self._on_healed)
        events.step_handlers["reshard"] = self._reshard

    def _on_fault(self, fault: dict[str, Any]) -> None:
        self.applied.append({**fault, "in_place_at": time.time()})

    def _reshard(self, step: dict[str, Any]) -> None:
        self.resharded.append(reshard(self.lab, self.block, step["reshard"] or {}, self.progress))

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        self.progress("reading every write back from the masters")
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        failover = failover_report(self.watch.views, ours)
        results.update(writes_report(self.block, run_dir, ours, failover))
        results["failover"] = failover
        results["redirects"] = redirect_counts(run_dir)
        if self.resharded:
            results["reshard"] = self.resharded


def _ledger_or_empty(run_dir: Path) -> list[ledger.Write]:
    return ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []


def writes_report(block: Block, run_dir: Path, faults: list[dict[str, Any]],
                  failover: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ledger checked against the keys the masters hold. The RTO is the first ack, after the
    fault, by the replica that took the old master's slots: the other masters never stopped."""
    writes = _ledger_or_empty(run_dir)
    if not writes:
        return {}
    first = min(faults, key=lambda f: float(f["at"]), default=None)
    found = present_ids(block, ledger.prefixes(writes))
    fault_at = float(first["in_place_at"]) if first else None
    result = ledger.report(writes, found, fault_at, str(first["target"]) if first else None)
    new_master = (failover or {}).get("new_master")
    if fault_at is not None:
        result["rto_s"] = ledger.rto([w for w in writes if w.node == new_master], fault_at) if new_master else None
    return result


def redirect_counts(run_dir: Path) -> dict[str, int]:
    """MOVED and ASK redirects the load followed, summed over its ledger lines."""
    moved = ask = 0
    for path in run_dir.glob(ledger.LEDGER_GLOB):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a last line cut short; read_ledger says the same
            moved += int(entry.get("moved", 0))
            ask += int(entry.get("ask", 0))
    return {"moved": moved, "ask": ask, "total": moved + ask}


def failover_report(views: list[ClusterView], faults: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Who served the old master's slots before the first fault, when the others marked it
    failed, when its replica was promoted and when every node said ok again."""
    if not faults:
        return None
    first = min(faults, key=lambda f: float(f["at"]))
    old, at = str(first["target"]), float(first["in_place_at"])
    before = [v for v in views if v.at < at and old in v.masters()]
    if not before:
        return {"old_master": old, "was_master": False}
    old_peer = before[-1].masters()[old]
    after = [v for v in views if v.at >= at]
    failed = next((v for v in after if _marked_failed(v, old_peer.node_id)), None)
    promoted = next((v for v in after if _new_owner(v, old_peer.ranges[0][0], old)), None)
    ok = next((v for v in after if promoted and v.at >= promoted.at and v.ok), None)
    return {
        "old_master": old, "was_master": True, "slots": old_peer.slots,
        "new_master": _new_owner(promoted, old_peer.ranges[0][0], old) if promoted else None,
        "failed_s": _since(failed, at), "promoted_s": _since(promoted, at), "cluster_ok_s": _since(ok, at),
        "watch_interval_s": WATCH_INTERVAL_S,
    }


def _marked_failed(view: ClusterView, node_id: str) -> bool:
    newest = view.newest()
    return any(p.node_id == node_id and p.failed for p in (newest.peers if newest else []))


def _new_owner(view: ClusterView, slot: int, old: str) -> str | None:
    owner = next((name for name, peer in view.masters().items() if peer.serves(slot)), None)
    return owner if owner not in (None, old) else None


def _since(view: ClusterView | None, at: float) -> float | None:
    return round(view.at - at, 3) if view else None


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for the failover, the reshards and the redirects."""
    rows = []
    failover = report.get("failover")
    if failover and failover.get("was_master"):
        rows.append(("failover", f"{failover['old_master']} -> {failover['new_master'] or 'no replica promoted'}: "
                     f"marked failed {failover['failed_s']} s, promoted {failover['promoted_s']} s, cluster ok "
                     f"{failover['cluster_ok_s']} s", f"after the fault ({failover['slots']} slots moved over)"))
    for moved in report.get("reshard", []):
        rows.append(("reshard", f"{moved['slots']} slots {moved['from']} -> {moved['to']} in {moved['took_s']} s",
                     "redis-cli --cluster reshard under the load"))
    redirects = report.get("redirects")
    if redirects is not None:
        rows.append(("redirects", f"{redirects['moved']} MOVED, {redirects['ask']} ASK",
                     "followed by the load (SET and GET)"))
    return rows
