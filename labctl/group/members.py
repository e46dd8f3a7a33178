"""What a Group Replication group says about itself, member by member through the published
ports, and its set-up: labctl does over SQL what MySQL Shell's dba.createCluster() would
(there is no MySQL Shell in Debian): a recovery user on every member, the first member
bootstraps the group, the others join one at a time and catch up by distributed recovery."""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import mysql.connector

from labctl.db.nodes import DbError, Node, connect, execute, ledger_ids, run_sql
from labctl.db.secrets import load_secrets
from labctl.db.setup import SCHEMA_STATEMENTS
from labctl.durations import duration_ms
from labctl.errors import UsageError
from labctl.kinds.group import RECOVERY_RECONNECT_S
from labctl.model.lab import Block, Lab
from labctl.runtime import inventory

Progress = Callable[[str], None]
ONLINE = "ONLINE"
PRIMARY = "PRIMARY"
# START GROUP_REPLICATION returns once the member is in the group's view; a joiner's recovery
# (or a clone) may take a while longer.
START_TIMEOUT_S = 60
# STOP GROUP_REPLICATION on a member that cannot reach the group returns only when group
# communication gives up leaving it: 82 s here ("Timeout while waiting for the group
# communication engine to exit"), measured on a member STOPped while still partitioned.
STOP_TIMEOUT_S = 120
# A joiner still RECOVERING after this long is stopped and started again (its recovery may be
# waiting out group_replication_recovery_reconnect_interval after a donor failed it).
REJOIN_ATTEMPT_S = 60.0
MEMBERS_QUERY = ("SELECT MEMBER_ID AS id, MEMBER_HOST AS host, MEMBER_STATE AS state, MEMBER_ROLE AS role "
                 "FROM performance_schema.replication_group_members ORDER BY MEMBER_HOST")
SELF_QUERY = "SELECT @@server_uuid AS uuid, @@global.super_read_only AS ro, @@global.gtid_executed AS gtids"
# The drill's probes write here, one row per probe, never into the ledger's table.
PROBE_TABLE = ("CREATE TABLE IF NOT EXISTS labctl.probes (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
               "node VARCHAR(64) NOT NULL, at DOUBLE NOT NULL)")


@dataclass(frozen=True)
class MemberView:
    """One member's view of the group as it answered (or not)."""

    name: str
    port: int
    reachable: bool
    members: list[dict[str, str]] = field(default_factory=list)
    uuid: str = ""
    read_only: bool = True
    gtids: str = ""
    error: str = ""
    at: float = 0.0

    @property
    def me(self) -> dict[str, str]:
        return next((m for m in self.members if m["id"] == self.uuid), {})

    @property
    def state(self) -> str:
        return self.me.get("state") or ("OFFLINE" if self.reachable else "down")

    @property
    def role(self) -> str:
        return self.me.get("role") or ""

    @property
    def online(self) -> int:
        return sum(1 for m in self.members if m["state"] == ONLINE)

    @property
    def in_majority(self) -> bool:
        """ONLINE, and more than half of the members in its view are ONLINE with it."""
        return self.state == ONLINE and 2 * self.online > len(self.members)

    @property
    def writable(self) -> bool:
        return self.in_majority and self.role == PRIMARY and not self.read_only


def nodes(lab: Lab, block: Block) -> list[Node]:
    """Every member of the block with its published port, member 1 first."""
    ports = block.host_ports("mysql")
    return [Node(name, lab.bind, port) for name, port in zip(block.instances(), ports, strict=True)]


def member_view(lab: Lab, node: Node, timeout: float = 1.0) -> MemberView:
    """Ask one member who it is and what it sees of the group."""
    at = time.time()
    try:
        connection = connect(lab, node, timeout)
    except DbError as exc:
        return MemberView(node.name, node.port, False, error=str(exc), at=at)
    try:
        me = run_sql(connection, SELF_QUERY)[0]
        members = [{k: str(v or "") for k, v in row.items()} for row in run_sql(connection, MEMBERS_QUERY)]
    except mysql.connector.Error as exc:
        return MemberView(node.name, node.port, False, error=f"{node.name}: {exc.msg or exc}", at=at)
    finally:
        connection.close()
    return MemberView(node.name, node.port, True, members, str(me["uuid"]), bool(int(me["ro"])),
                      str(me["gtids"]).replace("\n", ""), at=at)


