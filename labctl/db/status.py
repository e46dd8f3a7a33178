"""`labctl db status`: every node's role, threads, GTIDs, heartbeat lag and semi-sync state."""

from __future__ import annotations

from typing import Any

from labctl.db import nodes as db
from labctl.model.lab import Lab


def status(lab: Lab) -> dict[str, Any]:
    """The lab's replication as JSON-ready data: one row per node, and the overall picture."""
    kind = db.lab_flavor(lab)
    found = _primary_last(lab, db.states(lab))
    primary = db.current_primary(found)
    mode = str(db.db_block(lab).params["replication"])
    rows = [_row(state, primary, kind) for state in found]
    fell_back = bool(mode == "semisync" and primary is not None and primary.semisync_on is False)
    return {"lab": lab.name, "flavor": kind.name, "replication": mode,
            "primary": primary.node.name if primary else None,
            "fell_back_to_async": fell_back, "nodes": rows}


def _primary_last(lab: Lab, found: list[db.NodeState]) -> list[db.NodeState]:
    # The nodes are read one after the other, primary first: under writes the replicas read after it
    # showed transactions it did not have yet (12,124 vs 12,123). Read it again after them all.
    primary = db.current_primary(found)
    if primary is None:
        return found
    again = db.read_state(lab, primary.node)
    if again.role != "primary":
        return found
    return [again if state is primary else state for state in found]


def _row(state: db.NodeState, primary: db.NodeState | None, kind: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"node": state.node.name, "port": state.node.port, "role": state.role,
                           "reachable": state.reachable}
    if not state.reachable:
        return {**row, "error": state.error}
    row.update(read_only=state.read_only, gtid_executed=state.gtid_executed, transactions=state.transactions)
    if state.replica:
        behind = state.replica.get(kind.seconds_behind)
        row.update(source=state.replica.get(kind.source_host), io_thread=state.replica.get(kind.io_running),
                   sql_thread=state.replica.get(kind.sql_running),
                   seconds_behind_source=None if behind is None else int(behind),
                   lag_s=heartbeat_lag(state, primary), last_error=state.replica.get(kind.last_error) or "")
    if state.role == "primary":
        row["semisync"] = state.semisync_on
    return row


def heartbeat_lag(state: db.NodeState, primary: db.NodeState | None) -> float | None:
    """How far a replica's heartbeat row trails the primary's (1 s resolution, like pt-heartbeat)."""
    if primary is None or primary.heartbeat is None or state.heartbeat is None:
        return None
    return round(max(0.0, primary.heartbeat - state.heartbeat), 3)
