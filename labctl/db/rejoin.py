"""`labctl db rejoin`: bring nodes that are not following the primary back as its replicas.

A node that holds transactions the primary never had (an old async primary's lost writes)
cannot simply follow it: it is rebuilt, the way a real team would re-clone it. MySQL nodes
are cloned from the primary with the clone plugin; MariaDB nodes start from an empty data
directory and replay the primary's binary log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import mysql.connector

from labctl import lifecycle, paths
from labctl.db import nodes as db
from labctl.db.secrets import load_secrets
from labctl.db.setup import install_heartbeat_event, point_at, wait_replicating
from labctl.model.lab import Lab
from labctl.runtime import local_runtime

Progress = Callable[[str], None]
CATCH_UP_TIMEOUT_S = 300
CLONE_TIMEOUT_S = 300
RESTART_NOT_SUPERVISED = 3707  # the clone is done, but nothing restarts mysqld on its new data


def strays(lab: Lab, found: list[db.NodeState], primary: db.NodeState) -> list[db.NodeState]:
    """Reachable nodes that are neither the primary nor replicating from it."""
    kind = db.lab_flavor(lab)
    return [s for s in found if s.reachable and s is not primary
            and (str(s.replica.get(kind.source_host) or "") != primary.node.name or _broken(s, kind))]


def _broken(state: db.NodeState, kind: db.Flavor) -> bool:
    return bool(state.replica.get(kind.last_error)) or state.replica.get(kind.sql_running) == "No"


def rejoin(lab: Lab, node: str | None = None, progress: Progress = lambda _: None) -> list[str]:
    """Make `node` (or every stray node) a replica of the current primary; returns what was done."""
    found = db.states(lab)
    primary = db.current_primary(found)
    if primary is None:
        raise db.DbError("no single writable primary to rejoin; run 'labctl db failover' first")
    chosen = strays(lab, found, primary)
    if node is not None:
        wanted = db.node_named(lab, node)
        chosen = [s for s in found if s.node == wanted and s.reachable and s is not primary]
        if not chosen:
            raise db.DbError(f"{wanted.name} is the primary or does not answer; see 'labctl db status'")
    return [_rejoin_one(lab, state, primary, progress) for state in chosen]


def _rejoin_one(lab: Lab, state: db.NodeState, primary: db.NodeState, progress: Progress) -> str:
    kind = db.lab_flavor(lab)
    errant = kind.errant(_gtid_state(lab, state.node), _gtid_state(lab, primary.node))
    rebuild = bool(errant) or _broken(state, kind)
    if rebuild:
        why = f"has transactions the primary never had ({errant})" if errant else "cannot apply its source's log"
        progress(f"{state.node.name} {why}: rebuilding it")
        _rebuild(lab, state.node, primary.node, progress)
    point_at(lab, state.node, primary.node.name)
    if rebuild:
        wait_replicating(lab, 60, progress)
        _catch_up(lab, state.node, primary.node, progress)
        install_heartbeat_event(lab, state.node)
    done = f"{state.node.name} {'rebuilt and ' if rebuild else ''}replicates from {primary.node.name}"
    progress(done)
    return done


def _catch_up(lab: Lab, node: db.Node, primary: db.Node, progress: Progress) -> None:
    # A rebuilt node replays what the primary committed since its clone (or its whole log).
    # Until it has, its copy of the data is old and a failover that picked it would first
    # wait for the replay: the lab is whole again only once it has caught up.
    target = db.read_state(lab, primary).gtid_executed
    started = time.monotonic()
    progress(f"{node.name}: replaying the primary's binary log")
    db.wait_applied(lab, node, target, CATCH_UP_TIMEOUT_S)
    progress(f"{node.name}: caught up in {time.monotonic() - started:.1f} s")


def _gtid_state(lab: Lab, node: db.Node) -> str:
    connection = db.connect(lab, node)
    try:
        rows = db.run_sql(connection, f"SELECT {db.lab_flavor(lab).state_variable} AS state")
    finally:
        connection.close()
    return str(rows[0]["state"] or "").replace("\n", "")


def _rebuild(lab: Lab, node: db.Node, donor: db.Node, progress: Progress) -> None:
    kind = db.lab_flavor(lab)
    # A replica skips events carrying its own server id, and the primary's log may hold
    # events this node's old self wrote under the configured one: it gets an id of its own.
    new_id = kind.new_server_id(1000 + int(time.time()) % 1_000_000)
    clone = kind.clone_from(donor.name, load_secrets(lab.name)["root"])
    cloned = bool(clone) and clone_into(lab, node, clone, progress)
    if not cloned:
        _recreate(lab, node)
    lifecycle.wait_services_healthy(lab.name, [node.name], progress)
    db.wait_reachable(lab, node, 60)
    if cloned:
        # The clone brought the donor's GTID state along, so nothing is reset.
        db.execute(lab, node, [*kind.admin_writes(True), new_id, *kind.admin_writes(False)])
        return
    # Its own initialisation must not count as transactions the primary lacks.
    db.execute(lab, node, [*kind.writable(True), kind.reset_binlogs, *kind.after_reset(),
                           new_id, *kind.writable(False)])


def clone_into(lab: Lab, node: db.Node, statements: list[str], progress: Progress) -> bool:
    """Clone the donor into the node; False when the clone failed (the node is then recreated:
    a node whose config predates the clone plugin, or a clone cut short, holds nothing to keep)."""
    progress(f"{node.name}: cloning the primary's data")
    connection = db.connect(lab, node, CLONE_TIMEOUT_S)
    restarted_itself = True
    try:
        for statement in statements:
            db.run_sql(connection, statement)
    except mysql.connector.Error as exc:
        if exc.errno != RESTART_NOT_SUPERVISED:
            # Not the statement itself in the message: it carries the root password.
            progress(f"{node.name}: the clone failed ({exc.msg or exc}); rebuilding it empty instead")
            return False
        restarted_itself = False
    finally:
        with contextlib.suppress(mysql.connector.Error, OSError):
            connection.close()
    if not restarted_itself:
        # mysqld stopped itself on the cloned data, and the container with it.
        container = f"{lab.project}-{node.name}"
        local_runtime().wait(container, timeout=CLONE_TIMEOUT_S)
        local_runtime().start(container)
    return True


def _recreate(lab: Lab, node: db.Node) -> None:
    # v=True: an official image keeps its datadir in an anonymous volume, which must go too.
    local_runtime().remove_container(f"{lab.project}-{node.name}")
    local_runtime().run_services(lab.project, paths.compose_dir(lab.name) / "compose.yaml", [node.name])
