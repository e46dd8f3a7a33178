"""Two clients updating the same rows on two Galera nodes at once (a drill's `conflicting_updates`
step). Each client goes straight to its node's published port and runs short transactions
that add 1 to two rows of a small hot set. Galera certifies every writeset on every node: of
two concurrent transactions on the same row the one ordered second loses, and its client is
told ERROR 1213 (deadlock), at the UPDATE (its local transaction was aborted by the replicated
one: a brute-force abort) or at the COMMIT (a certification failure). Afterwards every node
must hold the same rows, and their sum must be exactly 2 for every acknowledged commit."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mysql.connector

from labctl.db.nodes import DbError, Node, connect, run_sql
from labctl.galera.cluster import Progress, nodes
from labctl.model.lab import Block, Lab

DEADLOCK = 1213
HOT_TABLE = "CREATE TABLE IF NOT EXISTS labctl.hot (id INT PRIMARY KEY, n BIGINT NOT NULL)"
COUNTERS = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts")
AGREE_TIMEOUT_S = 30.0
# Galera retries an autocommit statement that lost certification (wsrep_retry_autocommit = 1)
# before the client hears of it; a transaction of two statements is never retried, so every
# lost certification reaches the client as it would in an application.
STATEMENTS_PER_TRANSACTION = 2


@dataclass
class ClientTally:
    """What one client was told."""

    node: str
    commits: int = 0
    deadlocks: int = 0
    # Of the deadlocks, those the COMMIT was told (certification failed); the rest came at an
    # UPDATE whose transaction a replicated writeset had aborted (brute force).
    deadlocks_at_commit: int = 0
    other_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return self.commits + self.deadlocks + self.other_errors

    def to_json(self) -> dict[str, Any]:
        refused = self.deadlocks + self.other_errors
        return {"node": self.node, "attempts": self.attempts, "commits": self.commits, "deadlocks": self.deadlocks,
                "deadlocks_at_commit": self.deadlocks_at_commit, "other_errors": self.other_errors,
                "refused_share": round(refused / max(1, self.attempts), 4),
                "errors": dict(sorted(self.errors.items(), key=lambda kv: -kv[1])[:5])}


class ConflictClient(threading.Thread):
    """Transactions of two `n = n + 1` updates on random rows of the hot set, back to back."""

    def __init__(self, lab: Lab, node: Node, rows: int, until: float) -> None:
        super().__init__(name=f"labctl-conflict-{node.name}", daemon=True)
        self.lab, self.node, self.rows, self.until = lab, node, rows, until
        self.tally = ClientTally(node.name)
        self.committing = False

    def run(self) -> None:
        connection: Any = None
        while time.time() < self.until:
            try:
                if connection is None:
                    connection = connect(self.lab, self.node, 3)
                self._transaction(connection)
                self.tally.commits += 1
            except DbError as exc:
                self._count(None, str(exc))
                time.sleep(0.2)
            except mysql.connector.Error as exc:
                self._count(exc.errno, exc.msg or str(exc))
                connection = _rolled_back(connection)
        if connection is not None:
            with contextlib.suppress(mysql.connector.Error, OSError):
                connection.close()

    def _transaction(self, connection: Any) -> None:
        # cmd_query, not a cursor: the connector pings before each cursor, and a transaction
        # that a replicated writeset aborted between two statements answers that ping with the
        # deadlock, which the connector hides as "Connection not available".
        self.committing = False
        connection.cmd_query("START TRANSACTION")
        for row in random.sample(range(1, self.rows + 1), min(STATEMENTS_PER_TRANSACTION, self.rows)):
            connection.cmd_query(f"UPDATE labctl.hot SET n = n + 1 WHERE id = {int(row)}")
        self.committing = True
        connection.cmd_query("COMMIT")

    def _count(self, errno: int | None, text: str) -> None:
        if errno == DEADLOCK:
            self.tally.deadlocks += 1
            self.tally.deadlocks_at_commit += int(self.committing)
        else:
            self.tally.other_errors += 1
        key = f"{errno or 'connect'}: {text[:80]}"
        self.tally.errors[key] = self.tally.errors.get(key, 0) + 1


def _rolled_back(connection: Any) -> Any:
    """The connection after a failed transaction, or None when it is broken."""
    try:
        connection.cmd_query("ROLLBACK")
        return connection
    except mysql.connector.Error:
        with contextlib.suppress(mysql.connector.Error, OSError):
            connection.close()
        return None


def run_conflict(lab: Lab, block: Block, seconds: float, rows: int, progress: Progress,
                 through: list[str] | None = None) -> dict[str, Any]:
    """Reset the hot rows, run one client on each node of `through` (default: the first two)
    for `seconds`, then compare the counters and the rows on every node."""
    all_nodes = nodes(lab, block)
    chosen = [n for n in all_nodes if n.name in through] if through else all_nodes[:2]
    if through and len(chosen) != len(through):
        raise DbError(f"conflicting_updates through {', '.join(through)}: lab '{lab.name}' has "
                      f"{', '.join(n.name for n in all_nodes)}")
    _reset_hot_rows(lab, all_nodes, rows)
    before = {n.name: _counters(lab, n) for n in all_nodes}
    until = time.time() + seconds
    clients = [ConflictClient(lab, node, rows, until) for node in chosen]
    progress(f"write conflict: {len(clients)} clients on {', '.join(c.node.name for c in clients)} "
             f"updating the same {rows} rows for {seconds:g} s")
    for client in clients:
        client.start()
    for client in clients:
        client.join(seconds + 30)
    after = {n.name: _counters(lab, n) for n in all_nodes}
    rows_after = _agreed_rows(lab, all_nodes, progress)
    return conflict_report([c.tally for c in clients], before, after, rows_after, rows, seconds)


def _reset_hot_rows(lab: Lab, all_nodes: list[Node], rows: int) -> None:
    connection = connect(lab, all_nodes[0], 5)
    try:
        run_sql(connection, HOT_TABLE)
        run_sql(connection, "DELETE FROM labctl.hot")
        for row in range(1, rows + 1):
            run_sql(connection, "INSERT INTO labctl.hot (id, n) VALUES (%s, 0)", (row,))
    finally:
        connection.close()


def _counters(lab: Lab, node: Node) -> dict[str, int]:
    connection = connect(lab, node, 5)
    try:
        found = run_sql(connection, "SHOW GLOBAL STATUS WHERE Variable_name IN (%s, %s)", COUNTERS)
        return {str(r["Variable_name"]).lower(): int(r["Value"]) for r in found}
    finally:
        connection.close()


def _rows_on(lab: Lab, node: Node) -> dict[str, Any]:
    connection = connect(lab, node, 5)
    try:
        # wsrep_sync_wait: the read waits until this node has applied every earlier writeset.
        run_sql(connection, "SET SESSION wsrep_sync_wait = 1")
        found = run_sql(connection, "SELECT COUNT(*) AS count, COALESCE(SUM(n), 0) AS total, "
                                    "BIT_XOR(CRC32(CONCAT(id, ':', n))) AS checksum FROM labctl.hot")[0]
        return {"rows": int(found["count"]), "sum": int(found["total"]), "checksum": int(found["checksum"])}
    finally:
        connection.close()


def _agreed_rows(lab: Lab, all_nodes: list[Node], progress: Progress) -> dict[str, dict[str, Any]]:
    """Every node's rows, asked again until they agree (an applier may still be catching up)."""
    deadline = time.monotonic() + AGREE_TIMEOUT_S
    while True:
        found = {n.name: _rows_on(lab, n) for n in all_nodes}
        if len({(r["sum"], r["checksum"]) for r in found.values()}) == 1 or time.monotonic() > deadline:
            return found
        progress("write conflict: the nodes' rows differ; asking again")
        time.sleep(0.5)