def group_views(lab: Lab, block: Block) -> list[MemberView]:
    """Every member's view, asked in parallel, member 1 first."""
    found = nodes(lab, block)
    with ThreadPoolExecutor(max_workers=len(found)) as pool:
        return list(pool.map(lambda node: member_view(lab, node), found))


def primary_of(views: list[MemberView]) -> str | None:
    """The member HAProxy's writer sends to: writable in a majority (the first, in multi-primary)."""
    return next((v.name for v in views if v.writable), None)


def whole(views: list[MemberView], count: int) -> bool:
    """Every member ONLINE in one view of `count` members."""
    return len(views) == count and all(v.state == ONLINE and v.online == count for v in views)


def describe(views: list[MemberView]) -> str:
    """One line: each member's state and role in its own view, or why it does not answer."""
    return ", ".join(f"{v.name} {v.state}{'/' + v.role if v.role and v.state == ONLINE else ''}"
                     f" ({v.online}/{len(v.members)} online)" if v.reachable else f"{v.name} down"
                     for v in views)


def wait_for(lab: Lab, block: Block, done: Callable[[list[MemberView]], bool], what: str,
             timeout: float, progress: Progress) -> list[MemberView]:
    """Ask every member until `done` holds for their views; a DbError naming `what` past `timeout`."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        views = group_views(lab, block)
        if done(views):
            return views
        line = describe(views)
        if line != shown:
            progress(f"{block.name}: {line}")
            shown = line
        if time.monotonic() > deadline:
            raise DbError(f"{block.name}: {what} did not happen within {timeout:.0f} s: {line}")
        time.sleep(0.5)


def wait_whole(lab: Lab, block: Block, timeout: float, progress: Progress) -> list[MemberView]:
    """Wait until every member is ONLINE in one view of them all."""
    return wait_for(lab, block, lambda views: whole(views, block.node_count),
                    f"all {block.node_count} members ONLINE", timeout, progress)


def ensure_group(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """`up`: the group formed (or found), the schema and the app's user on it, every member ONLINE."""
    started = time.monotonic()
    views = wait_for(lab, block, lambda vs: all(v.reachable for v in vs), "every member answering",
                     timeout, progress)
    if primary_of(views) is None:
        _bootstrap(lab, block, views, progress)
    _create_schema(lab, block)
    rejoin_all(lab, block, progress, timeout)
    apply_settings(lab, block, progress)
    views = wait_whole(lab, block, timeout, progress)
    progress(f"{block.name}: {len(views)} members ONLINE, primary {primary_of(views)} "
             f"({block.params['mode']}) after {time.monotonic() - started:.1f} s")


def rejoin_all(lab: Lab, block: Block, progress: Progress, timeout: float = 180.0) -> list[MemberView]:
    """Every member that is not ONLINE (OFFLINE after a restart, ERROR once expelled), or is
    ONLINE only in a stale view of its own (see needs_rejoin), joins the group again, one at a
    time; then every member is ONLINE."""
    views = group_views(lab, block)
    for view in views:
        if needs_rejoin(view, views):
            rejoin_member(lab, block, view.name, progress, timeout)
    return wait_whole(lab, block, timeout, progress)


def needs_rejoin(view: MemberView, views: list[MemberView]) -> bool:
    """Not ONLINE; or ONLINE in its own view while another member, in a majority, does not
    count it ONLINE. A member cut off and healed keeps its old view (after the heal even "3
    of 3 online") until it hears it was expelled; if its XCom never gets that far it stays so
    for ever, with unreachable_majority_timeout 0, and the group is never whole again."""
    if view.state != ONLINE:
        return True
    return any(v.in_majority and not _counts_online(v, view.uuid) for v in views if v.name != view.name)


