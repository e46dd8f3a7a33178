"""`labctl db status` for a shards block: the shard map and each shard's rows."""

from __future__ import annotations

from typing import Any

import mysql.connector

from labctl.db import nodes as db
from labctl.kinds.shards import has_spider, shard_map
from labctl.model.lab import Block, Lab
from labctl.shards.schema import TABLE, shard_nodes


def _range_text(shard: dict[str, Any], index: int, count: int, spider: bool) -> str:
    if "from" not in shard:
        return f"key % {count} = {index}" if spider else "crc32(key) % n"
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
    except mysql.connector.Error as exc:
        # Spider answers, but a count needs every shard behind it.
        return {"rows": None, "state": "up", "error": str(exc.msg or exc)[-120:]}
    finally:
        connection.close()


def status(lab: Lab, block: Block) -> dict[str, Any]:
    """JSON-ready: the map's key and routing, and per shard its range, row count and share."""
    found = shard_map(block)
    nodes, count = [], block.node_count
    for index, (shard, node) in enumerate(zip(found["shards"], shard_nodes(lab, block), strict=True)):
        keys = _range_text(shard, index, count, has_spider(block))
        nodes.append({"shard": shard["name"], "port": node.port, "keys": keys, **_rows(lab, node)})
    total = sum(n["rows"] or 0 for n in nodes)
    for n in nodes:
        n["share"] = "" if n["rows"] is None or not total else f"{n['rows'] / total:.1%}"
    title = (f"{lab.name}: {block.node_count} {block.params['flavor']} shards, strategy "
             f"{found['strategy']} ({found['routing']} on {found['key']}), {total} rows")
    if has_spider(block):
        nodes.append(_spider_row(lab, block, total))
        title += f", routed by {nodes[-1]['shard']} (its rows are the shards' rows, read through it)"
    return {"lab": lab.name, "title": title, "columns": ["shard", "port", "state", "keys", "rows", "share", "error"],
            "shard_map": found, "nodes": nodes}


def _spider_row(lab: Lab, block: Block, total: int) -> dict[str, Any]:
    from labctl.shards.spider import partition_clause, spider_node

    node = spider_node(lab, block)
    how = partition_clause(shard_map(block)).split(" (")[0].lower()
    row = {"shard": node.name, "port": node.port, "keys": f"Spider: {how}", **_rows(lab, node)}
    # Counting through Spider asks every shard: it fails while one is down.
    row["share"] = "" if row["rows"] is None or not total else f"{row['rows'] / total:.0%}"
    return row
