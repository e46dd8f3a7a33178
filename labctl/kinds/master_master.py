"""Two MySQL primaries replicating from each other asynchronously (master-master).

Both nodes take writes; HAProxy sends the app's writes to node 1 and to node 2 only while
node 1 is down, the classic active-passive pair. `auto_increment_increment/offset` keep the
two nodes' generated ids apart; nothing keeps their updates of the same row apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.errors import UsageError
from labctl.kinds.base import (
    BlockData,
    BlockKind,
    ConfigTemplate,
    Expectation,
    Progress,
    ledger_expectations,
    node_urls,
)
from labctl.kinds.fragments import CONFLICTING_UPDATES, CPUS, MEMORY, SWITCH, node_publish

if TYPE_CHECKING:
    from labctl.experiments.events import DrillEvents
    from labctl.model.lab import Block, Lab
    from labctl.runtime.inventory import ServiceState

DUPLICATE_STEP: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "description": "both nodes insert a row with the same unique key at the same instant",
    "properties": {"key": {"enum": ["email", "auto_increment"]}},
}


class MasterMasterKind(BlockKind):
    name = "master-master"
    properties: ClassVar[dict[str, Any]] = {
        "auto_increment_offsets": SWITCH,
        "cpus": CPUS,
        "memory": MEMORY,
        "publish": node_publish("mysql", "node"),
    }
    # labctl sets up both replication directions through each node's published port.
    required = ("publish",)
    defaults: ClassVar[dict[str, Any]] = {"auto_increment_offsets": True}
    numbered = True
    port_per_node = True
    stores_data = True
    mysql_router = "haproxy/pair-router.cfg.j2"
    # `writer`: the node HAProxy sends writes to (node 1 while it is up); `standby`: the other.
    target_roles = ("writer", "standby")

    def node_count(self, params: BlockData) -> int:
        return 2

    def endpoint_urls(self, lab: Lab, block: Block, endpoint: str, port: int, node: int | None) -> dict[str, str]:
        return node_urls(lab, block, "mysql", port, node)

    def image_role(self, block: Block) -> str:
        return "mysql"

    def config_templates(self, lab: Lab, block: Block) -> list[ConfigTemplate]:
        return [("pair/node.cnf.j2", f"{node}.cnf", {"node": node, "server_id": index})
                for index, node in enumerate(block.instances(), start=1)]

    def prepare_folder(self, lab: Lab, block: Block, folder: Path) -> None:
        from labctl.db.secrets import ensure_secrets

        ensure_secrets(folder)

    def after_up(self, lab: Lab, block: Block, progress: Progress, timeout: float) -> None:
        from labctl.pair.replication import ensure_pair

        ensure_pair(lab, block, progress, timeout)

    def resolve_role(self, lab: Lab, block: Block, role: str,
                     members: list[ServiceState]) -> list[ServiceState]:
        from labctl.pair.replication import pair_views, writer_of

        writer = writer_of(pair_views(lab, block))
        running = [s for s in members if s.state == "running"]
        chosen = [s for s in running if (s.name == writer) == (role == "writer")] if writer else []
        if not chosen:
            raise UsageError(f"lab '{lab.name}' has no {role} node right now; see 'labctl db status {lab.name}'")
        return sorted(chosen, key=lambda s: s.name)

    def next_commands(self, lab: Lab, block: Block) -> list[str]:
        return [f"labctl db status {lab.name}", f"labctl db check {lab.name}"]

    def db_status(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.pair.replication import status

        return status(lab, block)

    def db_check(self, lab: Lab, block: Block) -> dict[str, Any] | None:
        from labctl.pair.compare import check

        return check(lab, block)

    def subscribe(self, lab: Lab, block: Block, events: DrillEvents, progress: Progress) -> None:
        from labctl.pair.drill_pair import PairDrill

        PairDrill(lab, block, progress).subscribe(events)

    def load_report(self, lab: Lab, block: Block, run_dir: Path, started: float, ended: float,
                    progress: Progress) -> dict[str, Any]:
        from labctl.experiments import ledger
        from labctl.pair.drill_pair import writes_report

        if not any(run_dir.glob(ledger.LEDGER_GLOB)):
            return {}
        progress("reading every write back from the writer")
        return {"db": writes_report(lab, block, run_dir, None)}

    def report_rows(self, report: dict[str, Any]) -> list[tuple[str, str, str]]:
        from labctl.pair.drill_pair import report_rows

        return report_rows(report)

    def drill_steps(self) -> dict[str, Any]:
        return {"conflicting_updates": CONFLICTING_UPDATES, "duplicate_key": DUPLICATE_STEP}

    def drill_expectations(self) -> dict[str, Expectation]:
        return {
            **ledger_expectations(),
            "diverged": Expectation(
                {"type": "boolean"}, lambda m: (m.get("pair") or {}).get("diverged"),
                lambda e, o: o is not None and o == e),
            "replication_stopped": Expectation(
                {"type": "boolean"}, lambda m: (m.get("pair") or {}).get("replication_stopped"),
                lambda e, o: o is not None and o == e),
        }


KIND = MasterMasterKind()
