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
from labctl.durations import duration_ms, parse_duration
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.galera.cluster import Progress, nodes, present_ids, wait_whole
from labctl.model.lab import Block, Lab
from labctl.runtime import inventory

PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 3.0
REJOIN_TIMEOUT_S = 180.0
DEFAULT_SUSPECT_S = 5.0  # Galera's evs.suspect_timeout when nothing sets it
CUTTING = ("kill", "stop", "pause", "partition")
# Client errors after which a kept connection is of no more use: gone away, lost, timed out.
CONNECTION_LOST = (2006, 2013, 2055)
# The joiner's IST receiver covers the writesets it lacks: from 0 when it had no position (a
# full copy, SST, came first), from just past its own position when that was enough (IST).
IST_RANGE = re.compile(r"Prepared IST receiver for (\d+)-(\d+)")
# mariadbd's first line at every start, before the provider prepares any transfer.
SERVER_START = "Starting MariaDB"


class NodeProbe(BackgroundWatch):
    """Every PROBE_INTERVAL_S: this node's component, one probe write and one read. The
    connection is kept between probes (opening one costs 0.3 s on the busy 2-core machine,
    more than the interval) and opened again after any error that may have broken it."""

    name = "labctl-galera-probe"

    def __init__(self, lab: Lab, node: Node) -> None:
        super().__init__()
        self.lab, self.node = lab, node
        self.samples: list[dict[str, Any]] = []
        self.connection: Any = None

    def run(self) -> None:
        try:
            while not self.stopping.wait(PROBE_INTERVAL_S):
                self.samples.append(self._probe())
        finally:
            self._drop()

    def _probe(self) -> dict[str, Any]:
        sample: dict[str, Any] = {"node": self.node.name, "at": time.time()}
        try:
            if self.connection is None:
                self.connection = connect(self.lab, self.node, PROBE_TIMEOUT_S)
        except DbError:
            return {**sample, "reachable": False}
        try:
            rows = run_sql(self.connection, "SHOW GLOBAL STATUS WHERE Variable_name IN "
                                            "('wsrep_cluster_status', 'wsrep_cluster_size')")
            found = {str(r["Variable_name"]).lower(): str(r["Value"]) for r in rows}
            sample.update(reachable=True, status=found.get("wsrep_cluster_status", ""),
                          size=int(found.get("wsrep_cluster_size") or 0))
            sample["write"] = _attempt(self.connection, "INSERT INTO labctl.probes (node, at) VALUES (%s, %s)",
                                       (self.node.name, sample["at"]))
            sample["read"] = _attempt(self.connection, "SELECT COUNT(*) AS n FROM labctl.writes WHERE id = %s",
                                      ("probe",))
        except mysql.connector.Error as exc:
            sample.update(reachable=False, error=exc.msg or str(exc))
            self._drop()
        if any(sample.get(key, {}).get("errno") in CONNECTION_LOST for key in ("write", "read")):
            self._drop()
        sample["done"] = time.time()
        return sample

    def _drop(self) -> None:
        with contextlib.suppress(mysql.connector.Error, OSError):
            if self.connection is not None:
                self.connection.close()
        self.connection = None


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
        self.conflict: dict[str, Any] | None = None
        self.healing_at: float | None = None

    def subscribe(self, events: DrillEvents) -> None:
        """Probe every node while the load runs; once healed read the writes back; once the
        lab is up again time the faulted node's return."""
        events.drill_started.add_listener(self._start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self._stop)
        events.healing.add_listener(self._on_healing)
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)
        events.step_handlers["conflicting_updates"] = self._write_conflict

    def _start(self) -> None:
        for probe in self.probes:
            probe.start()

    def _stop(self) -> None:
        for probe in self.probes:
            probe.stop(timeout=PROBE_TIMEOUT_S + 5)

    def _write_conflict(self, step: dict[str, Any]) -> None:
        from labctl.galera.conflict import run_conflict

        options = step["conflicting_updates"] or {}
        seconds = parse_duration(str(options.get("for", "10s")))
        self.conflict = run_conflict(self.lab, self.block, seconds, int(options.get("rows", 4)), self.progress,
                                     options.get("through"))

    def _on_fault(self, fault: dict[str, Any]) -> None:
        # `at` is when the fault was asked for; a partition's rules are in place only now.
        self.applied.append({**fault, "in_place_at": time.time()})

    def _on_healing(self) -> None:
        if self.healing_at is None:
            self.healing_at = time.time()

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        first = min(ours, key=lambda f: float(f["at"]), default=None)
        if first is not None:
            match = next((f for f in faults if f.get("id") == first.get("id")), {})
            # The fault ends when its revert begins: a write on the cut-off node once its rules
            # are going is not a write of a node alone.
            ends = [t for t in (match.get("reverted_at"), self.healing_at) if t is not None and t > first["at"]]
            self.cut = {**first, "reverted_at": min(ends, default=None)}
        self.progress("reading every write back from a synced node")
        results.update(writes_report(self.lab, self.block, run_dir, self.cut))
        results["galera"] = {**probe_report(self.probes, self.cut), **detection_setting(self.block)}
        if self.conflict is not None:
            results["galera"]["conflict"] = self.conflict

    def _on_up_again(self, results: dict[str, Any]) -> None:
        if self.cut is None:
            return
        target = str(self.cut["target"])
        self.progress(f"waiting for {target} to be Synced in the Primary component again")
        views = wait_whole(self.lab, self.block, REJOIN_TIMEOUT_S, self.progress)
        back_at = float(self.cut.get("reverted_at") or self.cut["in_place_at"])
        seconds = round(time.time() - back_at, 3)
        method = transfer_method(inventory.container_logs_tail(f"{self.lab.project}-{target}", 5000))
        results.setdefault("galera", {})["rejoin"] = {"node": target, "seconds": seconds, "method": method,
                                                      "measured_from": "the fault's revert",
                                                      "cluster_size": views[0].size}
        self.progress(f"{target} is Synced again, {seconds} s after the fault was reverted ({method})")


