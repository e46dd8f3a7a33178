"""The database nodes of a running lab, reached on their published ports, and what each one is."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mysql.connector
from mysql.connector.abstracts import MySQLConnectionAbstract

from labctl.db.flavors import Flavor, flavor

__all__ = ["BackgroundWatch", "DbError", "Flavor", "Node", "NodeState"]
from labctl.db.secrets import load_secrets
from labctl.errors import LabctlError, UsageError
from labctl.kinds.db import DbKind
from labctl.model.lab import Block, Lab

Row = dict[str, Any]


class BackgroundWatch:
    """A loop on a daemon thread that `stop` ends; subclasses write `run`, waiting on `stopping`."""

    name = "labctl-watch"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self.stopping.set()
        self._thread.join(timeout=timeout)


class DbError(LabctlError):
    """A database step failed: which node, what was asked, what the server said."""


@dataclass(frozen=True)
class Node:
    """One server of a db block: its service name and host port."""

    name: str
    host: str
    port: int


@dataclass
class NodeState:
    """What one node says about itself right now (reachable=False when it does not answer)."""

    node: Node
    reachable: bool
    error: str = ""
    read_only: bool = True
    gtid_executed: str = ""
    transactions: int = 0
    replica: Row = field(default_factory=dict)
    semisync_on: bool | None = None
    heartbeat: float | None = None

    @property
    def role(self) -> str:
        if not self.reachable:
            return "down"
        if self.replica:
            return "replica"
        return "standalone" if self.read_only else "primary"


DB_KIND = DbKind.name


def db_block(lab: Lab) -> Block:
    """The lab's db block; a lab without one gets a usage error."""
    for block in lab.blocks_of(DB_KIND):
        return block
    raise UsageError(f"lab '{lab.name}' has no db block; db commands work on the db-* labs")


def lab_flavor(lab: Lab) -> Flavor:
    return flavor(str(db_block(lab).params["flavor"]))


def nodes(lab: Lab) -> list[Node]:
    """Every node of the lab's db block, node 1 first."""
    block = db_block(lab)
    ports = block.host_ports("mysql")
    return [Node(name, lab.bind, port) for name, port in zip(block.instances(), ports, strict=True)]


def node_named(lab: Lab, name: str) -> Node:
    """A node by service name ('db-2') or dotted target ('db.2')."""
    wanted = name.replace(".", "-")
    for node in nodes(lab):
        if node.name == wanted:
            return node
    known = ", ".join(n.name for n in nodes(lab))
    raise UsageError(f"lab '{lab.name}' has no db node '{name}' (nodes: {known})")


def connect(lab: Lab, node: Node, timeout: float = 2.0, user: str = "root",
            read_timeout: int | None = None) -> MySQLConnectionAbstract:
    """An autocommit connection to one node, or a DbError naming the node. `timeout` bounds
    the connect only; `read_timeout` (seconds) bounds every answer after it.

    Without TLS first: its handshake in pure Python cost 0.1-0.25 s a connect on the loaded
    2-core machine against 2-9 ms without, and a failover connects many times. MySQL's
    caching_sha2_password refuses a plain-text login until the user has logged in once over
    TLS since the server started (it answers "access denied"), so that one is retried over TLS.
    """
    try:
        return _connect(lab, node, timeout, user, read_timeout, plain=True)
    except mysql.connector.Error as exc:
        if exc.errno not in PLAIN_LOGIN_REFUSED:
            raise _connect_error(node, exc) from exc
    try:
        return _connect(lab, node, timeout, user, read_timeout, plain=False)
    except mysql.connector.Error as exc:
        raise _connect_error(node, exc) from exc


# Access denied, and "authentication requires a secure connection".
PLAIN_LOGIN_REFUSED = (1045, 2061)


def _connect(lab: Lab, node: Node, timeout: float, user: str, read_timeout: int | None,
             plain: bool) -> MySQLConnectionAbstract:
    connection = mysql.connector.connect(
        host=node.host, port=node.port, user=user, password=load_secrets(lab.name)[user],
        connection_timeout=max(1, int(timeout)), read_timeout=read_timeout, autocommit=True, use_pure=True,
        ssl_disabled=plain,
    )
    if not isinstance(connection, MySQLConnectionAbstract):
        raise DbError(f"{node.name}: unexpected connection type {type(connection).__name__}")
    return connection


def _connect_error(node: Node, exc: mysql.connector.Error) -> DbError:
    return DbError(f"{node.name} ({node.host}:{node.port}): {exc.msg or exc}")


