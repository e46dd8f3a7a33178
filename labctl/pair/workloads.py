"""What the pair's drills do to it besides the app's load: two clients updating the same rows
on the two nodes at once, and two inserts of the same unique key at the same instant."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import mysql.connector

from labctl.db.nodes import BackgroundWatch, DbError, Node, connect, execute, run_sql
from labctl.model.lab import Block, Lab
from labctl.pair.replication import PairView, nodes, pair_view, wait_applied, worker_error

CONVERGE_S = 20
STOPPED_WITHIN_S = 10.0
ROUNDS = 3


class RowUpdater(BackgroundWatch):
    """One client on one node: `n = n + 1` on the hot rows in turn, as fast as it commits, then
    one last update of every hot row that commits at the same instant as its partner's."""

    name = "labctl-pair-updater"

    def __init__(self, lab: Lab, node: Node, rows: int, seconds: float, gate: threading.Barrier) -> None:
        super().__init__()
        self.lab, self.node, self.rows, self.seconds, self.gate = lab, node, rows, seconds, gate
        self.committed = 0
        self.errors: dict[str, int] = {}

    def run(self) -> None:
        try:
            connection = connect(self.lab, self.node, 5.0, user="app", read_timeout=5)
        except DbError:
            self.errors["connect"] = 1
            self.gate.abort()
            return
        deadline = time.monotonic() + self.seconds
        try:
            row = 0
            while time.monotonic() < deadline and not self.stopping.is_set():
                self._attempt(connection, [("UPDATE labctl.hot SET n = n + 1, last_writer = %s WHERE id = %s",
                                            (self.node.name, row % self.rows + 1))])
                row += 1
            self._last_update(connection)
        finally:
            connection.close()

    def _last_update(self, connection: Any) -> None:
        # Whether the nodes end up different depends on which update each applies last; two
        # application servers updating the same rows in the same instant decide it: each node
        # commits its own, then applies its partner's over it, so each ends with the other's.
        try:
            run_sql(connection, "BEGIN")
            run_sql(connection, "UPDATE labctl.hot SET n = n + 1, last_writer = %s", (self.node.name,))
            self.gate.wait(10)
        except (mysql.connector.Error, threading.BrokenBarrierError) as exc:
            self._count(exc)
            return
        self._attempt(connection, [("COMMIT", ())])

    def _attempt(self, connection: Any, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        try:
            for statement, params in statements:
                run_sql(connection, statement, params)
            self.committed += 1
        except mysql.connector.Error as exc:
            self._count(exc)

    def _count(self, exc: Exception) -> None:
        key = str(getattr(exc, "errno", None) or type(exc).__name__)
        self.errors[key] = self.errors.get(key, 0) + 1


def reset_hot_rows(lab: Lab, block: Block, rows: int) -> None:
    """Give the hot rows the same starting values on both nodes (written on node 1)."""
    first, second = nodes(lab, block)
    values = ", ".join(f"({i}, 0, 'start')" for i in range(1, rows + 1))
    execute(lab, first, ["DELETE FROM labctl.hot", f"INSERT INTO labctl.hot (id, n, last_writer) VALUES {values}"])
    if not wait_applied(lab, second, pair_view(lab, first).gtid_executed, CONVERGE_S):
        raise DbError(f"{second.name} did not take the hot rows from {first.name}; see 'labctl db status'")


def converge(lab: Lab, block: Block) -> bool:
    """Let each node apply everything the other has; False if one could not within CONVERGE_S."""
    views = [pair_view(lab, node) for node in nodes(lab, block)]
    done = True
    for node, other in zip(nodes(lab, block), reversed(views), strict=True):
        if other.reachable and not _replication_stopped(pair_view(lab, node)):
            done &= wait_applied(lab, node, other.gtid_executed, CONVERGE_S)
    return done


def _replication_stopped(view: PairView) -> bool:
    return bool(view.sql_error) or view.replica.get("Replica_SQL_Running") == "No"


def hot_rows(lab: Lab, node: Node) -> dict[int, tuple[int, str]]:
    """Each hot row's (n, last_writer) as one node holds it."""
    connection = connect(lab, node, 5.0)
    try:
        rows = run_sql(connection, "SELECT id, n, last_writer FROM labctl.hot ORDER BY id")
    finally:
        connection.close()
    return {int(r["id"]): (int(r["n"]), str(r["last_writer"])) for r in rows}


def conflict_report(lab: Lab, block: Block, updaters: list[RowUpdater]) -> dict[str, Any]:
    """What each client committed, what each node holds afterwards, and whether they differ."""
    converged = converge(lab, block)
    held = {node.name: hot_rows(lab, node) for node in nodes(lab, block)}
    committed = sum(u.committed for u in updaters)
    first, second = held.values()
    differing = sorted(i for i in first.keys() | second.keys() if first.get(i) != second.get(i))
    return {
        "clients": {u.node.name: {"committed": u.committed, "errors": u.errors} for u in updaters},
        "increments_committed": committed,
        "nodes": {name: {"sum_n": sum(n for n, _ in rows.values()),
                         "increments_lost": committed - sum(n for n, _ in rows.values())}
                  for name, rows in held.items()},
        "rows": len(first), "rows_differing": len(differing), "differing_ids": differing[:20],
        "converged": converged, "diverged": bool(differing),
    }


def insert_same_key(lab: Lab, block: Block, key: str) -> dict[str, Any]:
    """Both nodes insert an account at the same instant: the same email (`email`) or each its
    own email with a generated id (`auto_increment`), for up to ROUNDS rounds, until a channel
    stops. (Without offsets, the two id counters agree only once each node has applied the
    other's last insert, so the first round may pass.)"""
    rounds = []
    for _ in range(1 if key == "email" else ROUNDS):
        rounds.append(_insert_round(lab, block, key))
        if rounds[-1]["replication_stopped"]:
            break
    return {"key": key, **rounds[-1], "rounds": len(rounds),
            "ids": [{n: i.get("id") for n, i in r["inserts"].items()} for r in rounds]}


def _insert_round(lab: Lab, block: Block, key: str) -> dict[str, Any]:
    email = f"dup-{uuid.uuid4().hex[:12]}@lab.test"
    pair = nodes(lab, block)
    gate = threading.Barrier(len(pair))
    emails = {node.name: email if key == "email" else f"{node.name}-{email}" for node in pair}
    outcomes: dict[str, dict[str, Any]] = {}

    def insert(node: Node) -> None:
        outcomes[node.name] = _insert_at(lab, node, gate, emails[node.name])

    threads = [threading.Thread(target=insert, args=(node,)) for node in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    stopped = _wait_stopped(lab, block, sorted(set(emails.values())))
    return {"email": email, "inserts": outcomes, "channels": stopped,
            "replication_stopped": any(v["sql_error"] for v in stopped.values())}


def _insert_at(lab: Lab, node: Node, gate: threading.Barrier, email: str) -> dict[str, Any]:
    connection = connect(lab, node, 5.0, user="app", read_timeout=5)
    try:
        # Both inserts are in before either commits, so neither node has the other's row yet:
        # two application servers taking the same sign-up at once.
        run_sql(connection, "BEGIN")
        run_sql(connection, "INSERT INTO labctl.accounts (email, node) VALUES (%s, %s)", (email, node.name))
        row = run_sql(connection, "SELECT LAST_INSERT_ID() AS id")[0]
        gate.wait(10)
        run_sql(connection, "COMMIT")
        return {"committed": True, "id": int(row["id"])}
    except mysql.connector.Error as exc:
        return {"committed": False, "error": f"{exc.errno}: {exc.msg}"}
    finally:
        connection.close()


def _wait_stopped(lab: Lab, block: Block, emails: list[str]) -> dict[str, dict[str, Any]]:
    # A channel stops when it applies the partner's row: within milliseconds here. Without a
    # collision each node soon holds both rows instead.
    deadline = time.monotonic() + STOPPED_WITHIN_S
    while True:
        views = [pair_view(lab, node) for node in nodes(lab, block)]
        if any(v.sql_error for v in views) or _both_hold(lab, block, emails) or time.monotonic() > deadline:
            return {v.name: {"sql_thread": v.replica.get("Replica_SQL_Running"), "sql_error": v.sql_error,
                             "worker_error": worker_error(lab, v.name) if v.sql_error else ""} for v in views}
        time.sleep(0.2)


def _both_hold(lab: Lab, block: Block, emails: list[str]) -> bool:
    # Only two different emails can both arrive on both nodes; the same one collides (or waits).
    if len(emails) < 2:
        return False
    marks = ", ".join(["%s"] * len(emails))
    for node in nodes(lab, block):
        connection = connect(lab, node, 5.0)
        try:
            rows = run_sql(connection, f"SELECT COUNT(*) AS n FROM labctl.accounts WHERE email IN ({marks})",
                           tuple(emails))
        finally:
            connection.close()
        if int(rows[0]["n"]) < len(emails):
            return False
    return True