def _counts_online(view: MemberView, uuid: str) -> bool:
    return any(m["id"] == uuid and m["state"] == ONLINE for m in view.members)


def rejoin_member(lab: Lab, block: Block, name: str, progress: Progress, timeout: float) -> None:
    """START GROUP_REPLICATION (after STOP, unless OFFLINE) until the member is ONLINE. A
    join or a recovery that failed (the member back in ERROR or OFFLINE, or still RECOVERING
    after REJOIN_ATTEMPT_S) is stopped and started again; past `timeout`, a DbError with the
    member's last errors."""
    deadline = time.monotonic() + timeout
    for attempt in itertools.count(1):
        view = member_view(lab, _node(lab, block, name), 5)
        state = view.state if view.state != ONLINE else f"ONLINE in a stale view, {view.online}/{len(view.members)}"
        progress(f"{block.name}: {name} ({state}) joins the group" + (f", attempt {attempt}" if attempt > 1 else ""))
        try:
            start_member(lab, block, name)
            views = wait_for(lab, block, partial(_joined_or_failed, name=name), f"{name} ONLINE",
                             min(REJOIN_ATTEMPT_S, max(1.0, deadline - time.monotonic())), progress)
            if _online(views, name):
                return
            failure = f"{name} is {next(v.state for v in views if v.name == name)} again"
        except DbError as exc:
            failure = str(exc)
        if time.monotonic() > deadline:
            raise DbError(f"{block.name}: {name} did not rejoin within {timeout:.0f} s ({attempt} attempts; "
                          f"last: {failure}); its last errors: {last_errors(lab, name)}")
        progress(f"{block.name}: {failure}; stopping and starting it again")


def _joined_or_failed(views: list[MemberView], name: str) -> bool:
    view = next(v for v in views if v.name == name)
    return view.state in (ONLINE, "ERROR", "OFFLINE")


def last_errors(lab: Lab, name: str, count: int = 3) -> str:
    """The member's last [ERROR] lines from its log, for a message that says why."""
    lines = inventory.container_logs_tail(f"{lab.project}-{name}", 400).splitlines()
    errors = [line.split("] ", 3)[-1][:200] for line in lines if "[ERROR]" in line]
    return " | ".join(errors[-count:]) or "none in its log"


def apply_settings(lab: Lab, block: Block, progress: Progress) -> None:
    """The lab's timeouts, consistency and mode on the running members: the first three are dynamic, and the
    mode switches with MySQL's own functions, so `up --set` changes a running group (the
    rendered config holds the same values for a member's next start)."""
    seconds = {key: duration_ms(str(block.params[key])) // 1000
               for key in ("expel_timeout", "unreachable_majority_timeout")}
    statements = [f"SET GLOBAL group_replication_member_expel_timeout = {seconds['expel_timeout']}",
                  "SET GLOBAL group_replication_unreachable_majority_timeout = "
                  f"{seconds['unreachable_majority_timeout']}",
                  f"SET GLOBAL group_replication_consistency = '{str(block.params['consistency']).upper()}'",
                  f"SET GLOBAL group_replication_recovery_reconnect_interval = {RECOVERY_RECONNECT_S}"]
    wanted = str(block.params["consistency"]).upper()
    changed = [node for node in nodes(lab, block) if _global(lab, node, "group_replication_consistency") != wanted]
    for node in nodes(lab, block):
        execute(lab, node, statements, 10)
    if changed:
        # A session takes its consistency from the global value when it connects: the app's
        # pooled connections would keep the old one. The app reconnects on the next request.
        progress(f"{block.name}: consistency {wanted}; closing the app's connections so they reconnect with it")
        for node in nodes(lab, block):
            _kill_sessions(lab, node, "app")
    switch_mode(lab, block, progress)


