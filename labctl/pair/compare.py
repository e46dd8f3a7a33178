"""`labctl db check` on a master-master pair: once each node has applied what the other has,
do they hold the same rows? Checksums per table, and the transactions only one of them has."""

from __future__ import annotations

from typing import Any

from labctl.db.check import table_summary
from labctl.db.nodes import connect
from labctl.model.lab import Block, Lab
from labctl.pair.replication import MYSQL, nodes, pair_views
from labctl.pair.workloads import converge

TABLES = ("labctl.writes", "labctl.hot", "labctl.accounts")


def check(lab: Lab, block: Block) -> dict[str, Any]:
    """Both nodes' tables and GTIDs compared, as JSON-ready data; node 1 is the reference."""
    converged = converge(lab, block)
    views = pair_views(lab, block)
    reachable = [v for v in views if v.reachable]
    rows = [_node_row(lab, node) for node in nodes(lab, block) if node.name in {v.name for v in reachable}]
    reference = rows[0] if rows else None
    for row, view in zip(rows, reachable, strict=True):
        other = next((v for v in reachable if v is not view), None)
        row["extra_gtids"] = MYSQL.errant(view.gtid_executed, other.gtid_executed) if other else ""
        row["differs"] = sorted(t for t in TABLES if reference is None or row["tables"][t] != reference["tables"][t])
        row["same_as_reference"] = not row["differs"]
    consistent = len(rows) == 2 and all(r["same_as_reference"] and not r["extra_gtids"] for r in rows)
    return {"lab": lab.name, "compared_with": nodes(lab, block)[0].name, "consistent": consistent,
            "converged": converged, "nodes": rows, "unreachable": [v.name for v in views if not v.reachable]}


def _node_row(lab: Lab, node: Any) -> dict[str, Any]:
    connection = connect(lab, node, 10)
    try:
        return {"node": node.name, "tables": {table: table_summary(connection, table) for table in TABLES}}
    finally:
        connection.close()
