"""What a drill on a Group Replication lab adds: a probe on every member (its own view of the
group, one write and one read, straight to its published port), when another member became
a writable primary, what the cut-off member acknowledged while it was alone, the ledger read
back from the primary, and how the faulted member came back."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import mysql.connector

from labctl.db.nodes import BackgroundWatch, DbError, Node, connect, run_sql
from labctl.durations import parse_duration
from labctl.errors import UsageError
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.group import conflict
from labctl.group.members import (
    MEMBERS_QUERY,
    SELF_QUERY,
    MemberView,
    Progress,
    nodes,
    present_ids,
    rejoin_all,
    require_multi_primary,
    wait_for,
)
from labctl.model.lab import Block, Lab

PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 2.0
REJOIN_TIMEOUT_S = 180.0
CUTTING = ("kill", "stop", "pause", "partition")
# The drill step that starts clients updating the same rows through different members.
CONFLICT_STEP = "conflicting_updates"


class MemberProbe(BackgroundWatch):
    """Every PROBE_INTERVAL_S: this member's view of the group, one probe write and one read."""

    name = "labctl-group-probe"

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
            # A write on a member cut off in a minority waits for the majority for ever.
            connection = connect(self.lab, self.node, PROBE_TIMEOUT_S, read_timeout=int(PROBE_TIMEOUT_S))
        except DbError:
            return {**sample, "reachable": False, "done": time.time()}
        try:
            me = run_sql(connection, SELF_QUERY)[0]
            members = [{k: str(v or "") for k, v in row.items()} for row in run_sql(connection, MEMBERS_QUERY)]
            view = MemberView(self.node.name, self.node.port, True, members, str(me["uuid"]), bool(int(me["ro"])))
            sample.update(reachable=True, state=view.state, role=view.role, majority=view.in_majority,
                          writable=view.writable)
            # The read first: after a write that timed out, the connection is lost.
            sample["read"] = _attempt(connection, "SELECT COUNT(*) AS n FROM labctl.writes WHERE id = %s",
                                      ("probe",))
            sample["write"] = _attempt(connection, "INSERT INTO labctl.probes (node, at) VALUES (%s, %s)",
                                       (self.node.name, sample["at"]))
        except (mysql.connector.Error, OSError) as exc:
            sample.update(reachable=False, error=str(getattr(exc, "msg", "") or exc)[:120])
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


