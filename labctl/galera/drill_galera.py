"""What a drill on a Galera lab adds: a probe on every node (its component, one write and one
read, straight to its published port), the ledger read back from a synced node, what the
cut-off node accepted, and how the faulted node came back (IST or SST, and how long)."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import mysql.connector

from labctl.db.nodes import BackgroundWatch, DbError, Node, connect, run_sql
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.galera.cluster import Progress, nodes, present_ids, wait_whole
from labctl.model.lab import Block, Lab
from labctl.runtime import inventory

PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 3.0
REJOIN_TIMEOUT_S = 180.0
CUTTING = ("kill", "stop", "pause", "partition")
# The joiner's IST receiver covers the writesets it lacks: from 0 when it had no position (a
# full copy, SST, came first), from just past its own position when that was enough (IST).
IST_RANGE = re.compile(r"Prepared IST receiver for (\d+)-(\d+)")


class NodeProbe(BackgroundWatch):
    """Every PROBE_INTERVAL_S: this node's component, one probe write and one read."""

    name = "labctl-galera-probe"

    def __init__(self, lab: Lab, node: Node) -> None:
        super().__init__()
        self.lab, self.node = lab, node
        self.samples: list[dict[str, Any]] = []

    def run(self) -> None:
        while not self.stopping.wait(PROBE_INTERVAL_S):
            self.samples.append(self._probe())

    def _probe(self) -> dict[str, Any]:
        sample: dict[str, Any] = {"node": self.node.name, "at": time.time()}
        try:
            connection = connect(self.lab, self.node, PROBE_TIMEOUT_S)
        except DbError:
            return {**sample, "reachable": False}
        try:
            rows = run_sql(connection, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_status'")
            sample.update(reachable=True, status=str(rows[0]["Value"]) if rows else "")
            sample["write"] = _attempt(connection, "INSERT INTO labctl.probes (node, at) VALUES (%s, %s)",
                                       (self.node.name, sample["at"]))
            sample["read"] = _attempt(connection, "SELECT COUNT(*) AS n FROM labctl.writes WHERE id = %s",
                                      ("probe",))
        except mysql.connector.Error as exc:
            sample.update(reachable=False, error=exc.msg or str(exc))
        finally:
            with contextlib.suppress(mysql.connector.Error, OSError):
                connection.close()
        sample["done"] = time.time()
        return sample


def _attempt(connection: Any, statement: str, params: tuple[Any, ...]) -> dict[str, Any]:
    try:
        run_sql(connection, statement, params)
        return {"ok": True}
    except mysql.connector.Error as exc:
        return {"ok": False, "errno": exc.errno, "error": (exc.msg or str(exc))[:120]}


class GaleraDrill:
    """The Galera part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.probes = [NodeProbe(lab, node) for node in nodes(lab, block)]
        self.applied: list[dict[str, Any]] = []
        self.cut: dict[str, Any] | None = None

    def subscribe(self, events: DrillEvents) -> None:
        """Probe every node while the load runs; once healed read the writes back; once the
        lab is up again time the faulted node's return."""
        events.drill_started.add_listener(self._start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self._stop)
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)

    def _start(self) -> None:
        for probe in self.probes:
            probe.start()

    def _stop(self) -> None:
        for probe in self.probes:
            probe.stop(timeout=PROBE_TIMEOUT_S + 5)

    def _on_fault(self, fault: dict[str, Any]) -> None:
        # `at` is when the fault was asked for; a partition's rules are in place only now.
        self.applied.append({**fault, "in_place_at": time.time()})

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        first = min(ours, key=lambda f: float(f["at"]), default=None)
        if first is not None:
            match = next((f for f in faults if f.get("id") == first.get("id")), {})
            self.cut = {**first, "reverted_at": match.get("reverted_at")}
        self.progress("reading every write back from a synced node")
        results.update(writes_report(self.lab, self.block, run_dir, self.cut))
        results["galera"] = probe_report(self.probes, self.cut)

    def _on_up_again(self, results: dict[str, Any]) -> None:
        if self.cut is None:
            return
        target = str(self.cut["target"])
        self.progress(f"waiting for {target} to be Synced in the Primary component again")
        wait_whole(self.lab, self.block, REJOIN_TIMEOUT_S, self.progress)
        back_at = float(self.cut.get("reverted_at") or self.cut["in_place_at"])
        seconds = round(time.time() - back_at, 3)
        method = transfer_method(inventory.container_logs_tail(f"{self.lab.project}-{target}", 5000))
        results.setdefault("galera", {})["rejoin"] = {"node": target, "seconds": seconds, "method": method,
                                                      "measured_from": "the fault's revert"}
        self.progress(f"{target} is Synced again, {seconds} s after the fault was reverted ({method})")


