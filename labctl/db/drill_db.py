"""What a drill on a db lab adds: failover steps, a replication watch, and the ledger verdict.

The drill runs as for any lab; this part arms auto failover (`failover: auto`) or fails
over on cue (`failover: now`), samples lag and semi-sync state while the load runs, and
afterwards reads the final primary back to classify every write (labctl.experiments.ledger).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.db import nodes as db
from labctl.db.drill_backup import DROP_FAULT, BackupSteps, first_failed_at
from labctl.db.drill_backup import report_rows as backup_rows
from labctl.db.failover import DETECTION_RULE, AutoFailover, FailoverResult, failover
from labctl.db.rejoin import rejoin
from labctl.db.status import heartbeat_lag
from labctl.experiments import ledger
from labctl.experiments.events import DrillEvents
from labctl.model.lab import Lab

Progress = Callable[[str], None]
WATCH_INTERVAL_S = 0.5


class ReplicationWatch(db.BackgroundWatch):
    """Samples the primary's semi-sync state and every replica's heartbeat lag from a thread."""

    name = "labctl-replication-watch"

    def __init__(self, lab: Lab) -> None:
        super().__init__()
        self.lab = lab
        self.samples: list[dict[str, Any]] = []
        self.fell_back = False

    def run(self) -> None:
        semisync = db.db_block(self.lab).params["replication"] == "semisync"
        while not self.stopping.wait(WATCH_INTERVAL_S):
            found = db.states(self.lab)
            primary = db.current_primary(found)
            if primary is None:
                continue
            self.fell_back |= semisync and primary.semisync_on is False
            lags = {s.node.name: heartbeat_lag(s, primary) for s in found if s.role == "replica"}
            self.samples.append({"at": time.time(), "primary": primary.node.name, "lag_s": lags})

    def max_lag(self) -> float | None:
        lags = [lag for sample in self.samples for lag in sample["lag_s"].values() if lag is not None]
        return max(lags) if lags else None


class DbDrill:
    """The db part of one drill run."""

    def __init__(self, lab: Lab, progress: Progress) -> None:
        self.lab = lab
        self.progress = progress
        self.watch = ReplicationWatch(lab)
        self.auto: AutoFailover | None = None
        self.manual: FailoverResult | None = None
        self.manual_at: float | None = None
        self.backups = BackupSteps(lab, progress)

    def subscribe(self, events: DrillEvents) -> None:
        """Take part in a drill: watch replication while it runs, handle `failover:` steps,
        classify the writes once healed and rejoin every node once the lab is up again."""
        events.drill_started.add_listener(self.start)
        events.load_finished.add_listener(self.stop)
        events.step_handlers["failover"] = self.step
        events.step_handlers["backup"] = self.backups.backup_step
        events.step_handlers["restore"] = self.backups.restore_step
        events.healed.add_listener(self._on_healed)
        events.lab_up_again.add_listener(self._on_up_again)

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        self.progress("reading every write back from the primary")
        results.update(self.report(run_dir, faults))

    def _on_up_again(self, results: dict[str, Any]) -> None:
        results["rejoined"] = self.restore()

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop(timeout=10)
        if self.auto is not None:
            self.auto.stop()

    def step(self, step: dict[str, Any]) -> None:
        """A `failover:` step: arm the watcher (auto) or fail over right now (now)."""
        if step["failover"] == "auto":
            self.auto = AutoFailover(self.lab, self.progress)
            self.auto.start()
            self.progress("auto failover armed: " + DETECTION_RULE)
            return
        self.manual_at = time.time()
        self.manual = failover(self.lab, progress=self.progress)

    def report(self, main_dir: Path, faults: list[dict[str, Any]]) -> dict[str, Any]:
        """Ledger classification against the final primary, RTO and its parts, replication state."""
        writes = ledger.read_ledger(main_dir) if any(main_dir.glob(ledger.LEDGER_GLOB)) else []
        stopping = [f for f in faults if f["fault"] in ("kill", "stop", "pause")] or faults
        first = min(stopping, key=lambda f: float(f["at"]), default=None)
        fault_at = float(first["at"]) if first else None
        old = str(first["target"]) if first else None
        if first and first["fault"] == DROP_FAULT:
            # The node keeps serving, and the fault's time is when labctl asked for the DROP: the
            # outage starts when the first write failed on the missing table.
            fault_at, old = first_failed_at(writes, float(first["at"])), None
        found = present_ids(self.lab, ledger.prefixes(writes)) if writes else set()
        result = ledger.report(writes, found, fault_at, old) if writes else {}
        mode = str(db.db_block(self.lab).params["replication"])
        result["replication"] = {"mode": mode, "fell_back_to_async": self.watch.fell_back,
                                 "max_lag_s": self.watch.max_lag()}
        result["failover"] = self._failover_report(fault_at)
        if self.backups.report:
            result["restore"] = self.backups.report
        return result

    def _failover_report(self, fault_at: float | None) -> dict[str, Any] | None:
        done = self.auto.result if self.auto else self.manual
        if done is None:
            error = self.auto.error if self.auto else None
            return {"mode": "auto" if self.auto else "none", "error": error} if self.auto else None
        detected = self.auto.detected_at if self.auto else self.manual_at
        steps = {row["step"]: row["seconds"] for row in done.steps}
        return {
            "mode": "auto" if self.auto else "now", **done.to_json(),
            "detection_rule": DETECTION_RULE if self.auto else "failover run by the drill at its step time",
            "detection_s": None if fault_at is None or detected is None else round(detected - fault_at, 3),
            "promotion_s": round(sum(row["seconds"] for row in done.steps
                                     if row["step"] != "re-route" and "beside" not in row), 3),
            "reroute_s": steps.get("re-route"),
        }

    def restore(self) -> list[str]:
        """After healing: every node back as a replica of the primary, ready for the next run."""
        return rejoin(self.lab, progress=self.progress)


def present_ids(lab: Lab, prefixes: list[str]) -> set[str]:
    primary = db.current_primary(db.states(lab))
    if primary is None:
        raise db.DbError("no writable primary, so the writes cannot be checked; "
                         "run 'labctl db failover' and 'labctl db check'")
    return db.ledger_ids(lab, primary.node, prefixes)


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for replication (largest lag) and labctl's failover phases."""
    rows = []
    replication = report.get("replication")
    if replication:
        lag = replication.get("max_lag_s")
        fell = " (semi-sync fell back to async)" if replication.get("fell_back_to_async") else ""
        rows.append(("replication", f"{replication['mode']}{fell}, largest replica lag "
                     f"{'-' if lag is None else f'{lag} s'}", "heartbeat lag sampled while the load ran"))
    failover = report.get("failover") or {}
    if failover.get("detection_s") is not None:
        rows.append((f"failover ({failover['mode']})", f"detection {failover['detection_s']} s, promotion "
                     f"{failover['promotion_s']} s, re-route {failover['reroute_s']} s", ""))
    elif failover.get("error"):
        rows.append((f"failover ({failover['mode']})", f"did not complete: {failover['error']}", ""))
    return rows + backup_rows(report)
