"""`labctl db failover`: fence, pick the most advanced replica, promote, repoint, re-route.

Each step is timed, so a drill can break the RTO into detection, promotion and re-route.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mysql.connector

from labctl.db import nodes as db
from labctl.db.setup import point_at
from labctl.model.lab import Block, Lab

Progress = Callable[[str], None]
# The detection rule auto failover uses, stated in every report that relies on it.
PROBE_INTERVAL_S = 0.1
PROBE_FAILURES = 2
DETECTION_RULE = (f"the primary is declared dead after {PROBE_FAILURES} failed connection probes in a row, "
                  f"one every {PROBE_INTERVAL_S:.2f} s (1 s connect timeout)")


@dataclass
class FailoverResult:
    """What a failover did: from which node to which, and each step with its duration."""

    old_primary: str | None
    new_primary: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"old_primary": self.old_primary, "new_primary": self.new_primary, "steps": self.steps,
                "seconds": round(self.finished_at - self.started_at, 3)}


class _Steps:
    def __init__(self, progress: Progress) -> None:
        self.rows: list[dict[str, Any]] = []
        self.progress = progress

    def run(self, name: str, action: Callable[[], str], beside: str | None = None) -> None:
        """Time one step; `beside` names the step it runs at the same time as (off the RTO's path)."""
        started = time.monotonic()
        detail = action()
        seconds = round(time.monotonic() - started, 3)
        self.rows.append({"step": name, "seconds": seconds, "detail": detail,
                          **({"beside": beside} if beside else {})})
        self.progress(f"{name}: {detail} ({seconds:.2f} s)")


def failover(lab: Lab, to: str | None = None, progress: Progress = lambda _: None) -> FailoverResult:
    """Promote the most advanced reachable replica (or `to`) and make the rest follow it."""
    started = time.time()
    steps = _Steps(progress)
    found: list[db.NodeState] = []
    steps.run("survey", lambda: _survey(lab, found))
    old = db.current_primary(found)
    # Every check comes before the first change: a refused failover leaves the lab as it was.
    candidates = _candidates(lab, found, to)
    if old is not None:
        steps.run("fence", lambda: _fence(lab, old.node))
        steps.run("catch up", lambda: _catch_up_with(lab, old, candidates))
    applied: list[db.NodeState] = []
    steps.run("apply relay logs", lambda: _apply_relay_logs(lab, candidates, applied))
    chosen = _most_advanced(lab, applied, to)
    steps.run("promote", lambda: _promote(lab, chosen))
    others = [s.node for s in candidates if s.node != chosen]
    _repoint_while_routing(lab, steps, others, chosen.name)
    old_name = old.node.name if old else _last_source(lab, candidates)
    return FailoverResult(old_name, chosen.name, steps.rows, started, time.time())


def _survey(lab: Lab, found: list[db.NodeState]) -> str:
    found.extend(db.states(lab))
    answering = [s.node.name for s in found if s.reachable]
    return f"{len(answering)} of {len(found)} nodes answer"


def _repoint_while_routing(lab: Lab, steps: _Steps, others: list[db.Node], source: str) -> None:
    """The other replicas follow the new primary while the router finds it: a write routed there
    first waits for a (semi-sync) replica to attach, so neither has to wait for the other."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        repointing = pool.submit(steps.run, "repoint", lambda: _repoint(lab, others, source), "re-route")
        steps.run("re-route", lambda: _wait_routed(lab, source))
        repointing.result()


def _last_source(lab: Lab, candidates: list[db.NodeState]) -> str | None:
    """The primary the replicas were following, when it no longer answers itself."""
    sources = {str(s.replica.get(db.lab_flavor(lab).source_host) or "") for s in candidates} - {""}
    return sources.pop() if len(sources) == 1 else None


def _candidates(lab: Lab, found: list[db.NodeState], to: str | None) -> list[db.NodeState]:
    replicas = [s for s in found if s.reachable and s.role in ("replica", "standalone")]
    if to is not None:
        wanted = db.node_named(lab, to)
        if not any(s.node == wanted for s in replicas):
            raise db.DbError(f"{wanted.name} cannot be promoted: it is not a reachable replica")
    if not replicas:
        raise db.DbError("no reachable replica to promote; start one with 'labctl chaos LAB start db.N'")
    return replicas


def _fence(lab: Lab, node: db.Node) -> str:
    db.execute(lab, node, db.lab_flavor(lab).writable(False))
    return f"{node.name} is read-only"


def _catch_up_with(lab: Lab, old: db.NodeState, candidates: list[db.NodeState]) -> str:
    # A planned switchover: the old primary still answers, so every replica can reach its GTIDs.
    for state in candidates:
        db.wait_applied(lab, state.node, old.gtid_executed, 10)
    return f"replicas have {old.node.name}'s transactions"


def _apply_relay_logs(lab: Lab, candidates: list[db.NodeState], applied: list[db.NodeState]) -> str:
    # In parallel: every candidate's wait is on the critical path of the RTO.
    with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
        timed = list(pool.map(lambda state: _apply_own_relay_log(lab, state.node), candidates))
    applied.extend(state for state, _ in timed)
    return "every candidate applied what it had received (" + "; ".join(detail for _, detail in timed) + ")"


def _apply_own_relay_log(lab: Lab, node: db.Node) -> tuple[db.NodeState, str]:
    """Stop receiving, wait until what was received is applied: the node's state after it, and
    how long each part took. One connection for all of it: a connect is a round trip too."""
    kind = db.lab_flavor(lab)
    started = time.monotonic()
    connection = db.connect(lab, node, 5.0)
    try:
        db.run_sql(connection, "STOP REPLICA IO_THREAD")
        stopped = time.monotonic()
        replica = db.run_sql(connection, "SHOW REPLICA STATUS")
        received = str((replica[0] if replica else {}).get(kind.received) or "")
        if received and int(db.run_sql(connection, kind.wait_applied, (received, 10))[0]["timed_out"] or 0):
            raise db.DbError(f"{node.name} did not apply the transactions it had received within 10 s")
        applied = time.monotonic()
        state = db.state_from(connection, node, kind)
    except mysql.connector.Error as exc:
        raise db.DbError(f"{node.name}: applying its relay log failed: {exc.msg or exc}") from exc
    finally:
        connection.close()
    return state, f"{node.name}: receiver stopped in {stopped - started:.2f} s, applied in {applied - stopped:.2f} s"


def _most_advanced(lab: Lab, applied: list[db.NodeState], to: str | None) -> db.Node:
    if to is not None:
        return db.node_named(lab, to)
    # Ties go to the lowest node number, so repeated drills pick the same node.
    return max(applied, key=lambda s: (s.transactions, -int(s.node.name.rsplit("-", 1)[1]))).node


def _promote(lab: Lab, node: db.Node) -> str:
    kind = db.lab_flavor(lab)
    semisync = db.db_block(lab).params["replication"] == "semisync"
    statements = ["STOP REPLICA", "RESET REPLICA ALL", *kind.writable(True),
                  *([f"SET GLOBAL {kind.semisync_source_switch} = ON"] if semisync else [])]
    db.execute(lab, node, statements)
    return f"{node.name} is the primary and writable"


def _repoint(lab: Lab, others: list[db.Node], source: str) -> str:
    for node in others:
        point_at(lab, node, source)
    return f"{', '.join(n.name for n in others) or 'no other replica'} now replicate from {source}"


def _router(lab: Lab) -> Block | None:
    database = db.db_block(lab).name
    return next((b for b in lab.blocks.values() if b.is_lb and b.params["backends"] == database), None)


def _wait_routed(lab: Lab, new_primary: str, timeout: float = 15.0) -> str:
    router = _router(lab)
    port = router.publish.get("writer") if router else None
    if router is None or port is None:
        return "no published writer route in this lab: clients must be pointed at the new primary"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _writer_answer(lab, port) == new_primary:
            return f"{router.service_base} sends writes to {new_primary}"
        time.sleep(0.05)
    raise db.DbError(f"{router.service_base} did not route writes to {new_primary} within {timeout:.0f} s")


def _writer_answer(lab: Lab, port: int) -> str | None:
    try:
        connection = db.connect(lab, db.Node("writer", lab.bind, port), 1.0)
    except db.DbError:
        return None
    try:
        rows = db.run_sql(connection, "SELECT @@hostname AS host, @@global.read_only AS ro")
        return str(rows[0]["host"]) if rows and not int(rows[0]["ro"]) else None
    except mysql.connector.Error:
        return None
    finally:
        connection.close()


class AutoFailover(db.BackgroundWatch):
    """Watches the primary from a thread and fails over when it stops answering (drill step)."""

    name = "labctl-auto-failover"

    def __init__(self, lab: Lab, progress: Progress) -> None:
        super().__init__()
        self.lab = lab
        self.progress = progress
        self.detected_at: float | None = None
        self.result: FailoverResult | None = None
        self.error: str | None = None

    def run(self) -> None:
        primary = db.current_primary(db.states(self.lab))
        if primary is None:
            self.error = "no primary to watch"
            return
        failures = 0
        while not self.stopping.wait(PROBE_INTERVAL_S):
            failures = 0 if _answers(self.lab, primary.node) else failures + 1
            if failures >= PROBE_FAILURES:
                self.detected_at = time.time()
                self.progress(f"auto failover: {primary.node.name} is not answering")
                self._fail_over()
                return

    def _fail_over(self) -> None:
        try:
            self.result = failover(self.lab, progress=lambda text: self.progress(f"auto failover: {text}"))
        except db.DbError as exc:
            self.error = str(exc)


def _answers(lab: Lab, node: db.Node) -> bool:
    try:
        db.connect(lab, node, 1.0).close()
        return True
    except db.DbError:
        return False