def writes_report(lab: Lab, block: Block, run_dir: Path, cut: dict[str, Any] | None) -> dict[str, Any]:
    """The ledger checked against the ids a synced node holds."""
    writes = ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []
    if not writes:
        return {}
    found = present_ids(lab, block, ledger.prefixes(writes))
    if cut is None:
        return ledger.report(writes, found)
    return ledger.report(writes, found, float(cut["in_place_at"]), str(cut["target"]))


def probe_report(probes: list[NodeProbe], cut: dict[str, Any] | None) -> dict[str, Any]:
    """Per node: probe writes and reads answered and refused, and the components it reported;
    for the cut-off node, what it accepted while the fault was in place."""
    report: dict[str, Any] = {"probe_interval_s": PROBE_INTERVAL_S,
                              "nodes": {p.node.name: _counts(p.samples) for p in probes}}
    if cut is None or cut["fault"] != "partition":
        return report
    target = str(cut["target"])
    start, end = float(cut["in_place_at"]), float(cut.get("reverted_at") or time.time())
    samples = [s for p in probes if p.node.name == target for s in p.samples
               if s["at"] >= start and s.get("done", s["at"]) <= end]
    counts = _counts(samples)
    report.update(cut_off=target, cut_off_window=counts, non_primary_writes=_non_primary_writes(samples),
                  non_primary_after_s=_first_non_primary(samples, start))
    return report


def _counts(samples: list[dict[str, Any]]) -> dict[str, Any]:
    def tally(key: str) -> dict[str, int]:
        tried = [s[key] for s in samples if key in s]
        return {"ok": sum(1 for t in tried if t["ok"]), "refused": sum(1 for t in tried if not t["ok"])}

    statuses: dict[str, int] = {}
    for sample in samples:
        status = str(sample.get("status") or ("unreachable" if not sample.get("reachable") else "?"))
        statuses[status] = statuses.get(status, 0) + 1
    return {"probes": len(samples), "writes": tally("write"), "reads": tally("read"), "components": statuses}


def _non_primary_writes(samples: list[dict[str, Any]]) -> int:
    # Every write the cut-off node acknowledged while it was alone: none can have been
    # certified by the others, so each one would be a write the cluster never had.
    return sum(1 for s in samples if s.get("write", {}).get("ok"))


def _first_non_primary(samples: list[dict[str, Any]], start: float) -> float | None:
    first = next((s["at"] for s in samples if s.get("reachable") and s.get("status") not in ("Primary", None)), None)
    return None if first is None else round(first - start, 3)


def transfer_method(log: str) -> str:
    """IST or SST: how the node's log says it got its last state ('none' without a transfer)."""
    ranges = IST_RANGE.findall(log)
    if not ranges:
        return "none"
    first, last = (int(n) for n in ranges[-1])
    return "SST" if first == 0 else f"IST ({last - first + 1} writesets)"


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows: what the cut-off node accepted, and how the node came back."""
    galera = report.get("galera") or {}
    rows = []
    window = galera.get("cut_off_window")
    if window:
        rows.append(("cut-off node", f"{galera['cut_off']}: {window['writes']['ok']} writes accepted, "
                     f"{window['writes']['refused']} refused; {window['reads']['ok']} reads answered, "
                     f"{window['reads']['refused']} refused", "probes straight to it while it was alone"))
        if galera.get("non_primary_after_s") is not None:
            rows.append(("non-Primary after", f"{galera['non_primary_after_s']} s", "from the partition to its "
                         "first probe answered in a non-Primary component"))
    rejoin = galera.get("rejoin")
    if rejoin:
        rows.append(("rejoin", f"{rejoin['node']} Synced {rejoin['seconds']} s after the revert, by "
                     f"{rejoin['method']}", "its log names the state transfer"))
    return rows