class GroupDrill:
    """The Group Replication part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.probes = [MemberProbe(lab, node) for node in nodes(lab, block)]
        self.applied: list[dict[str, Any]] = []
        self.cut: dict[str, Any] | None = None
        self.conflict: conflict.ConflictRun | None = None

    def subscribe(self, events: DrillEvents) -> None:
        """Probe every member while the load runs; once healed read the writes back; once the
        lab is up again let the faulted member rejoin and time it."""
        events.drill_started.add_listener(self._start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self._stop)
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)
        events.step_handlers[CONFLICT_STEP] = self._on_conflict_step

    def _start(self) -> None:
        for probe in self.probes:
            probe.start()

    def _stop(self) -> None:
        for probe in self.probes:
            probe.stop(timeout=PROBE_TIMEOUT_S + 5)
        if self.conflict is not None:
            self.conflict.stop()

    def _on_conflict_step(self, step: dict[str, Any]) -> None:
        params = step[CONFLICT_STEP]
        members = nodes(self.lab, self.block)
        names = list(params.get("through") or [m.name for m in members[:2]])
        unknown = [name for name in names if name not in self.block.instances()]
        if unknown:
            raise UsageError(f"{CONFLICT_STEP}.through names {', '.join(unknown)}, not a member of "
                             f"{self.block.name} ({', '.join(self.block.instances())})")
        require_multi_primary(self.lab, self.block)
        rows, seconds = int(params.get("rows", 5)), params.get("for")
        self.conflict = conflict.ConflictRun(self.lab, members, [m for m in members if m.name in names], rows,
                                             None if seconds is None else parse_duration(str(seconds)))
        self.conflict.start()
        self.progress(f"{', '.join(names)}: one client each, updating the same {rows} rows")

    def _on_fault(self, fault: dict[str, Any]) -> None:
        # `at` is when the fault was asked for; a partition's rules are in place only now.
        self.applied.append({**fault, "in_place_at": time.time()})

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        first = min(ours, key=lambda f: float(f["at"]), default=None)
        if first is not None:
            match = next((f for f in faults if f.get("id") == first.get("id")), {})
            self.cut = {**first, "reverted_at": match.get("reverted_at")}
        self.progress("reading every write back from the primary")
        results.update(writes_report(self.lab, self.block, run_dir, self.cut))
        results["group"] = probe_report(self.probes, self.cut)
        if self.conflict is not None:
            self.progress("reading the hot rows back from every member")
            results["group"]["conflict"] = self.conflict.report()

    def _on_up_again(self, results: dict[str, Any]) -> None:
        if self.cut is None:
            return
        target = str(self.cut["target"])
        self.progress(f"{target} rejoins the group (START GROUP_REPLICATION, distributed recovery)")
        wait_for(self.lab, self.block, lambda vs: any(v.name == target and v.reachable for v in vs),
                 f"{target} answering", REJOIN_TIMEOUT_S, self.progress)
        back_at = float(self.cut.get("reverted_at") or self.cut["in_place_at"])
        # The rejoin starts only once the load is over: `seconds` includes the rest of the load.
        started = time.time()
        rejoin_all(self.lab, self.block, self.progress)
        seconds = round(time.time() - back_at, 3)
        results.setdefault("group", {})["rejoin"] = {"node": target, "seconds": seconds,
                                                     "measured_from": "the fault's revert",
                                                     "rejoin_s": round(time.time() - started, 3)}
        self.progress(f"{target} is ONLINE again, {seconds} s after the fault was reverted")


def writes_report(lab: Lab, block: Block, run_dir: Path, cut: dict[str, Any] | None) -> dict[str, Any]:
    """The ledger checked against the ids the primary holds."""
    writes = ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []
    if not writes:
        return {}
    found = present_ids(lab, block, ledger.prefixes(writes))
    if cut is None:
        return ledger.report(writes, found)
    return ledger.report(writes, found, float(cut["in_place_at"]), str(cut["target"]))


def probe_report(probes: list[MemberProbe], cut: dict[str, Any] | None) -> dict[str, Any]:
    """Per member: probe writes and reads answered and refused, and the states it reported;
    once a member was cut: when another became primary, and what the cut-off one acknowledged."""
    report: dict[str, Any] = {"probe_interval_s": PROBE_INTERVAL_S,
                              "members": {p.node.name: _counts(p.samples) for p in probes}}
    if cut is None:
        return report
    target = str(cut["target"])
    start, end = float(cut["in_place_at"]), float(cut.get("reverted_at") or time.time())
    report["election"] = _election(probes, target, start)
    if cut["fault"] != "partition":
        return report
    samples = [s for p in probes if p.node.name == target for s in p.samples
               if s["at"] >= start and s.get("done", s["at"]) <= end]
    report.update(cut_off=target, cut_off_window=_counts(samples),
                  minority_writes=sum(1 for s in samples if s.get("write", {}).get("ok")))
    return report


def _election(probes: list[MemberProbe], target: str, start: float) -> dict[str, Any] | None:
    """The first probe after the fault on which another member answered as a writable primary."""
    firsts = [(s["at"], p.node.name) for p in probes if p.node.name != target for s in p.samples
              if s["at"] >= start and s.get("writable")]
    if not firsts:
        return None
    at, name = min(firsts)
    return {"new_primary": name, "seconds": round(at - start, 3), "measured_from": "the fault in place"}


def _counts(samples: list[dict[str, Any]]) -> dict[str, Any]:
    def tally(key: str) -> dict[str, int]:
        tried = [s[key] for s in samples if key in s]
        return {"ok": sum(1 for t in tried if t["ok"]), "refused": sum(1 for t in tried if not t["ok"])}

    states: dict[str, int] = {}
    for sample in samples:
        state = str(sample.get("state") or "unreachable")
        if sample.get("role"):
            state += f"/{sample['role']}" + ("" if sample.get("majority") else " (minority)")
        states[state] = states.get(state, 0) + 1
    return {"probes": len(samples), "writes": tally("write"), "reads": tally("read"), "states": states}


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows: the election, what the cut-off member acknowledged, the rejoin."""
    group = report.get("group") or {}
    rows = []
    election = group.get("election")
    if election:
        rows.append(("new primary", f"{election['new_primary']} writable {election['seconds']} s after the fault",
                     "first probe on which it answered ONLINE, PRIMARY, in a majority"))
    window = group.get("cut_off_window")
    if window:
        rows.append(("cut-off member", f"{group['cut_off']}: {window['writes']['ok']} writes acknowledged, "
                     f"{window['writes']['refused']} refused or timed out; {window['reads']['ok']} reads "
                     f"answered", "probes straight to it while it was alone"))
    rejoin = group.get("rejoin")
    if rejoin:
        took = f" ({rejoin['rejoin_s']} s from labctl's START)" if "rejoin_s" in rejoin else ""
        rows.append(("rejoin", f"{rejoin['node']} ONLINE {rejoin['seconds']} s after the revert{took}",
                     "START GROUP_REPLICATION once the load is over, then distributed recovery"))
    if group.get("conflict"):
        rows += conflict.report_rows(group["conflict"])
    return rows
