"""What a Galera cluster says about itself, node by node through the published ports, and
its set-up at `labctl up`: wait until every node is Synced in one Primary component, then
create the lab's schema and users once (DDL and users replicate to every node)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mysql.connector

from labctl.db.nodes import DbError, Node, connect, ledger_ids, run_sql
from labctl.db.secrets import load_secrets
from labctl.db.setup import SCHEMA_STATEMENTS
from labctl.model.lab import Block, Lab

Progress = Callable[[str], None]
SYNCED = "4"
WSREP_KEYS = ("wsrep_cluster_status", "wsrep_cluster_size", "wsrep_local_state", "wsrep_local_state_comment",
              "wsrep_ready", "wsrep_connected", "wsrep_last_committed", "wsrep_cluster_conf_id",
              "wsrep_local_cert_failures", "wsrep_local_bf_aborts")
# `db status` is read by a person or a test, not timed: a node busy on a loaded machine is
# slow to answer, which is not the same as down.
STATUS_TIMEOUT_S = 5.0
# The drill's probes write here, one row per probe, never into the ledger's table.
PROBE_TABLE = ("CREATE TABLE IF NOT EXISTS labctl.probes (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
               "node VARCHAR(64) NOT NULL, at DOUBLE NOT NULL)")


@dataclass(frozen=True)
class NodeView:
    """One node's wsrep status as it answered (or not)."""

    name: str
    port: int
    reachable: bool
    wsrep: dict[str, str] = field(default_factory=dict)
    error: str = ""
    at: float = 0.0

    @property
    def synced(self) -> bool:
        """Synced, in the Primary component and ready: the node takes reads and writes."""
        return (self.wsrep.get("wsrep_local_state") == SYNCED and self.primary
                and self.wsrep.get("wsrep_ready") == "ON")

    @property
    def primary(self) -> bool:
        return self.wsrep.get("wsrep_cluster_status") == "Primary"

    @property
    def size(self) -> int:
        return int(self.wsrep.get("wsrep_cluster_size") or 0)


def nodes(lab: Lab, block: Block) -> list[Node]:
    """Every node of the block with its published port, node 1 first."""
    ports = block.host_ports("mysql")
    return [Node(name, lab.bind, port) for name, port in zip(block.instances(), ports, strict=True)]


def node_view(lab: Lab, node: Node, timeout: float = 1.0) -> NodeView:
    """Ask one node for its wsrep status variables."""
    at = time.time()
    try:
        connection = connect(lab, node, timeout)
    except DbError as exc:
        return NodeView(node.name, node.port, False, error=str(exc), at=at)
    try:
        rows = run_sql(connection, "SHOW GLOBAL STATUS LIKE 'wsrep%'")
    except mysql.connector.Error as exc:
        return NodeView(node.name, node.port, False, error=f"{node.name}: {exc.msg or exc}", at=at)
    finally:
        connection.close()
    values = {str(r["Variable_name"]).lower(): str(r["Value"]) for r in rows}
    return NodeView(node.name, node.port, True, {k: values.get(k, "") for k in WSREP_KEYS}, at=at)


def cluster_views(lab: Lab, block: Block, timeout: float = 1.0) -> list[NodeView]:
    """Every node's view, asked in parallel, node 1 first."""
    found = nodes(lab, block)
    with ThreadPoolExecutor(max_workers=len(found)) as pool:
        return list(pool.map(lambda node: node_view(lab, node, timeout), found))


def writer_of(views: list[NodeView]) -> str | None:
    """The node HAProxy's writer sends to: the first synced one (the others are its backups)."""
    return next((v.name for v in views if v.synced), None)


def members(block: Block) -> int:
    """The votes of the whole cluster: every data node, and garbd when the block has one."""
    return block.node_count + (1 if block.params.get("arbitrator") else 0)


def whole(views: list[NodeView], count: int, size: int | None = None) -> bool:
    """Every one of `count` nodes synced, all in the same Primary component (one view) of
    `size` members (`count` when there is no arbitrator). A node that joined by SST can list
    fewer incoming addresses than members for minutes, so the size is what is counted."""
    return (len(views) == count and len({v.wsrep.get("wsrep_cluster_conf_id") for v in views}) == 1
            and all(v.synced and v.size == (size or count) for v in views))