def switch_mode(lab: Lab, block: Block, progress: Progress) -> None:
    """The group in the block's mode, switched live with MySQL's own functions. Back to
    single-primary, the member HAProxy's writer used first stays primary (MySQL would
    otherwise elect one by weight and UUID)."""
    single = block.params["mode"] == "single-primary"
    views = group_views(lab, block)
    primary = _node(lab, block, primary_of(views) or block.instances()[0])
    if _single_primary(lab, primary) == single:
        return
    progress(f"{block.name}: switching the group to {block.params['mode']} mode")
    uuid = next(v.uuid for v in views if v.name == primary.name)
    switch = (f"group_replication_switch_to_single_primary_mode('{uuid}')" if single
              else "group_replication_switch_to_multi_primary_mode()")
    execute(lab, primary, [f"SELECT {switch}"], START_TIMEOUT_S)


def require_multi_primary(lab: Lab, block: Block) -> None:
    """A UsageError saying how to switch, unless the group runs in multi-primary mode now."""
    primary = _node(lab, block, primary_of(group_views(lab, block)) or block.instances()[0])
    if _single_primary(lab, primary):
        raise UsageError(f"the group {block.name} of lab '{lab.name}' is in single-primary mode; switch it with "
                         f"'labctl up {lab.name} --set {block.name}.mode=multi-primary' (and back with "
                         f"'labctl up {lab.name}')")


def _single_primary(lab: Lab, node: Node) -> bool:
    return _global(lab, node, "group_replication_single_primary_mode") == "1"


def _global(lab: Lab, node: Node, variable: str) -> str:
    connection = connect(lab, node, 5)
    try:
        return str(run_sql(connection, f"SELECT @@global.{variable} AS value")[0]["value"])
    finally:
        connection.close()


def _kill_sessions(lab: Lab, node: Node, user: str) -> None:
    connection = connect(lab, node, 5)
    try:
        for row in run_sql(connection, "SELECT id FROM information_schema.processlist WHERE user = %s", (user,)):
            with contextlib.suppress(mysql.connector.Error):  # it may have ended meanwhile
                run_sql(connection, f"KILL {int(row['id'])}")
    finally:
        connection.close()


def _online(views: list[MemberView], name: str) -> bool:
    return any(v.name == name and v.state == ONLINE for v in views)


def _bootstrap(lab: Lab, block: Block, views: list[MemberView], progress: Progress) -> None:
    """No member is in a working group: prepare every member, then start the group on the one
    that has the most of it (member 1 on a fresh lab)."""
    name = group_uuid(lab, block)
    fresh = not any(name in v.gtids for v in views)
    for view in views:
        prepare_member(lab, block, _node(lab, block, view.name), fresh)
    first = views[0].name if fresh else max(views, key=lambda v: group_transactions(v.gtids, name)).name
    progress(f"{block.name}: {first} bootstraps the group" + (" (a new one)" if fresh else ""))
    execute(lab, _node(lab, block, first),
            ["SET GLOBAL group_replication_bootstrap_group = ON", "START GROUP_REPLICATION",
             "SET GLOBAL group_replication_bootstrap_group = OFF"], START_TIMEOUT_S)
    wait_for(lab, block, lambda vs: primary_of(vs) is not None, f"{first} becoming primary", 30, progress)


def prepare_member(lab: Lab, block: Block, node: Node, fresh: bool) -> None:
    """The recovery user (kept out of the binary log: every member makes its own) and the
    recovery channel's credentials; on a fresh lab, the first run's own transactions forgotten
    so that no member brings transactions the group does not have."""
    password = load_secrets(lab.name)["repl"]
    statements = [
        "SET GLOBAL super_read_only = OFF", "SET SESSION sql_log_bin = 0",
        f"CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '{password}'",
        "GRANT REPLICATION SLAVE, CONNECTION_ADMIN, BACKUP_ADMIN, GROUP_REPLICATION_STREAM ON *.* TO 'repl'@'%'",
        "SET SESSION sql_log_bin = 1",
        f"CHANGE REPLICATION SOURCE TO SOURCE_USER = 'repl', SOURCE_PASSWORD = '{password}' "
        "FOR CHANNEL 'group_replication_recovery'",
        *(["RESET BINARY LOGS AND GTIDS"] if fresh else []),
        "SET GLOBAL super_read_only = ON",
    ]
    execute(lab, node, statements, 10)


