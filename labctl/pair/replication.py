"""Both replication directions of a master-master pair: what each node says about itself,
the set-up at `labctl up` (each node the other's replica, GTID auto-positioned, writable
once it has caught up), and `labctl db status`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mysql.connector

from labctl.db.flavors import Flavor
from labctl.db.nodes import DbError, Node, connect, execute, run_sql, wait_reachable
from labctl.db.secrets import load_secrets
from labctl.db.setup import SCHEMA_STATEMENTS, user_statements
from labctl.model.lab import Block, Lab
from labctl.runtime import inventory

Progress = Callable[[str], None]
MYSQL = Flavor()
FAILED_TRANSACTION = re.compile(r"failed executing transaction '([^']+)'")
WORKER_FAILURE = re.compile(r"failed executing transaction [^;]*; ([^\n]*?), Error_code: (\d+)")
CATCH_UP_S = 60
# Rows the conflict and duplicate-key drills write; the app's ledger table is labctl.writes.
PAIR_TABLES = [
    "CREATE TABLE IF NOT EXISTS labctl.hot (id INT PRIMARY KEY, n BIGINT NOT NULL, "
    "last_writer VARCHAR(64) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS labctl.accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "email VARCHAR(128) NOT NULL UNIQUE, node VARCHAR(64) NOT NULL)",
]


@dataclass(frozen=True)
class PairView:
    """One node as it answered: writable or not, its GTIDs, and its replica channel."""

    name: str
    port: int
    reachable: bool
    read_only: bool = True
    gtid_executed: str = ""
    replica: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def source(self) -> str:
        return str(self.replica.get("Source_Host") or "")

    @property
    def replicating(self) -> bool:
        return (self.replica.get("Replica_IO_Running") == "Yes"
                and self.replica.get("Replica_SQL_Running") == "Yes")

    @property
    def sql_error(self) -> str:
        errno = int(self.replica.get("Last_SQL_Errno") or 0)
        if not errno:
            return ""
        message = str(self.replica.get("Last_SQL_Error") or "")
        # With parallel workers the channel only names the transaction; the worker's own
        # message is in the node's log (labctl.pair.workloads.worker_error reads it).
        failed = FAILED_TRANSACTION.search(message)
        return f"{errno}: transaction {failed.group(1)} failed" if failed else f"{errno}: {message}"

    @property
    def io_error(self) -> str:
        errno = int(self.replica.get("Last_IO_Errno") or 0)
        return f"{errno}: {self.replica.get('Last_IO_Error')}" if errno else ""


def nodes(lab: Lab, block: Block) -> list[Node]:
    """Both nodes with their published ports, node 1 first."""
    ports = block.host_ports("mysql")
    return [Node(name, lab.bind, port) for name, port in zip(block.instances(), ports, strict=True)]


def partner(lab: Lab, block: Block, node: Node) -> Node:
    """The other node of the pair."""
    return next(n for n in nodes(lab, block) if n != node)


def pair_view(lab: Lab, node: Node, timeout: float = 2.0) -> PairView:
    """Ask one node for its read-only flag, GTIDs and replica status."""
    try:
        connection = connect(lab, node, timeout)
    except DbError as exc:
        return PairView(node.name, node.port, False, error=str(exc))
    try:
        basics = run_sql(connection, "SELECT @@global.read_only AS ro, @@global.gtid_executed AS gtids")[0]
        replica = run_sql(connection, "SHOW REPLICA STATUS")
    except mysql.connector.Error as exc:
        return PairView(node.name, node.port, False, error=f"{node.name}: {exc.msg or exc}")
    finally:
        connection.close()
    return PairView(node.name, node.port, True, bool(int(basics["ro"])),
                    str(basics["gtids"] or "").replace("\n", ""), replica[0] if replica else {})


def pair_views(lab: Lab, block: Block) -> list[PairView]:
    """Both nodes' views, asked in parallel, node 1 first."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda node: pair_view(lab, node), nodes(lab, block)))


def writer_of(views: list[PairView]) -> str | None:
    """The node HAProxy's writer sends to: node 1 while it is writable, else node 2."""
    return next((v.name for v in views if v.reachable and not v.read_only), None)


def is_set_up(views: list[PairView]) -> bool:
    """True when each node has a replica channel from the other."""
    return len(views) == 2 and all(v.reachable for v in views) and \
        views[0].source == views[1].name and views[1].source == views[0].name