def wait_whole(lab: Lab, block: Block, timeout: float, progress: Progress) -> list[NodeView]:
    """Wait until every node is Synced in one Primary component of them all."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        views = cluster_views(lab, block)
        if whole(views, block.node_count, members(block)):
            return views
        line = describe(views)
        if line != shown:
            progress(f"{block.name}: {line}")
            shown = line
        if time.monotonic() > deadline:
            raise DbError(f"{block.name} did not form one synced cluster of {_votes(block)} within "
                          f"{timeout:.0f} s: {line} ({_membership(views)})")
        time.sleep(0.5)


def _votes(block: Block) -> str:
    arbitrator = " and the arbitrator" if block.params.get("arbitrator") else ""
    return f"{block.node_count} nodes{arbitrator}"


def _membership(views: list[NodeView]) -> str:
    return "; ".join(f"{v.name} sees view {v.wsrep.get('wsrep_cluster_conf_id') or '?'} of {v.size}"
                     for v in views if v.reachable)


def describe(views: list[NodeView]) -> str:
    """One line: each node's local state and component, or why it does not answer."""
    return ", ".join(f"{v.name} {v.wsrep.get('wsrep_local_state_comment') or '?'}/"
                     f"{v.wsrep.get('wsrep_cluster_status') or '?'}" if v.reachable else f"{v.name} down"
                     for v in views)


def ensure_cluster(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """`up`: the cluster whole, then the schema and the app's user (once; they replicate)."""
    started = time.monotonic()
    views = wait_whole(lab, block, timeout, progress)
    first = nodes(lab, block)[0]
    app = load_secrets(lab.name)["app"]
    statements = [*SCHEMA_STATEMENTS[:2], PROBE_TABLE,
                  f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{app}'",
                  "GRANT SELECT, INSERT, UPDATE, DELETE ON labctl.* TO 'app'@'%'"]
    connection = connect(lab, first, 10)
    try:
        for statement in statements:
            run_sql(connection, statement)
    finally:
        connection.close()
    progress(f"{block.name}: {_votes(block)} in one Primary component, every node Synced "
             f"(wsrep_cluster_size {views[0].size}) after {time.monotonic() - started:.1f} s")


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """`labctl db status`: each node's component, cluster size and local state."""
    views = cluster_views(lab, block, STATUS_TIMEOUT_S)
    rows = []
    for view in views:
        row: dict[str, Any] = {"node": view.name, "port": view.port, "reachable": view.reachable}
        if view.reachable:
            row.update({key: view.wsrep.get(key) for key in WSREP_KEYS})
        else:
            row["error"] = view.error
        rows.append(row)
    if block.params.get("arbitrator"):
        rows.append(arbitrator_row(block, views))
    writer = writer_of(views)
    return {"lab": lab.name, "kind": "galera",
            "title": f"{lab.name}: Galera cluster {block.name}, HAProxy writes to {writer or 'no node'}",
            "writer": writer, "whole": whole(views, block.node_count, members(block)),
            "columns": ["node", "wsrep_cluster_status", "wsrep_cluster_size", "wsrep_local_state_comment",
                        "error"],
            # Short enough for 80 columns with the arbitrator's row; the JSON keeps wsrep's names.
            "headings": {"wsrep_cluster_status": "cluster_status", "wsrep_cluster_size": "size",
                         "wsrep_local_state_comment": "local_state"},
            "nodes": rows}


def arbitrator_row(block: Block, views: list[NodeView]) -> dict[str, Any]:
    """garbd answers no queries: it is counted when a Primary component has more members than
    the data nodes that report being in it."""
    primary = [v for v in views if v.reachable and v.primary]
    in_view = sum(1 for v in primary if v.wsrep.get("wsrep_cluster_conf_id") == primary[0].wsrep.get(
        "wsrep_cluster_conf_id")) if primary else 0
    counted = bool(primary) and primary[0].size > in_view
    return {"node": f"{block.service_base}-arbitrator", "reachable": counted, "arbitrator": True,
            "wsrep_cluster_status": "Primary" if counted else "-",
            "wsrep_cluster_size": str(primary[0].size) if counted else "-",
            "wsrep_local_state_comment": "garbd (no data)" if counted else "",
            "error": "" if counted else "garbd is not counted in any Primary component"}


def present_ids(lab: Lab, block: Block, prefixes: list[str]) -> set[str]:
    """The ids of the ledger's runs present on a synced node (any: they hold the same rows)."""
    views = cluster_views(lab, block, STATUS_TIMEOUT_S)
    name = writer_of(views)
    if name is None:
        raise DbError(f"no synced {block.name} node to read the writes back from; see 'labctl db status'")
    node = next(n for n in nodes(lab, block) if n.name == name)
    return ledger_ids(lab, node, prefixes)
