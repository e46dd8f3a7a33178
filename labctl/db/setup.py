"""Replication setup at `labctl up`: users, schema, GTID auto-positioned replicas, semi-sync."""

from __future__ import annotations

import time
from collections.abc import Callable

from labctl.db import nodes as db
from labctl.db.flavors import Flavor
from labctl.db.mode import ensure_mode
from labctl.db.secrets import load_secrets
from labctl.model.lab import Lab

Progress = Callable[[str], None]

SCHEMA_STATEMENTS = [
    "CREATE DATABASE IF NOT EXISTS labctl",
    "CREATE TABLE IF NOT EXISTS labctl.writes (id VARCHAR(64) PRIMARY KEY, served_by VARCHAR(64), "
    "created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))",
    # The heartbeat row measures lag the way pt-heartbeat does: the primary stamps it every
    # second; a replica's copy is as old as the replica is behind.
    "CREATE TABLE IF NOT EXISTS labctl.heartbeat (id INT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL, "
    "source VARCHAR(64) NOT NULL)",
    "REPLACE INTO labctl.heartbeat (id, ts, source) VALUES (1, NOW(6), @@hostname)",
]
# Every node gets its own copy of the event, kept out of the binary log, and only a writable
# node stamps: so the heartbeat follows the primary through failovers with nothing to enable.
HEARTBEAT_EVENT = [
    "SET SESSION sql_log_bin = 0",
    "CREATE EVENT IF NOT EXISTS labctl.heartbeat_tick ON SCHEDULE EVERY 1 SECOND DO "
    "IF @@global.read_only = 0 THEN "
    "REPLACE INTO labctl.heartbeat (id, ts, source) VALUES (1, NOW(6), @@hostname); END IF",
    "SET SESSION sql_log_bin = 1",
]


def user_statements(passwords: dict[str, str]) -> list[str]:
    """The replication and app users, and the app's grants on the labctl schema."""
    return [
        f"CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '{passwords['repl']}'",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'",
        f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{passwords['app']}'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON labctl.* TO 'app'@'%'",
    ]


def is_set_up(lab: Lab) -> bool:
    """True when the lab's nodes already replicate (an `up` of a running lab changes nothing)."""
    found = db.states(lab)
    return any(s.heartbeat is not None for s in found) and any(s.replica for s in found)


def ensure_replication(lab: Lab, progress: Progress, timeout: float = 90.0) -> None:
    """Set up replication on fresh nodes, then wait until every replica replicates."""
    all_nodes = db.nodes(lab)
    for node in all_nodes:
        db.wait_reachable(lab, node, timeout)
    if not is_set_up(lab):
        started = time.monotonic()
        set_up(lab, progress)
        progress(f"db: replication set up in {time.monotonic() - started:.1f} s")
    else:
        ensure_mode(lab, progress)
    wait_replicating(lab, timeout, progress)


def set_up(lab: Lab, progress: Progress) -> None:
    """Make node 1 the primary and every other node its replica, from empty binary logs."""
    kind = db.lab_flavor(lab)
    passwords = load_secrets(lab.name)
    primary, *replicas = db.nodes(lab)
    for node in (primary, *replicas):
        # Each node logged its own initialisation; those GTIDs must not reach the others.
        db.execute(lab, node, [*kind.writable(True), "STOP REPLICA", "RESET REPLICA ALL", kind.reset_binlogs,
                               *kind.after_reset()])
    progress(f"db: {primary.name} is the primary")
    db.execute(lab, primary, [*user_statements(passwords), *SCHEMA_STATEMENTS, *HEARTBEAT_EVENT,
                              *_semisync_source(lab, kind, True)])
    for replica in replicas:
        point_at(lab, replica, primary.name)
        progress(f"db: {replica.name} replicates from {primary.name}")
    wait_replicating(lab, 60, progress)
    for replica in replicas:
        install_heartbeat_event(lab, replica)


def install_heartbeat_event(lab: Lab, replica: db.Node) -> None:
    """Give a read-only node its own (idle until promoted) heartbeat event."""
    kind = db.lab_flavor(lab)
    db.execute(lab, replica, [*kind.admin_writes(True), *HEARTBEAT_EVENT, *kind.admin_writes(False)])


def _semisync_source(lab: Lab, kind: Flavor, on: bool) -> list[str]:
    if db.db_block(lab).params["replication"] != "semisync":
        return []
    return [f"SET GLOBAL {kind.semisync_source_switch} = {'ON' if on else 'OFF'}"]


def point_at(lab: Lab, replica: db.Node, source: str) -> None:
    """Make a node a read-only replica of `source` with GTID auto-positioning, and start it."""
    kind = db.lab_flavor(lab)
    passwords = load_secrets(lab.name)
    statement, params = kind.change_source(source, "repl", passwords["repl"])
    connection = db.connect(lab, replica, 5.0)
    try:
        for sql in ("STOP REPLICA", *_semisync_source(lab, kind, False), *kind.writable(False)):
            db.run_sql(connection, sql)
        db.run_sql(connection, statement, params)
        db.run_sql(connection, "START REPLICA")
    finally:
        connection.close()


def wait_replicating(lab: Lab, timeout: float, progress: Progress) -> None:
    """Wait until every replica's IO and SQL threads run and it has the primary's heartbeat."""
    kind = db.lab_flavor(lab)
    deadline = time.monotonic() + timeout
    while True:
        lagging = _not_replicating(lab, kind)
        if not lagging:
            progress("db: every replica is replicating")
            return
        if time.monotonic() > deadline:
            raise db.DbError("replication did not start: " + "; ".join(lagging))
        time.sleep(0.5)


def _not_replicating(lab: Lab, kind: Flavor) -> list[str]:
    problems = []
    for state in db.states(lab):
        if not state.reachable:
            problems.append(state.error)
        elif state.role == "replica" and not (
            state.replica.get(kind.io_running) == "Yes" and state.replica.get(kind.sql_running) == "Yes"
            and state.heartbeat is not None
        ):
            error = state.replica.get(kind.last_error) or state.replica.get("Last_IO_Error") or "starting"
            problems.append(f"{state.node.name}: {error}")
    return problems
