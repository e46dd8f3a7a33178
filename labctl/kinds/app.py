"""The sample app: replicas behind a load balancer, optionally writing to a db block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from labctl.kinds.base import BlockData, BlockKind, FieldProblem, blocks_of, database_blocks, reference
from labctl.kinds.fragments import CPUS, MEMORY, publish

if TYPE_CHECKING:
    from labctl.model.lab import Block


class AppKind(BlockKind):
    name = "app"
    properties: ClassVar[dict[str, Any]] = {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 32},
        "cpus": CPUS,
        "memory": MEMORY,
        "workers": {"type": "integer", "minimum": 1, "maximum": 16},
        "publish": publish("http"),
        "database": {"type": "string", "description": "the name of a db block"},
        "database_via": {"type": "string", "description": "the name of a haproxy block in front of the db block"},
        "shards": {"type": "string", "description": "the name of a shards block (the app routes by its shard map)"},
    }
    defaults: ClassVar[dict[str, Any]] = {"replicas": 1, "workers": 2, "publish": {}}
    numbered = True
    scalable = True

    def node_count(self, params: BlockData) -> int:
        return int(params.get("replicas", 1))

    def summary(self, block: Block) -> str:
        return f"{block.name} ({self.name} x{block.replicas})"

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        found = _database_problems(name, block, blocks)
        if block.get("shards") is not None:
            found += reference(name, block, "shards", blocks_of(blocks, "shards"), "a shards block")
        if block.get("publish") and int(block.get("replicas", 1)) > 1:
            text = "an app with more than one replica cannot publish a port; put an lb in front"
            found.append(((name, "publish"), text))
        return found


def _database_problems(name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
    dbs = database_blocks(blocks)
    database, via = block.get("database"), block.get("database_via")
    if database is not None and database not in dbs:
        known = ", ".join(dbs) or "none"
        return [((name, "database"), f"expected the name of a db block ({known}), got {database!r}")]
    if via is None:
        return []
    if database is None:
        return [((name, "database_via"), "needs 'database' too")]
    routers = [n for n in blocks_of(blocks, "haproxy") if blocks[n].get("backends") == database]
    if via not in routers:
        known = ", ".join(routers) or "none"
        return [((name, "database_via"), f"expected a haproxy block with backends: {database} ({known}), got {via!r}")]
    return []


KIND = AppKind()
