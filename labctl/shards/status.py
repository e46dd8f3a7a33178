"""`labctl db status` for a shards block: the shard map and each shard's rows."""

from __future__ import annotations

from typing import Any

from labctl.db import nodes as db
from labctl.kinds.shards import shard_map
from labctl.model.lab import Block, Lab
from labctl.shards.schema import TABLE, shard_nodes


def _range_text(shard: dict[str, Any]) -> str:
    if "from" not in shard:
        return "crc32(key) % n"
    high = "..." if shard["to"] is None else str(shard["to"])
    return f"[{shard['from']}, {high})"


def _rows(lab: Lab, node: db.Node) -> dict[str, Any]:
    try:
        connection = db.connect(lab, node)
    except db.DbError as exc:
        return {"rows": None, "state": "down", "error": str(exc)[-120:]}
    try:
        [row] = db.run_sql(connection, f"SELECT COUNT(*) AS n FROM {TABLE}")
        return {"rows": int(row["n"]), "state": "up", "error": ""}
    finally:
        connection.close()


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """JSON-ready: the map's key and routing, and per shard its range, row count and share."""
    found = shard_map(block)
    nodes = []
    for shard, node in zip(found["shards"], shard_nodes(lab, block), strict=True):
        nodes.append({"shard": shard["name"], "port": node.port, "keys": _range_text(shard), **_rows(lab, node)})
    total = sum(n["rows"] or 0 for n in nodes)
    for n in nodes:
        n["share"] = "" if n["rows"] is None or not total else f"{n['rows'] / total:.1%}"
    title = (f"{lab.name}: {block.node_count} {block.params['flavor']} shards, strategy "
             f"{found['strategy']} ({found['routing']} on {found['key']}), {total} rows")
    return {"lab": lab.name, "title": title, "columns": ["shard", "port", "state", "keys", "rows", "share", "error"],
            "shard_map": found, "nodes": nodes}
