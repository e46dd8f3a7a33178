"""Async or semi-sync on a lab that is already replicating: `labctl up LAB --set
db.replication=async` (or a sweep over it) switches the running nodes, since the rendered
my.cnf is only read when a node starts."""

from __future__ import annotations

from collections.abc import Callable

from labctl.db import nodes as db
from labctl.db.flavors import Flavor
from labctl.durations import duration_ms
from labctl.model.lab import Lab

Progress = Callable[[str], None]


def semisync_in_use(lab: Lab, primary: db.Node, kind: Flavor) -> bool:
    """Whether the primary waits for a replica's acknowledgement (its switch, not its status:
    a primary that timed out waiting still has the switch on)."""
    rows = _query(lab, primary, f"SHOW GLOBAL VARIABLES LIKE '{kind.semisync_source_switch}'")
    return bool(rows) and str(rows[0]["Value"]).upper() == "ON"


def switch_statements(kind: Flavor, semisync: bool, timeout_ms: int, primary: bool,
                      missing_plugins: list[tuple[str, str]]) -> list[str]:
    """What one node runs to replicate semi-sync (or not), the plugins it lacks first."""
    installs = [f"INSTALL PLUGIN {name} SONAME '{library}'" for name, library in missing_plugins] if semisync else []
    if installs and not primary:
        installs = [*kind.admin_writes(True), *installs, *kind.admin_writes(False)]
    value = "ON" if semisync else "OFF"
    if primary:
        tuning = [f"SET GLOBAL {kind.semisync_source_timeout} = {timeout_ms}",
                  f"SET GLOBAL {kind.semisync_wait_point} = AFTER_SYNC"] if semisync else []
        return [*installs, *tuning, f"SET GLOBAL {kind.semisync_source_switch} = {value}"]
    # A replica says whether it acknowledges when its IO thread connects: reconnect it.
    return [*installs, f"SET GLOBAL {kind.semisync_replica_switch} = {value}",
            "STOP REPLICA IO_THREAD", "START REPLICA IO_THREAD"]


def ensure_mode(lab: Lab, progress: Progress) -> None:
    """Make the running nodes replicate as the lab file says (a no-op when they do)."""
    kind = db.lab_flavor(lab)
    params = db.db_block(lab).params
    wanted = params["replication"] == "semisync"
    primary = db.current_primary(db.states(lab))
    if primary is None or semisync_in_use(lab, primary.node, kind) == wanted:
        return
    timeout_ms = duration_ms(str(params["semisync_timeout"]))
    for node in db.nodes(lab):
        missing = [p for p in kind.semisync_plugins if not _has_plugin(lab, node, p[0])]
        db.execute(lab, node, switch_statements(kind, wanted, timeout_ms, node.name == primary.node.name, missing))
    progress(f"db: the running nodes now replicate {'semi-sync' if wanted else 'asynchronously'} "
             f"(primary {primary.node.name})")


def _has_plugin(lab: Lab, node: db.Node, name: str) -> bool:
    return bool(_query(lab, node, f"SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME = '{name}'"))


def _query(lab: Lab, node: db.Node, statement: str) -> list[db.Row]:
    connection = db.connect(lab, node, 5.0)
    try:
        return db.run_sql(connection, statement)
    finally:
        connection.close()
