"""Each shard's schema and app user, made at `labctl up` (a no-op on a running lab)."""

from __future__ import annotations

from labctl.db import nodes as db
from labctl.db.secrets import load_secrets
from labctl.kinds.base import Progress
from labctl.model.lab import Block, Lab

TABLE = "labctl.orders"


def shard_nodes(lab: Lab, block: Block) -> list[db.Node]:
    """Every shard of the block, reached on its published port."""
    ports = block.host_ports("mysql")
    return [db.Node(name, lab.bind, port) for name, port in zip(block.instances(), ports, strict=True)]


def _statements(app_password: str) -> list[str]:
    return [
        "CREATE DATABASE IF NOT EXISTS labctl",
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR(64) PRIMARY KEY, shard_key BIGINT NOT NULL, "
        "served_by VARCHAR(64), created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY (shard_key))",
        f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{app_password}'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON labctl.* TO 'app'@'%'",
    ]


def create_schema(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """The orders table and the app's user on every shard."""
    statements = _statements(load_secrets(lab.name)["app"])
    for node in shard_nodes(lab, block):
        db.wait_reachable(lab, node, timeout)
        db.execute(lab, node, statements)
    progress(f"{block.name}: {block.node_count} shards, table {TABLE} on each, "
             f"strategy {block.params['strategy']}")