def detection_setting(block: Block) -> dict[str, Any]:
    """The evs.suspect_timeout the lab ran with, and whether it is Galera's default."""
    seconds = duration_ms(str(block.params["suspect_timeout"])) / 1000
    return {"suspect_timeout_s": seconds, "suspect_timeout_default": seconds == DEFAULT_SUSPECT_S}


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
    while the fault was in place, what the cut-off node accepted and what the survivors did."""
    report: dict[str, Any] = {"probe_interval_s": PROBE_INTERVAL_S,
                              "nodes": {p.node.name: _counts(p.samples) for p in probes}}
    if cut is None:
        return report
    target = str(cut["target"])
    start, end = float(cut["in_place_at"]), float(cut.get("reverted_at") or time.time())
    windows = {p.node.name: _window(p, start, end) for p in probes}
    if cut["fault"] == "partition":
        samples = windows[target]
        report.update(cut_off=target, cut_off_window=_counts(samples),
                      non_primary_writes=_non_primary_writes(samples),
                      non_primary_after_s=_first_non_primary(samples, start))
    others = [p for p in probes if p.node.name != target]
    report.update(survivors_report({p.node.name: windows[p.node.name] for p in others}, start))
    if any(s.get("status") == "non-Primary" for p in others for s in windows[p.node.name]):
        report["survivors_writable_again_s"] = _writable_again(others, end)
    return report


def _window(probe: NodeProbe, start: float, end: float) -> list[dict[str, Any]]:
    """The probes sent once the fault was in place and answered before its revert began."""
    return [s for s in probe.samples if s["at"] >= start and s.get("done", s["at"]) <= end]


def _writable_again(probes: list[NodeProbe], reverted: float) -> float | None:
    # A survivor that lost quorum takes writes again only once the faulted node is back.
    back = [s.get("done", s["at"]) for p in probes for s in p.samples
            if s["at"] >= reverted and s.get("write", {}).get("ok")]
    return round(min(back) - reverted, 3) if back else None


def survivors_report(windows: dict[str, list[dict[str, Any]]], start: float) -> dict[str, Any]:
    """What the nodes that were not faulted did while the fault was in place: probe writes
    each accepted and refused, the components and cluster sizes they reported, the last one
    they reported, and how long after the fault no survivor accepted a write."""
    # When each accepted write was answered: one sent just before the view change waits for it.
    accepted = sorted(s.get("done", s["at"]) for samples in windows.values() for s in samples
                      if s.get("write", {}).get("ok"))
    first_refused = min((s["at"] for samples in windows.values() for s in samples
                         if "write" in s and not s["write"]["ok"]), default=None)
    last = {node: _last_view(samples) for node, samples in windows.items()}
    return {"survivors": {node: {**_counts(samples), "last": last[node]} for node, samples in windows.items()},
            "survivor_writes": len(accepted),
            "survivor_writes_after_s": round(accepted[0] - start, 3) if accepted else None,
            "survivor_refused_from_s": None if first_refused is None else round(first_refused - start, 3)}


def _last_view(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    answered = [s for s in samples if s.get("reachable")]
    if not answered:
        return None
    return {"status": answered[-1].get("status"), "size": answered[-1].get("size")}


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
    """IST or SST: how the node's log says it got its last state ('none' without a transfer).
    Only its last start counts: the container's log keeps the transfers of earlier ones."""
    ranges = IST_RANGE.findall(log[max(0, log.rfind(SERVER_START)):])
    if not ranges:
        return "none"
    first, last = (int(n) for n in ranges[-1])
    return "SST" if first == 0 else f"IST ({last - first + 1} writesets)"


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows: failure detection, what the cut-off node accepted, what the
    survivors did while the fault was in place, and how the node came back."""
    galera = report.get("galera") or {}
    rows = _detection_rows(galera)
    window = galera.get("cut_off_window")
    if window:
        rows.append(("cut-off node", f"{galera['cut_off']}: {window['writes']['ok']} writes accepted, "
                     f"{window['writes']['refused']} refused; {window['reads']['ok']} reads answered, "
                     f"{window['reads']['refused']} refused", "probes straight to it while it was alone"))
        if galera.get("non_primary_after_s") is not None:
            rows.append(("non-Primary after", f"{galera['non_primary_after_s']} s", "from the partition to its "
                         "first probe answered in a non-Primary component"))
    rows.extend(_survivor_rows(galera))
    if galera.get("conflict"):
        from labctl.galera.conflict import conflict_rows

        rows.extend(conflict_rows(galera["conflict"]))
    rejoin = galera.get("rejoin")
    if rejoin:
        size = f", wsrep_cluster_size {rejoin['cluster_size']}" if rejoin.get("cluster_size") else ""
        how = "with no state transfer (it missed nothing)" if rejoin["method"] == "none" else f"by {rejoin['method']}"
        rows.append(("rejoin", f"{rejoin['node']} Synced {rejoin['seconds']} s after the revert, {how}{size}",
                     "its log names the state transfer"))
    return rows


def _detection_rows(galera: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "suspect_timeout_s" not in galera:
        return []
    whose = "Galera's default" if galera["suspect_timeout_default"] else \
        f"tuned by this lab; Galera's default is {DEFAULT_SUSPECT_S:g} s"
    return [("evs.suspect_timeout", f"{galera['suspect_timeout_s']:g} s ({whose})",
             "silence after which the others drop a node from their view")]


def _survivor_rows(galera: dict[str, Any]) -> list[tuple[str, str, str]]:
    survivors = galera.get("survivors") or {}
    rows = []
    for node, counts in survivors.items():
        last = counts.get("last") or {}
        seen = f"; last seen {last.get('status')}, size {last.get('size')}" if last else "; never answered"
        rows.append((f"survivor {node}", f"{counts['writes']['ok']} writes accepted, {counts['writes']['refused']} "
                     f"refused{seen}", "probes straight to it while the fault was in place"))
    if survivors:
        after = galera.get("survivor_writes_after_s")
        window = "no write accepted while the fault lasted" if after is None else f"{after} s"
        rows.append(("survivors' write error window", window,
                     "from the fault to the first probe write a survivor acknowledged"))
    if "survivors_writable_again_s" in galera:
        again = galera["survivors_writable_again_s"]
        rows.append(("writable again", "not before the load ended" if again is None else f"{again} s",
                     "from the faulted node's restart to a survivor's next acknowledged probe write"))
    return rows
