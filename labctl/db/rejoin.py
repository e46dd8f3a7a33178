"""`labctl db rejoin`: bring nodes that are not following the primary back as its replicas.

A node that holds transactions the primary never had (an old async primary's lost writes)
cannot simply follow it: it is rebuilt from an empty data directory and replays the
primary's binary log, the way a real team would re-clone it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from labctl import compose, lifecycle, paths
from labctl.db import nodes as db
from labctl.db.setup import install_heartbeat_event, point_at, wait_replicating
from labctl.dockerenv import docker_client
from labctl.lab import Lab

Progress = Callable[[str], None]
CATCH_UP_TIMEOUT_S = 300


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
        _rebuild(lab, state.node, progress)
    point_at(lab, state.node, primary.node.name)
    if rebuild:
        wait_replicating(lab, 60, progress)
        _catch_up(lab, state.node, primary.node, progress)
        install_heartbeat_event(lab, state.node)
    done = f"{state.node.name} {'rebuilt and ' if rebuild else ''}replicates from {primary.node.name}"
    progress(done)
    return done


def _catch_up(lab: Lab, node: db.Node, primary: db.Node, progress: Progress) -> None:
    # A rebuilt node replays the primary's whole binary log. Until it has, its copy of the
    # data is old and a failover that picked it would first wait for the replay: the lab is
    # whole again only once it has caught up.
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


def _rebuild(lab: Lab, node: db.Node, progress: Progress) -> None:
    # v=True: an official image keeps its datadir in an anonymous volume, which must go too.
    docker_client().containers.get(f"{lab.project}-{node.name}").remove(force=True, v=True)
    compose.run_services(lab.project, paths.compose_dir(lab.name) / "compose.yaml", [node.name])
    lifecycle.wait_services_healthy(lab.name, [node.name], progress)
    db.wait_reachable(lab, node, 60)
    kind = db.lab_flavor(lab)
    # Its own initialisation must not count as transactions the primary lacks, and it needs a
    # server id of its own: a replica skips events carrying its own id, and the primary's log
    # holds events this node's old self wrote under the configured one.
    server_id = 1000 + int(time.time()) % 1_000_000
    db.execute(lab, node, [*kind.writable(True), kind.reset_binlogs, *kind.after_reset(),
                           kind.new_server_id(server_id), *kind.writable(False)])
