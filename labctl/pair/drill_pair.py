"""What a drill on a master-master lab adds: the `conflict` and `duplicate_key` steps and
their reports, and for a killed node, the writes its partner lacked while it was down
(read before the node comes back) against the writes still missing once it is back."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import mysql.connector

from labctl.db.nodes import DbError, Node, connect, ledger_ids, run_sql
from labctl.durations import parse_duration
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.model.lab import Block, Lab
from labctl.pair.replication import Progress, nodes, pair_views, resume, writer_of
from labctl.pair.workloads import RowUpdater, conflict_report, converge, insert_same_key, reset_hot_rows

CUTTING = ("kill", "stop", "pause", "partition")
DEFAULT_ROWS = 10
DEFAULT_CONFLICT = "8s"


class PairDrill:
    """The master-master part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.updaters: list[RowUpdater] = []
        self.duplicate: dict[str, Any] | None = None
        self.cut: dict[str, Any] | None = None
        self.present_while_down: set[str] | None = None
        self.started = time.time()
        self.run_dir: Path | None = None

    def subscribe(self, events: DrillEvents) -> None:
        """Handle the pair's steps, note a fault on one of its nodes, and report once healed."""
        events.drill_started.add_listener(self._start)
        events.fault_applied.add_listener(self._on_fault)
        events.step_handlers["conflicting_updates"] = self.conflict
        events.step_handlers["duplicate_key"] = self.duplicate_key
        events.load_finished.add_listener(self._on_load_finished)
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)

    def _start(self) -> None:
        self.started = time.time()

    def conflict(self, step: dict[str, Any]) -> None:
        """Start one updater on each node, on the same freshly reset rows."""
        spec = step["conflicting_updates"] or {}
        rows, seconds = int(spec.get("rows", DEFAULT_ROWS)), parse_duration(str(spec.get("for", DEFAULT_CONFLICT)))
        pair = nodes(self.lab, self.block)
        unknown = set(spec.get("through", [])) - {n.name for n in pair}
        if unknown:
            raise DbError(f"conflicting_updates through {', '.join(sorted(unknown))}: lab '{self.lab.name}' has "
                          f"only {', '.join(n.name for n in pair)}")
        reset_hot_rows(self.lab, self.block, rows)
        gate = threading.Barrier(len(pair))
        self.updaters = [RowUpdater(self.lab, node, rows, seconds, gate) for node in pair]
        for updater in self.updaters:
            updater.start()

    def duplicate_key(self, step: dict[str, Any]) -> None:
        """Insert the same key on both nodes at once and see what replication makes of it."""
        key = str((step["duplicate_key"] or {}).get("key", "email"))
        self.duplicate = insert_same_key(self.lab, self.block, key)
        for name, channel in self.duplicate["channels"].items():
            error = channel["worker_error"] or channel["sql_error"]
            self.progress(f"{name}: SQL thread {channel['sql_thread']}" + (f", {error[:160]}" if error else ""))

    def _on_fault(self, fault: dict[str, Any]) -> None:
        if fault["fault"] in CUTTING and fault["target"] in self.block.instances() and self.cut is None:
            self.cut = {**fault, "in_place_at": time.time()}

    def _on_load_finished(self) -> None:
        for updater in self.updaters:
            updater.stop(timeout=30)
        if self.cut is None:
            return
        # Read before the fault is reverted: what the partner held while the node was gone.
        survivor = next(n for n in nodes(self.lab, self.block) if n.name != self.cut["target"])
        # This runs as the drill unwinds (also after Ctrl-C): a survivor that does not answer
        # leaves the figure out rather than hide why the drill stopped.
        with contextlib.suppress(DbError, mysql.connector.Error):
            self.present_while_down = _ids_since(self.lab, survivor, self.started)

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        pair: dict[str, Any] = {}
        if self.updaters:
            self.progress("letting both nodes apply each other's updates, then comparing the hot rows")
            pair["conflict"] = conflict_report(self.lab, self.block, self.updaters)
            pair["diverged"] = pair["conflict"]["diverged"]
        if self.duplicate is not None:
            pair["duplicate_key"] = self.duplicate
            pair["replication_stopped"] = self.duplicate["replication_stopped"]
        if self.cut is not None and self.present_while_down is not None:
            results.update(writes_report(self.lab, self.block, run_dir, self.present_while_down, self.cut))
            pair["while_down"] = {"node": self.cut["target"], "read_from": "its partner, before it came back"}
        else:
            results.update(writes_report(self.lab, self.block, run_dir, None))
        self.run_dir = run_dir
        results["pair"] = pair

    def _on_up_again(self, results: dict[str, Any]) -> None:
        if self.cut is None or self.run_dir is None:
            return
        target = next(n for n in nodes(self.lab, self.block) if n.name == self.cut["target"])
        resume(self.lab, self.block, target, self.progress)
        converge(self.lab, self.block)
        results.setdefault("pair", {})["after_return"] = after_return(
            self.lab, self.block, self.run_dir, self.present_while_down or set())