def conflict_report(tallies: list[ClientTally], before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
                    rows_after: dict[str, dict[str, Any]], rows: int, seconds: float) -> dict[str, Any]:
    """The clients' counts, each node's counter increases, and whether the rows agree and add up."""
    commits = sum(t.commits for t in tallies)
    refused = sum(t.deadlocks + t.other_errors for t in tallies)
    attempts = commits + refused
    expected_sum = STATEMENTS_PER_TRANSACTION * commits if rows >= STATEMENTS_PER_TRANSACTION else commits
    sums = {r["sum"] for r in rows_after.values()}
    return {
        "seconds": seconds, "hot_rows": rows, "clients": [t.to_json() for t in tallies],
        "attempts": attempts, "commits": commits, "deadlocks": sum(t.deadlocks for t in tallies),
        "other_errors": sum(t.other_errors for t in tallies), "refused_share": round(refused / max(1, attempts), 4),
        "counters": {node: {key: after[node].get(key, 0) - before[node].get(key, 0) for key in COUNTERS}
                     for node in after},
        "rows_after": rows_after,
        "nodes_agree": len({(r["sum"], r["checksum"]) for r in rows_after.values()}) == 1,
        "expected_sum": expected_sum,
        "lost_updates": expected_sum - min(sums) if sums else None,
    }


def conflict_rows(conflict: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for a write conflict."""
    rows = [(f"client on {c['node']}", f"{c['commits']} commits, {c['deadlocks']} deadlocks (1213; "
             f"{c['deadlocks_at_commit']} at COMMIT), {c['other_errors']} other errors: "
             f"{c['refused_share']:.1%} refused",
             "transactions of two n = n + 1 updates on the hot rows")
            for c in conflict["clients"]]
    rows.append(("refused share", f"{conflict['refused_share']:.1%} of {conflict['attempts']} transactions",
                 f"{conflict['hot_rows']} hot rows, {conflict['seconds']:g} s, both clients at once"))
    counters = ", ".join(f"{node} +{c['wsrep_local_cert_failures']}/+{c['wsrep_local_bf_aborts']}"
                         for node, c in conflict["counters"].items())
    rows.append(("cert failures/BF aborts", counters, "wsrep_local_cert_failures / wsrep_local_bf_aborts "
                 "increase on each node"))
    agree = "the same" if conflict["nodes_agree"] else "DIFFERENT"
    sums = sorted({r["sum"] for r in conflict["rows_after"].values()})
    rows.append(("rows after", f"{agree} on {len(conflict['rows_after'])} nodes; sum {'/'.join(map(str, sums))}, "
                 f"expected {conflict['expected_sum']} (lost updates: {conflict['lost_updates']})",
                 "checksum of the hot rows on each node; 2 per acknowledged commit"))
    return rows
