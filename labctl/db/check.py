"""`labctl db check`: do the nodes hold the same data? Row counts and checksums per table,
and errant transactions (a replica's GTIDs the primary never had)."""

from __future__ import annotations

import contextlib
from typing import Any

import mysql.connector

from labctl.db import nodes as db
from labctl.model.lab import Lab

TABLES = ("labctl.writes",)
CATCH_UP_S = 10


def check(lab: Lab) -> dict[str, Any]:
    """Consistency of every reachable node against the primary, as JSON-ready data."""
    kind = db.lab_flavor(lab)
    found = db.states(lab)
    primary = db.current_primary(found)
    if primary is None:
        raise db.DbError("no single writable primary to compare against; see 'labctl db status'")
    reachable = [s for s in found if s.reachable]
    for state in reachable:
        if state.replica:
            _catch_up(lab, state.node, primary.gtid_executed)
    # The primary is read last: it keeps writing heartbeats, so its GTID set read after the
    # replicas' covers everything they can have applied.
    ordered = sorted(reachable, key=lambda s: s.node == primary.node)
    rows = sorted((_node_row(lab, state.node, kind) for state in ordered), key=lambda r: str(r["node"]))
    reference = next(r for r in rows if r["node"] == primary.node.name)
    for row in rows:
        row["errant_gtids"] = kind.errant(row.pop("gtid_state"), reference["gtid_state_ref"])
        row["same_as_primary"] = row["tables"] == reference["tables"]
    for row in rows:
        row.pop("gtid_state_ref", None)
    consistent = all(r["same_as_primary"] and not r["errant_gtids"] for r in rows)
    return {"lab": lab.name, "primary": primary.node.name, "compared_with": primary.node.name,
            "consistent": consistent, "nodes": rows,
            "unreachable": [s.node.name for s in found if not s.reachable]}


def _catch_up(lab: Lab, node: db.Node, gtids: str) -> None:
    with contextlib.suppress(mysql.connector.Error, db.DbError):
        db.wait_applied(lab, node, gtids, CATCH_UP_S)  # a replica that cannot catch up shows as different below


def _node_row(lab: Lab, node: db.Node, kind: Any) -> dict[str, Any]:
    connection = db.connect(lab, node, 10)
    try:
        tables = {table: table_summary(connection, table) for table in TABLES}
        state = db.run_sql(connection, f"SELECT {kind.state_variable} AS state")[0]["state"]
    finally:
        connection.close()
    text = str(state or "").replace("\n", "")
    return {"node": node.name, "tables": tables, "gtid_state": text, "gtid_state_ref": text}


def table_summary(connection: Any, table: str) -> dict[str, Any]:
    """Row count and CHECKSUM TABLE of one table (or the error the server gave)."""
    try:
        count = db.run_sql(connection, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
        checksum = db.run_sql(connection, f"CHECKSUM TABLE {table}")[0]["Checksum"]
    except mysql.connector.Error as exc:
        return {"error": exc.msg or str(exc)}
    return {"rows": int(count), "checksum": None if checksum is None else int(checksum)}