def _ids_since(lab: Lab, node: Node, started: float) -> set[str]:
    connection = connect(lab, node, 10)
    try:
        rows = run_sql(connection, "SELECT id FROM labctl.writes WHERE created_at >= FROM_UNIXTIME(%s)",
                       (started - 5,))
    finally:
        connection.close()
    return {str(r["id"]) for r in rows}


def _writer_node(lab: Lab, block: Block) -> Node:
    name = writer_of(pair_views(lab, block))
    if name is None:
        raise DbError(f"no writable {block.name} node to read the writes back from; see 'labctl db status'")
    return next(n for n in nodes(lab, block) if n.name == name)


def writes_report(lab: Lab, block: Block, run_dir: Path, present: set[str] | None,
                  cut: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ledger checked against `present` (ids read earlier) or the writer's ids now."""
    writes = ledger.read_ledger(run_dir) if any(run_dir.glob(ledger.LEDGER_GLOB)) else []
    if not writes:
        return {}
    found = present if present is not None else ledger_ids(lab, _writer_node(lab, block), ledger.prefixes(writes))
    if cut is None:
        return ledger.report(writes, found)
    return ledger.report(writes, found, float(cut["in_place_at"]), str(cut["target"]))


def after_return(lab: Lab, block: Block, run_dir: Path, present_while_down: set[str]) -> dict[str, Any]:
    """Once the killed node is back and both have converged: how many of the acknowledged
    writes its partner lacked arrived after all, and how many are still nowhere."""
    writes = ledger.read_ledger(run_dir)
    found = ledger_ids(lab, _writer_node(lab, block), ledger.prefixes(writes))
    missing = set(ledger.classify(writes, present_while_down).lost)
    return {"missing_while_down": len(missing), "arrived_after_return": len(missing & found),
            "still_lost": len(ledger.classify(writes, found).lost)}


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for the pair's steps and a killed node."""
    pair = report.get("pair") or {}
    rows = []
    conflict = pair.get("conflict")
    if conflict:
        per_node = ", ".join(f"{name} {n['increments_lost']}" for name, n in conflict["nodes"].items())
        rows.append(("conflicting updates", f"{conflict['increments_committed']} committed, none refused; "
                     f"{conflict['rows_differing']} of {conflict['rows']} rows differ", "two clients, one per node"))
        rows.append(("increments lost", per_node, "committed increments each node's sum lacks"))
    duplicate = pair.get("duplicate_key")
    if duplicate:
        stopped = [f"{name}: {c['worker_error'] or c['sql_error']}"[:160] for name, c in duplicate["channels"].items()
                   if c["sql_error"]]
        rounds = duplicate.get("rounds", 1)
        quiet = f"no channel stopped in {rounds} round{'s' if rounds > 1 else ''}"
        rows.append(("duplicate key", "; ".join(stopped) or quiet, f"same {duplicate['key']} on both"))
    back = pair.get("after_return")
    if back:
        rows.append(("after the node returned", f"{back['arrived_after_return']} missing writes arrived, "
                     f"{back['still_lost']} still lost", "read from the writer once both converged"))
    return rows