def ensure_pair(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """`up`: both directions replicating and both nodes writable, set up from empty logs the
    first time; a direction stopped by an error is repaired by rebuilding node 2."""
    first, second = nodes(lab, block)
    for node in (first, second):
        wait_reachable(lab, node, timeout)
    started = time.monotonic()
    views = pair_views(lab, block)
    if not is_set_up(views):
        set_up(lab, block, progress)
    elif any(v.sql_error for v in views):
        from labctl.pair.repair import rebuild_second

        rebuild_second(lab, block, progress)
    for index, node in enumerate((first, second), start=1):
        execute(lab, node, _auto_increment(block, index))
        resume(lab, block, node, progress)
    wait_replicating(lab, block, timeout)
    progress(f"{block.name}: {first.name} <-> {second.name} replicating both ways, both writable "
             f"({time.monotonic() - started:.1f} s)")


def _auto_increment(block: Block, offset: int) -> list[str]:
    # Also live, so `up --set db.auto_increment_offsets=...` needs no restart; new sessions see it.
    step, start = (2, offset) if block.params["auto_increment_offsets"] else (1, 1)
    return [f"SET GLOBAL auto_increment_increment = {step}", f"SET GLOBAL auto_increment_offset = {start}"]


def set_up(lab: Lab, block: Block, progress: Progress) -> None:
    """Node 1 holds the schema and users; node 2 replicates from it, then it from node 2."""
    first, second = nodes(lab, block)
    for node in (first, second):
        # Each node logged its own initialisation; those GTIDs must not reach the other.
        execute(lab, node, [*MYSQL.admin_writes(True), "STOP REPLICA", "RESET REPLICA ALL", MYSQL.reset_binlogs])
    passwords = load_secrets(lab.name)
    execute(lab, first, [*user_statements(passwords), *SCHEMA_STATEMENTS[:2], *PAIR_TABLES])
    point_at(lab, second, first.name)
    point_at(lab, first, second.name)
    progress(f"{block.name}: {second.name} replicates from {first.name} and {first.name} from {second.name}")


def point_at(lab: Lab, node: Node, source: str) -> None:
    """Make `node` a replica of `source` with GTID auto-positioning, and start the channel."""
    statement, params = MYSQL.change_source(source, "repl", load_secrets(lab.name)["repl"])
    connection = connect(lab, node, 5.0)
    try:
        run_sql(connection, "STOP REPLICA")
        run_sql(connection, statement, params)
        run_sql(connection, "START REPLICA")
    finally:
        connection.close()


def resume(lab: Lab, block: Block, node: Node, progress: Progress) -> None:
    """Start the node's channel if it stopped, let it apply what its partner has, then make
    it writable (a node back from a crash takes writes only once it has its partner's)."""
    view = pair_view(lab, node)
    if view.sql_error:
        # A stopped channel cannot catch up; `labctl up` repairs it (labctl.pair.repair).
        return
    if not view.replicating:
        execute(lab, node, ["START REPLICA"])
    if not view.read_only:
        return
    other = pair_view(lab, partner(lab, block, node))
    if other.reachable and not wait_applied(lab, node, other.gtid_executed, CATCH_UP_S):
        raise DbError(f"{node.name} did not apply what {other.name} has within {CATCH_UP_S} s; "
                      f"see 'labctl db status {lab.name}'")
    execute(lab, node, MYSQL.writable(True))
    progress(f"{block.name}: {node.name} is writable")


def wait_applied(lab: Lab, node: Node, gtids: str, timeout: int) -> bool:
    """Wait until `node` has applied `gtids`; False when it did not within `timeout` s."""
    connection = connect(lab, node, 5.0, read_timeout=timeout + 5)
    try:
        rows = run_sql(connection, MYSQL.wait_applied, (gtids, timeout))
    finally:
        connection.close()
    return not (rows and int(rows[0]["timed_out"] or 0))


def wait_replicating(lab: Lab, block: Block, timeout: float) -> None:
    """Wait until both channels' IO and SQL threads run."""
    deadline = time.monotonic() + timeout
    while True:
        views = pair_views(lab, block)
        if all(v.replicating for v in views):
            return
        if time.monotonic() > deadline:
            raise DbError(f"{block.name} does not replicate both ways: " + "; ".join(_problem(v) for v in views))
        time.sleep(0.5)


def _problem(view: PairView) -> str:
    if not view.reachable:
        return view.error
    return f"{view.name}: {view.sql_error or view.io_error or 'starting'}"


STATUS_COLUMNS = ["node", "writable", "source", "io_thread", "sql_thread", "behind_s", "txns", "error"]


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db status`: each node's writability and its channel from the other."""
    views = pair_views(lab, block)
    writer = writer_of(views)
    return {"lab": lab.name, "kind": "master-master",
            "title": f"{lab.name}: master-master pair {block.name}, HAProxy writes to {writer or 'no node'}",
            "writer": writer, "replicating_both_ways": all(v.replicating for v in views),
            "columns": STATUS_COLUMNS, "nodes": [_status_row(lab, v) for v in views]}


def worker_error(lab: Lab, node: str) -> str:
    """The last replication worker failure the node logged ('' when none)."""
    log = inventory.container_logs_tail(f"{lab.project}-{node}", 400)
    # A worker that stops because another failed (3030, commit order) says nothing of the cause.
    failures = [(text, code) for text, code in WORKER_FAILURE.findall(log)
                if "previous worker encountered an error" not in text]
    if not failures:
        return ""
    text, code = failures[-1]
    # "Could not execute Write_rows event on table t; Duplicate entry ..." keeps the last part.
    return f"{code}: {text.split('; ')[-1].strip()}"


def _status_row(lab: Lab, view: PairView) -> dict[str, Any]:
    row: dict[str, Any] = {"node": view.name, "port": view.port, "reachable": view.reachable}
    if not view.reachable:
        return {**row, "error": view.error}
    behind = view.replica.get("Seconds_Behind_Source")
    return {**row, "writable": not view.read_only, "source": view.source or None,
            "io_thread": view.replica.get("Replica_IO_Running"), "sql_thread": view.replica.get("Replica_SQL_Running"),
            "behind_s": None if behind is None else int(behind),
            "txns": MYSQL.transactions(view.gtid_executed), "gtid_executed": view.gtid_executed,
            "error": _channel_error(lab, view)}


def _channel_error(lab: Lab, view: PairView) -> str:
    return (worker_error(lab, view.name) if view.sql_error else "") or view.sql_error or view.io_error