def start_member(lab: Lab, block: Block, name: str) -> None:
    """(Re)join one member: out of whatever state it left the group in, then START."""
    node = _node(lab, block, name)
    view = member_view(lab, node, 5)
    statements = ["STOP GROUP_REPLICATION"] if view.state not in ("OFFLINE", "down") else []
    if view.reachable and view.state == "OFFLINE" and not _has_recovery_user(lab, node):
        prepare_member(lab, block, node, False)
    # Bounded: a START that hangs (a join XCom cannot finish) must not hold the drill for ever.
    execute(lab, node, [*statements, "START GROUP_REPLICATION"], 5, read_timeout=STOP_TIMEOUT_S)


def _has_recovery_user(lab: Lab, node: Node) -> bool:
    connection = connect(lab, node, 5)
    try:
        return bool(run_sql(connection, "SELECT 1 FROM mysql.user WHERE user = 'repl'"))
    finally:
        connection.close()


def _create_schema(lab: Lab, block: Block) -> None:
    """The ledger's schema and the app's user, on the primary (they reach every member)."""
    views = group_views(lab, block)
    primary = primary_of(views)
    if primary is None:
        raise DbError(f"{block.name} has no writable primary: {describe(views)}")
    app = load_secrets(lab.name)["app"]
    execute(lab, _node(lab, block, primary),
            [*SCHEMA_STATEMENTS[:2], PROBE_TABLE, f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{app}'",
             "GRANT SELECT, INSERT, UPDATE, DELETE ON labctl.* TO 'app'@'%'"], 10)


def _node(lab: Lab, block: Block, name: str) -> Node:
    return next(n for n in nodes(lab, block) if n.name == name)


def group_uuid(lab: Lab, block: Block) -> str:
    from labctl.kinds.group import group_name

    return group_name(lab.project, block.name)


def group_transactions(gtids: str, group: str) -> int:
    """How many of the group's transactions a member's gtid_executed holds."""
    part = next((p for p in gtids.split(",") if p.strip().startswith(group)), "")
    return sum(int(b) - int(a) + 1 if b else 1 for a, b in re.findall(r":(\d+)(?:-(\d+))?", part))


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db status`: each member's state and role in its own view, and what it sees."""
    views = group_views(lab, block)
    name = group_uuid(lab, block)
    rows = []
    for view in views:
        row: dict[str, Any] = {"node": view.name, "port": view.port, "reachable": view.reachable}
        if view.reachable:
            row.update(state=view.state, role=view.role, view=f"{view.online}/{len(view.members)} online",
                       majority=view.in_majority, super_read_only=view.read_only,
                       transactions=group_transactions(view.gtids, name))
        else:
            row["error"] = view.error
        rows.append(row)
    primary = primary_of(views)
    return {"lab": lab.name, "kind": "group",
            "title": f"{lab.name}: Group Replication {block.name} ({block.params['mode']}), "
                     f"primary {primary or 'none'}",
            "primary": primary, "whole": whole(views, block.node_count),
            "columns": ["node", "state", "role", "view", "majority", "transactions", "error"],
            "nodes": rows}


def present_ids(lab: Lab, block: Block, prefixes: list[str]) -> set[str]:
    """The ids of the ledger's runs present on the primary (every ONLINE member has the same)."""
    views = group_views(lab, block)
    name = primary_of(views) or next((v.name for v in views if v.in_majority), None)
    if name is None:
        raise DbError(f"no member of {block.name} in a majority to read the writes back from; "
                      "see 'labctl db status'")
    return ledger_ids(lab, _node(lab, block, name), prefixes)
