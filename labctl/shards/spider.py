"""The Spider node in front of the shards: one `orders` table whose partitions live on the
shards, partitioned by the same key as the app's map where Spider can say it (a range by
the same bounds; a hash as MariaDB's HASH(shard_key), which is shard_key MOD n, not the
app's crc32), and which shard the partition definition sends a key to."""

from __future__ import annotations

from typing import Any

from labctl.db import nodes as db
from labctl.db.secrets import load_secrets
from labctl.kinds.base import Progress
from labctl.kinds.shards import shard_map, spider_service
from labctl.model.lab import Block, Lab
from labctl.shards.schema import TABLE

# MariaDB refuses a unique key without the partitioning column, so Spider's table keys on
# (id, shard_key); each shard's own primary key on id still refuses a duplicate there.
COLUMNS = ("id VARCHAR(64) NOT NULL, shard_key BIGINT NOT NULL, served_by VARCHAR(64), "
           "created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
           "PRIMARY KEY (id, shard_key), KEY (shard_key)")


def spider_node(lab: Lab, block: Block) -> db.Node:
    """The Spider node, reached on its published port."""
    return db.Node(spider_service(block), lab.bind, block.host_ports("spider")[0])


def server_name(index: int) -> str:
    """The CREATE SERVER name of shard `index` (0-based)."""
    return f"shard{index + 1}"


def partition_clause(found: dict[str, Any]) -> str:
    """PARTITION BY ... for a shard map: one partition per shard, each on its server."""
    shards = found["shards"]
    if found["routing"] == "hash":
        parts = [f"PARTITION p{i + 1} REMOTE_SERVER='{server_name(i)}'" for i in range(len(shards))]
        return f"PARTITION BY HASH (shard_key) ({', '.join(parts)})"
    parts = []
    for i, shard in enumerate(shards):
        bound = "MAXVALUE" if shard["to"] is None else str(shard["to"])
        parts.append(f"PARTITION p{i + 1} VALUES LESS THAN ({bound}) REMOTE_SERVER='{server_name(i)}'")
    return f"PARTITION BY RANGE (shard_key) ({', '.join(parts)})"


def spider_statements(block: Block, app_password: str) -> list[str]:
    """The servers, the app's user and the partitioned table; the table is made afresh each
    time (it holds no rows), so a changed strategy re-partitions it."""
    found = shard_map(block)
    servers = []
    for i, shard in enumerate(found["shards"]):
        servers.append(f"CREATE OR REPLACE SERVER {server_name(i)} FOREIGN DATA WRAPPER mysql OPTIONS "
                       f"(HOST '{shard['name']}', DATABASE 'labctl', USER 'app', PASSWORD '{app_password}', PORT 3306)")
    return [
        *servers,
        "CREATE DATABASE IF NOT EXISTS labctl",
        f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{app_password}'",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON labctl.* TO 'app'@'%'",
        f"DROP TABLE IF EXISTS {TABLE}",
        f"CREATE TABLE {TABLE} ({COLUMNS}) ENGINE=SPIDER REMOTE_TABLE='orders' {partition_clause(found)}",
    ]


def create_spider_table(lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
    """Spider's view of the shards: every shard a server, the table partitioned over them."""
    node = spider_node(lab, block)
    db.wait_reachable(lab, node, timeout)
    db.execute(lab, node, spider_statements(block, load_secrets(lab.name)["app"]))
    how = "HASH(shard_key) = shard_key MOD n" if shard_map(block)["routing"] == "hash" else "RANGE(shard_key)"
    progress(f"{node.name}: table {TABLE} partitioned by {how} over {block.node_count} shards")


def spider_shard_index(found: dict[str, Any], key: int) -> int:
    """Which shard Spider's partition definition sends `key` to (HASH is MOD; MariaDB takes
    the absolute value of a negative one)."""
    shards = found["shards"]
    if found["routing"] == "hash":
        return abs(key) % len(shards)
    for index, shard in enumerate(shards):
        if shard["to"] is None or key < int(shard["to"]):
            return index
    raise ValueError(f"key {key} is past every partition's range")
