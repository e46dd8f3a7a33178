"""Independent MySQL or MariaDB shards; the app routes each request by its key through a
shard map this block renders (hash on a customer id, or ranges of a time-ordered order id)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.kinds.base import BlockData, BlockKind, ConfigTemplate, Expectation, Progress, node_urls
from labctl.kinds.fragments import CPUS, MEMORY, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab

# Order ids are time-ordered (microseconds since the epoch, like a Snowflake id's time part).
# The range map split 2025's ids evenly; every order placed since is past the last boundary.
RANGE_FROM_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
RANGE_TO_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MAP_FILE = "shardmap.json"


class ShardsKind(BlockKind):
    name = "shards"
    properties: ClassVar[dict[str, Any]] = {
        "flavor": {"enum": ["mariadb", "mysql"]},
        "shards": {"type": "integer", "minimum": 2, "maximum": 6},
        "strategy": {"enum": ["hash", "range", "skewed"]},
        "customers": {"type": "integer", "minimum": 10, "maximum": 10_000_000},
        "zipf": {"type": "number", "exclusiveMinimum": 1, "maximum": 4,
                 "description": "the exponent of the skewed strategy's customer distribution"},
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("mysql", "shard"),
    }
    # labctl creates the schema and counts rows on every shard through its published port.
    required = ("publish",)
    defaults: ClassVar[dict[str, Any]] = {"flavor": "mariadb", "shards": 3, "strategy": "hash",
                                            "customers": 10000, "zipf": 1.2}
    numbered = True
    port_per_node = True
    stores_data = True
    config_files = ()

    def node_count(self, params: BlockData) -> int:
        return int(params.get("shards", 3))

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        return node_urls(lab, block, "mysql", port, node)

    def image_role(self, block: Block) -> str:
        return str(block.params["flavor"])

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        nodes: list[ConfigTemplate] = [("shards/node.cnf.j2", f"{node}.cnf", {"server_id": index})
                                       for index, node in enumerate(block.instances(), start=1)]
        return [*nodes, ("shards/shardmap.json.j2", MAP_FILE, {"shard_map": shard_map(block)})]

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.shards.schema import create_schema

        create_schema(lab, block, progress, timeout)

    def summary(self, block: Block) -> str:
        return f"{block.name} ({self.name} x{block.node_count}, {block.params['strategy']})"

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
    return {"key": "order_id" if ranged else "customer_id", "routing": "range" if ranged else "hash",
            "strategy": block.params["strategy"], "shards": shards}


KIND = ShardsKind()
