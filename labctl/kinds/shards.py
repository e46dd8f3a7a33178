"""Independent MySQL or MariaDB shards; the app routes each request by its key through a
shard map this block renders (hash on a customer id, or ranges of a time-ordered order id),
or, with `front: spider`, sends every query to one MariaDB Spider node that partitions one
table over the shards by the same key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.errors import UsageError
from labctl.kinds.base import BlockData, BlockKind, ConfigTemplate, Expectation, FieldProblem, Progress, node_urls
from labctl.kinds.fragments import CPUS, MEMORY, PORT, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

# Order ids are time-ordered (microseconds since the epoch, like a Snowflake id's time part).
# The range map split 2025's ids evenly; every order placed since is past the last boundary.
RANGE_FROM_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
RANGE_TO_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MAP_FILE = "shardmap.json"
FRONTS = ("app", "spider")


def _publish() -> dict[str, Any]:
    found = node_publish("mysql", "shard")
    found["properties"] = {**found["properties"], "spider": PORT}
    found["description"] += "; spider: the Spider node's host port"
    return found


class ShardsKind(BlockKind):
    name = "shards"
    properties: ClassVar[dict[str, Any]] = {
        "flavor": {"enum": ["mariadb", "mysql"]},
        "shards": {"type": "integer", "minimum": 2, "maximum": 6},
        "strategy": {"enum": ["hash", "range", "skewed"]},
        "customers": {"type": "integer", "minimum": 10, "maximum": 10_000_000},
        "zipf": {"type": "number", "exclusiveMinimum": 1, "maximum": 4,
                 "description": "the exponent of the skewed strategy's customer distribution"},
        "front": {"enum": list(FRONTS), "description": "who routes by the shard key: the app, or a Spider node"},
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": _publish(),
    }
    # labctl creates the schema and counts rows on every shard through its published port.
    required = ("publish",)
    defaults: ClassVar[dict[str, Any]] = {"flavor": "mariadb", "shards": 3, "strategy": "hash",
                                            "customers": 10000, "zipf": 1.2, "front": "app"}
    numbered = True
    port_per_node = True
    stores_data = True
    config_files = ()

    # `spider`: the Spider node in front of the shards, when the block has one.
    target_roles = ("spider",)

    def node_count(self, params: BlockData) -> int:
        return int(params.get("shards", 3))

    def services(self, block: Block) -> list[str]:
        return [*block.instances(), *([spider_service(block)] if has_spider(block) else [])]

    def host_ports(self, block: Block, endpoint: str) -> list[int]:
        if endpoint == "spider":
            return [block.publish["spider"]] if "spider" in block.publish else []
        return super().host_ports(block, endpoint)

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        if endpoint != "spider":
            return node_urls(lab, block, "mysql", port, node)
        # The Spider node's labels pass node = the shard count: it comes after the shards.
        if not has_spider(block) or node not in (None, block.node_count):
            return {}
        return {spider_service(block): f"mysql://{lab.bind}:{port}"}

    def reference_problems(self, name: str, block: BlockData, blocks: dict[str, BlockData]) -> list[FieldProblem]:
        if block.get("front") != "spider":
            return []
        found: list[FieldProblem] = []
        if block.get("flavor", "mariadb") != "mariadb":
            found.append(((name, "front"), "Spider is a MariaDB engine: front: spider needs flavor: mariadb"))
        if "spider" not in block.get("publish", {}):
            found.append(((name, "publish"), "front: spider needs publish.spider (the Spider node's host port)"))
        return found

    def image_role(self, block: Block) -> str:
        return str(block.params["flavor"])

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        nodes: list[ConfigTemplate] = [("shards/node.cnf.j2", f"{node}.cnf", {"server_id": index, "spider": False})
                                       for index, node in enumerate(block.instances(), start=1)]
        if has_spider(block):
            nodes.append(("shards/node.cnf.j2", f"{spider_service(block)}.cnf",
                          {"server_id": block.node_count + 1, "spider": True}))
        return [*nodes, ("shards/shardmap.json.j2", MAP_FILE, {"shard_map": shard_map(block)})]

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.shards.schema import create_schema

        create_schema(lab, block, progress, timeout)
        if has_spider(block):
            from labctl.shards.spider import create_spider_table

            create_spider_table(lab, block, progress, timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        found = [s for s in members if s.name == spider_service(block)]
        if not found:
            raise UsageError(f"{block.name} has no Spider node in lab '{lab.name}'; bring it up with "
                             f"'labctl up {lab.name} --set {block.name}.front=spider'")
        return found

    def summary(self, block: Block) -> str:
        front = ", behind Spider" if has_spider(block) else ""
        return f"{block.name} ({self.name} x{block.node_count}, {block.params['strategy']}{front})"

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.shards.status import status

        return status(lab, block)

    def load_environment(self, lab: Lab, block: Block) -> dict[str, str]:
        p = block.params
        return {"LABCTL_SHARD_STRATEGY": str(p["strategy"]), "LABCTL_SHARD_CUSTOMERS": str(p["customers"]),
                "LABCTL_SHARD_ZIPF": str(p["zipf"])}

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.shards.report import load_report

        return load_report(block, run_dir)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.shards.report import ShardDrill

        ShardDrill(block).subscribe(events)

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.shards.report import report_rows

        return report_rows(report)

    def drill_expectations(self) -> dict[str, Expectation]:
        from labctl.shards.report import expectations

        return expectations()


def shard_map(block: Block) -> dict[str, Any]:
    """The map the app routes by: each shard's name, address and, for ranges, its [from, to)."""
    names = block.instances()
    ranged = block.params["strategy"] == "range"
    step = (RANGE_TO_US - RANGE_FROM_US) // len(names)
    shards = []
    for index, name in enumerate(names):
        shard: dict[str, Any] = {"name": name, "address": f"{name}:3306"}
        if ranged:
            shard["from"] = 0 if index == 0 else RANGE_FROM_US + index * step
            shard["to"] = None if index == len(names) - 1 else RANGE_FROM_US + (index + 1) * step
        shards.append(shard)
    front = {"name": spider_service(block), "address": f"{spider_service(block)}:3306"} if has_spider(block) else None
    return {"key": "order_id" if ranged else "customer_id", "routing": "range" if ranged else "hash",
            "strategy": block.params["strategy"], "front": front, "shards": shards}


def has_spider(block: Block) -> bool:
    """Whether a Spider node routes for the block (else the app does)."""
    return block.params.get("front") == "spider"


def spider_service(block: Block) -> str:
    """The service name of the block's Spider node."""
    return f"{block.service_base}-spider"



KIND = ShardsKind()