def run_sql(connection: MySQLConnectionAbstract, statement: str, params: tuple[Any, ...] = ()) -> list[Row]:
    """Run one statement; rows as dicts (empty for statements without a result)."""
    cursor: Any = connection.cursor(dictionary=True)
    try:
        cursor.execute(statement, params)
        rows = cursor.fetchall() if cursor.with_rows else []
        return [dict(row) for row in rows]
    finally:
        cursor.close()


def execute(lab: Lab, node: Node, statements: list[str], timeout: float = 5.0,
            read_timeout: int | None = None) -> None:
    """Run statements on a node in order; the first failure names the node and the statement.
    `timeout` bounds the connect; `read_timeout` (seconds, None: none) each statement."""
    connection = connect(lab, node, timeout, read_timeout=read_timeout)
    try:
        for statement in statements:
            try:
                run_sql(connection, statement)
            except mysql.connector.Error as exc:
                raise DbError(f"{node.name}: {statement!r} failed: {exc.msg or exc}") from exc
    finally:
        connection.close()


def wait_reachable(lab: Lab, node: Node, timeout: float) -> None:
    """Wait until a node accepts root connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connect(lab, node).close()
            return
        except DbError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def read_state(lab: Lab, node: Node, timeout: float = 2.0) -> NodeState:
    """One node's role, read-only flag, GTIDs, replication threads, semi-sync and heartbeat."""
    kind = lab_flavor(lab)
    try:
        connection = connect(lab, node, timeout)
    except DbError as exc:
        return NodeState(node, reachable=False, error=str(exc))
    try:
        return state_from(connection, node, kind)
    except mysql.connector.Error as exc:
        return NodeState(node, reachable=False, error=f"{node.name}: {exc.msg or exc}")
    finally:
        connection.close()


def state_from(connection: MySQLConnectionAbstract, node: Node, kind: Flavor) -> NodeState:
    """One node's state, asked over a connection the caller holds."""
    basics = run_sql(connection, f"SELECT @@global.read_only AS ro, {kind.gtid_variable} AS gtids")[0]
    replica_rows = run_sql(connection, "SHOW REPLICA STATUS")
    semisync = run_sql(connection, "SHOW GLOBAL STATUS LIKE %s", (kind.semisync_status,))
    gtids = str(basics["gtids"] or "").replace("\n", "")
    return NodeState(
        node, reachable=True, read_only=bool(int(basics["ro"])), gtid_executed=gtids,
        transactions=kind.transactions(gtids), replica=replica_rows[0] if replica_rows else {},
        semisync_on=(str(semisync[0]["Value"]).upper() == "ON") if semisync else None,
        heartbeat=_heartbeat(connection),
    )


def _heartbeat(connection: MySQLConnectionAbstract) -> float | None:
    try:
        rows = run_sql(connection, "SELECT UNIX_TIMESTAMP(ts) AS ts FROM labctl.heartbeat WHERE id = 1")
    except mysql.connector.Error:
        return None
    return float(rows[0]["ts"]) if rows else None


def states(lab: Lab) -> list[NodeState]:
    """Every node's state, node 1 first, all asked at once (a failover waits for the slowest)."""
    every = nodes(lab)
    with ThreadPoolExecutor(max_workers=len(every)) as pool:
        return list(pool.map(lambda node: read_state(lab, node), every))


def current_primary(found: list[NodeState]) -> NodeState | None:
    """The reachable writable node, if exactly one is writable."""
    writable = [s for s in found if s.role == "primary"]
    return writable[0] if len(writable) == 1 else None


def wait_applied(lab: Lab, node: Node, gtids: str, timeout: int) -> None:
    """Block until `node` has applied every transaction in `gtids` (or fail after `timeout` s)."""
    connection = connect(lab, node, timeout + 2)
    try:
        rows = run_sql(connection, lab_flavor(lab).wait_applied, (gtids, timeout))
    finally:
        connection.close()
    if rows and int(rows[0]["timed_out"] or 0):
        raise DbError(f"{node.name} did not apply {gtids} within {timeout} s")


def ledger_ids(lab: Lab, node: Node, prefixes: list[str]) -> set[str]:
    """The ids of the ledger's runs (by id prefix) that one node's labctl.writes holds."""
    connection = connect(lab, node, 10)
    try:
        found: set[str] = set()
        for prefix in prefixes:
            rows = run_sql(connection, "SELECT id FROM labctl.writes WHERE id LIKE %s", (f"{prefix}%",))
            found.update(str(row["id"]) for row in rows)
        return found
    except mysql.connector.Error as exc:
        raise DbError(f"{node.name}: reading the writes back failed: {exc.msg or exc}") from exc
    finally:
        connection.close()
